"""Issue 15 findings 4 and 5: the description's one rule, and limits refused in the field's own words."""
from __future__ import annotations

import pytest

from core.errors import InvalidImage, InvalidInput
from core.models import CharacterUpdate, SceneUpdate
from core.prompting import build_prompt
from core.validation import text_limit


def test_the_description_goes_into_the_prompt_after_the_subject_on_one_line():
    assert build_prompt(gender="female", description="A cheerful barista.\n\nLoves   latte art.",
                        appearance_tags=["red hair"]) == (
        "masterpiece, best quality, photorealistic, 1girl, beautiful woman, A cheerful barista. Loves latte art, "
        "red hair, studio photography, professional lighting, sharp focus, detailed face")


def test_generation_uses_the_description_it_requires(studio, character):
    long = "Tall and patient. " + "x" * 2000
    studio.characters.update(character.id, {"description": long[:2000]})
    [job] = studio.portraits.generate(character.id)
    prompt = job.request.final_prompt
    assert "Tall and patient. xxx" in prompt
    assert "x" * 500 not in prompt  # a 2,000-character description is summarised, not pasted whole
    assert studio.portraits.preview_prompt(character.id) == prompt  # what the form previews is what is sent
    bare = studio.characters.create({"name": "Nameless"})
    with pytest.raises(InvalidInput) as err:
        studio.portraits.generate(bare.id)
    assert "goes into the prompt" in err.value.errors["description"]


def test_more_images_than_a_batch_holds_are_refused_with_the_limit_not_clamped(studio, character):
    with pytest.raises(InvalidInput) as err:
        studio.portraits.generate(character.id, n=9)
    assert err.value.errors == {"n": "at most 8 (got 9)"}
    assert studio.jobs.list().total == 0
    assert len(studio.portraits.generate(character.id, n=8)) == 8


@pytest.mark.parametrize(("model", "field"), [(CharacterUpdate, "name"), (CharacterUpdate, "description"),
                                              (CharacterUpdate, "persona"), (CharacterUpdate, "traits"),
                                              (CharacterUpdate, "first_message"), (CharacterUpdate, "system_prompt"),
                                              (SceneUpdate, "description"), (SceneUpdate, "prompt")])
def test_text_limit_is_the_length_validation_accepts(model, field):
    limit = text_limit(model, field)
    model.model_validate({field: "a" * limit})
    with pytest.raises(ValueError, match=f"at most {limit} characters"):
        model.model_validate({field: "a" * (limit + 1)})


def test_a_non_image_upload_is_refused_in_plain_words(studio, character):
    with pytest.raises(InvalidImage) as err:
        studio.characters.set_reference_upload(character.id, b"%PDF-1.7 not an image")
    assert "PNG, JPEG or WebP" in err.value.message and "Pillow" not in err.value.message
    assert studio.characters.get(character.id).reference_image_key is None
