"""AppTest: AI assist on the Characters editor: suggest, accept (autosave keeps it), edit, discard,
enhance all with a preview first, and a failing text model that leaves the fields as they were."""
from __future__ import annotations

import pytest
from ui_helpers import texts

from tests.fakes.chat import OpenAIChatFake


def _open(at, cid: str):
    at.query_params["character"] = cid
    at.run()
    assert not at.exception
    return at


def test_suggest_a_description_accept_it_and_autosave_keeps_it(at, studio):
    mia = studio.characters.create({"name": "Mia", "appearance_tags": ["red hair"]})
    _open(at, mia.id)
    at.button(key=f"as.{mia.id}.suggest.description").click().run()
    assert not at.exception
    preview = at.text_area(key=f"as.{mia.id}.edit.description").value
    assert "Mia" in preview and "offline suggester" in texts(at)
    assert studio.characters.get(mia.id).description == ""  # only a preview so far
    at.button(key=f"as.{mia.id}.accept.description").click().run()
    assert not at.exception
    assert studio.characters.get(mia.id).description == preview
    assert at.text_area(key=f"ed.{mia.id}.1.description").value == preview  # the field shows it
    assert "Saved" in texts(at)
    at.run()  # a later run keeps it
    assert studio.characters.get(mia.id).description == preview


def test_an_edited_suggestion_is_saved_as_edited_and_discard_drops_it(at, studio):
    mia = studio.characters.create({"name": "Mia", "description": "A barista."})
    _open(at, mia.id)
    at.button(key=f"as.{mia.id}.suggest.persona").click().run()
    at.text_area(key=f"as.{mia.id}.edit.persona").set_value("Mia hums while she works.")
    at.button(key=f"as.{mia.id}.accept.persona").click().run()
    assert studio.characters.get(mia.id).persona == "Mia hums while she works."
    at.button(key=f"as.{mia.id}.suggest.traits").click().run()
    at.button(key=f"as.{mia.id}.discard.traits").click().run()
    assert not at.exception
    assert studio.characters.get(mia.id).traits is None
    assert f"as.{mia.id}.edit.traits" not in [w.key for w in at.text_area]


def test_enhance_all_on_a_sparse_character_previews_each_empty_field_first(at, studio):
    mia = studio.characters.create({"name": "Mia", "description": "A barista.", "traits": "stubborn"})
    before = studio.characters.get(mia.id)
    _open(at, mia.id)
    at.button(key=f"as.{mia.id}.all").click().run()
    assert not at.exception
    shown = {k for k in (w.key for w in at.text_area) if k and k.startswith(f"as.{mia.id}.edit.")}
    assert shown == {f"as.{mia.id}.edit.persona", f"as.{mia.id}.edit.first_message"}
    assert "Physical:" in texts(at)  # the appearance preview
    assert studio.characters.get(mia.id) == before  # nothing saved before a click
    # Some previews sit in folded sections: a note at the top says which wait for review.
    assert any("Suggestions to review: appearance, persona, first message" in i.value for i in at.info)
    for field in ("appearance", "persona", "first_message"):
        at.button(key=f"as.{mia.id}.accept.{field}").click().run()
    assert not any("Suggestions to review" in i.value for i in at.info)
    after = studio.characters.get(mia.id)
    assert after.appearance_tags and after.clothing_tags and after.persona and after.first_message
    assert after.description == "A barista." and after.traits == "stubborn"  # the user's text is untouched


@pytest.fixture
def failing_text_model(monkeypatch):
    fake = OpenAIChatFake()
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    yield fake
    fake.close()


def test_a_text_model_failure_leaves_the_fields_as_they_were(failing_text_model, at, studio):
    mia = studio.characters.create({"name": "Mia", "description": "A barista.", "persona": "Quiet."})
    _open(at, mia.id)
    at.text_area(key=f"ed.{mia.id}.0.traits").set_value("curious")  # typed, not yet saved when asking
    failing_text_model.fault("submit", 503, {"error": {"message": "the model is overloaded"}}, times=5)
    at.button(key=f"as.{mia.id}.suggest.persona").click().run()
    assert not at.exception
    assert any("overloaded" in e.value and "Nothing was changed" in e.value for e in at.error)
    assert at.text_area(key=f"ed.{mia.id}.0.persona").value == "Quiet."
    assert at.text_area(key=f"ed.{mia.id}.0.traits").value == "curious"
    assert studio.characters.get(mia.id).persona == "Quiet."
    assert f"as.{mia.id}.edit.persona" not in [w.key for w in at.text_area]
    at.button(key=f"as.{mia.id}.all").click().run()
    assert any("Nothing was changed" in e.value for e in at.error)
    assert studio.characters.get(mia.id).first_message is None


def test_portraits_enhance_prompt_shows_a_diff_and_the_portrait_records_it(at, studio):
    from ui_helpers import page

    mia = studio.characters.create({"name": "Mia", "description": "A cheerful barista", "appearance_tags": ["red hair"]})
    at.query_params["character"] = mia.id
    page(at, "portraits")
    at.text_area(key=f"pt.{mia.id}.prompt").set_value("golden hour light")
    at.button(key=f"as.{mia.id}.enhance").click().run()
    assert not at.exception and not at.error
    shown = texts(at)
    assert "Enhanced with the offline suggester" in shown and ":green[" in shown  # the added words, coloured
    at.button(key="generate_portrait").click().run()
    [job] = studio.jobs.list(character_id=mia.id).items
    done = studio.jobs.wait([job.id], timeout=60)[0]
    recipe = studio.portraits.get(done.result_id).recipe
    assert recipe.enhancement.template == "portrait-sfw"
    assert recipe.enhancement.original_prompt == "golden hour light"
    assert recipe.final_prompt.startswith(recipe.enhancement.prompt)
    assert "fully clothed" in recipe.final_prompt  # the SFW template's wording


def test_models_page_lists_text_models_and_admins_edit_prompt_templates(at, studio):
    from ui_helpers import page

    page(at, "models")
    assert not at.exception
    assert "Offline suggester" in texts(at) and "text model" in texts(at)
    at.segmented_control(key="m_modality").set_value("chat").run()
    assert "offline/suggester" in texts(at)
    at.text_input(key="tpl.portrait-sfw.style").set_value("pastel watercolour")
    at.button(key="FormSubmitter:tpl.portrait-sfw.form-Save template").click().run()
    assert not at.exception
    assert studio.assist.templates.get("portrait-sfw").style == "pastel watercolour"
