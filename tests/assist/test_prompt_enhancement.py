"""Prompt enhancement: templates as data (shipped set, admin edits), chosen by the content rating, within
the target model's budget; the tables behind assist work on DuckDB and PostgreSQL."""
from __future__ import annotations

import pytest

from core.assist.service import word_diff
from core.errors import AssistRateLimited, Forbidden, InvalidInput
from tests.assist.conftest import SPARSE
from tests.conftest import DB_BACKENDS


@pytest.fixture(params=DB_BACKENDS)
def db_backend(request) -> str:
    return request.param


def test_the_shipped_templates_cover_each_target_and_rating(open_studio):
    studio = open_studio()
    shipped = {(t.target, t.content_rating) for t in studio.assist.templates.list() if t.builtin}
    assert shipped == {(t, r) for t in ("portrait", "scene", "sprite") for r in ("sfw", "nsfw")}


def test_the_template_follows_the_rating_and_an_sfw_character_cannot_use_an_nsfw_one(open_studio, chat_fake):
    studio = open_studio(chat_fake.secrets())
    sfw = studio.characters.create(SPARSE)
    nsfw = studio.characters.create({**SPARSE, "name": "Noir", "content_rating": "nsfw"})
    chat_fake.answer = "Mia in the rain, soft light"
    assert studio.assist.enhance_prompt(sfw.id, "in the rain", target="scene").template_id == "scene-sfw"
    system = chat_fake.chats()[-1]["messages"][0]["content"]
    assert studio.assist.templates.get("scene-sfw").style in system
    assert "nsfw" not in system.lower().replace("rated sfw", "")
    assert studio.assist.enhance_prompt(nsfw.id, "in the rain", target="sprite").template_id == "sprite-nsfw"
    with pytest.raises(InvalidInput, match="NSFW template"):
        studio.assist.enhance_prompt(sfw.id, "x", template="portrait-nsfw")
    with pytest.raises(InvalidInput, match="target"):
        studio.assist.enhance_prompt(sfw.id, "x", target="poster")


def test_the_enhanced_prompt_keeps_within_the_image_models_budget(open_studio, chat_fake):
    studio = open_studio(chat_fake.secrets())
    mia = studio.characters.create({**SPARSE, "appearance_tags": ["red hair"]})
    preview = studio.models.route()
    studio.models.update(preview.id, {"capabilities": {**preview.capabilities.model_dump(), "max_prompt_chars": 60}})
    chat_fake.answer = ", ".join(["a long winding descriptive phrase"] * 20)
    enhanced = studio.assist.enhance_prompt(mia.id, "in the rain", image_model=preview.id)
    assert enhanced.budget == 60 and 0 < len(enhanced.enhanced) <= 60
    assert "at most 60 characters" in chat_fake.chats()[-1]["messages"][0]["content"]
    assert enhanced.recipe() == {"template": "portrait-sfw", "text_model": enhanced.model_id,
                                 "text_model_name": enhanced.model_name, "original_prompt": "in the rain"}
    row = studio.ctx.db.fetchone("SELECT kind, subject, status FROM assist_calls")
    assert row == {"kind": "enhance_prompt", "subject": "portrait-sfw", "status": "ok"}


def test_admins_add_and_edit_templates_others_cannot(open_studio):
    studio = open_studio()
    added = studio.assist.templates.add({"id": "portrait-noir", "name": "Noir portrait", "target": "portrait",
                                         "content_rating": "sfw", "instruction": "Film noir lighting.",
                                         "style": "black and white, hard shadows"})
    assert not added.builtin and added in studio.assist.templates.list(target="portrait", content_rating="sfw")
    edited = studio.assist.templates.update("portrait-sfw", {"style": "pastel colours"})
    assert edited.style == "pastel colours" and edited.builtin
    with pytest.raises(InvalidInput, match="exists already"):
        studio.assist.templates.add({**added.model_dump(include={"id", "name", "target", "content_rating",
                                                                 "instruction"})})
    with pytest.raises(InvalidInput, match="content_rating"):
        studio.assist.templates.update("portrait-sfw", {"content_rating": "pg"})
    bob = studio.as_user("bob")
    with pytest.raises(Forbidden):
        bob.assist.templates.update("portrait-sfw", {"style": "x"})
    with pytest.raises(Forbidden):
        bob.assist.templates.add({**added.model_dump(include={"name", "target", "content_rating", "instruction"}),
                                  "id": "bobs"})
    mia = studio.characters.create(SPARSE)
    assert "pastel colours" in studio.assist.enhance_prompt(mia.id, "smiling").enhanced  # offline uses the edit


def test_the_rate_counts_this_users_recent_paid_calls(open_studio, chat_fake):
    studio = open_studio({**chat_fake.secrets(), "STUDIO_ASSIST_RATE": "1"})
    mia = studio.characters.create(SPARSE)
    studio.assist.enhance_prompt(mia.id, "x")
    with pytest.raises(AssistRateLimited):
        studio.assist.suggest(mia.id, "persona")


def test_word_diff_marks_added_and_removed_words():
    assert word_diff("red hair smiling outdoors", "red hair laughing outdoors at dusk") == [
        ("same", "red hair"), ("removed", "smiling"), ("added", "laughing"), ("same", "outdoors"),
        ("added", "at dusk")]


def test_a_portrait_from_an_enhanced_prompt_records_the_template_and_text_model(open_studio):
    studio = open_studio()
    mia = studio.characters.create({**SPARSE, "appearance_tags": ["red hair"]})
    enhanced = studio.assist.enhance_prompt(mia.id, "in the rain")
    jobs = studio.portraits.generate(mia.id, {"prompt": "in the rain", "presets": {"pose": "closeup"},
                                              "enhancement": {"prompt": enhanced.enhanced, **{
                                                  k: v for k, v in enhanced.recipe().items()
                                                  if k in ("template", "text_model", "original_prompt")}}})
    studio.jobs.wait([j.id for j in jobs], timeout=30)
    [portrait] = studio.portraits.list(mia.id).items
    assert portrait.recipe.enhancement.model_dump() == {"prompt": enhanced.enhanced, "template": "portrait-sfw",
                                              "text_model": enhanced.model_id, "original_prompt": "in the rain"}
    final = portrait.recipe.final_prompt
    assert final.startswith(enhanced.enhanced) and "head and shoulders" in final  # the pose preset still applies
    with pytest.raises(InvalidInput, match="enhancement"):
        studio.portraits.generate(mia.id, {"enhancement": {"prompt": "", "template": "x", "text_model": "y"}})


def test_an_enhancement_runs_only_with_the_prompt_it_was_made_from(open_studio):
    """A prompt edited after it was enhanced would run the old words under the new prompt's name."""
    studio = open_studio()
    mia = studio.characters.create({**SPARSE, "description": "A cheerful barista. She hums.",
                                    "appearance_tags": ["red hair"]})
    enhanced = studio.assist.enhance_prompt(mia.id, "laughing in the rain")
    assert "A cheerful barista" in enhanced.enhanced  # the character, as an unenhanced prompt has it
    enhancement = {"prompt": enhanced.enhanced, "template": enhanced.template_id, "text_model": enhanced.model_id,
                   "original_prompt": "laughing in the rain"}
    with pytest.raises(InvalidInput) as refused:
        studio.portraits.generate(mia.id, {"prompt": "laughing in the snow", "enhancement": enhancement})
    assert "another prompt" in refused.value.errors["enhancement"]
    with pytest.raises(InvalidInput, match="another prompt"):
        studio.compare.plan({"character_id": mia.id, "prompts": [{"text": "laughing in the snow",
                                                                    "enhancement": enhancement}]})
    assert studio.jobs.list(character_id=mia.id).total == 0
    jobs = studio.portraits.generate(mia.id, {"prompt": "laughing  in the rain", "enhancement": enhancement})
    assert len(jobs) == 1  # the same words (spaces as the prompt field stores them)
