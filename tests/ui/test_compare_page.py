"""The Compare page (AppTest): 3 prompts x 2 models x 2 seeds fill 12 cells; a failing cell (a loopback
OpenAI fake that refuses the prompt) shows its error and retries; a prompt variant's accepted enhancement
is recorded in its cells; a cell kept from the lightbox lands in the gallery."""
from __future__ import annotations

import pytest

from tests.fakes.openai import OpenAIFake
from tests.ui.ui_helpers import page, texts


def _open(at, studio, name: str = "Mia"):
    mia = studio.characters.create({"name": name, "description": "A cheerful barista with red hair."})
    at.query_params["character"] = mia.id
    page(at, "compare")
    assert not at.exception
    return mia


def _finish(at, studio, cid: str):
    """Wait for every cell of the character's comparisons, then rerun the page."""
    jobs = [j.id for j in studio.jobs.list(character_id=cid).items]
    studio.jobs.wait(jobs, timeout=60)
    at.run()
    assert not at.exception
    return studio.compare.get(studio.compare.list(cid)[0].id)


def test_three_prompts_two_models_two_seeds_fill_twelve_cells(at, studio):
    mia = _open(at, studio)
    models = {m.model_key: m.id for m in studio.models.list()}
    at.number_input(key=f"cmp.{mia.id}.n_prompts").set_value(3).run()
    for i, prompt in enumerate(["in the rain", "at the beach", "on a rooftop"]):
        at.text_area(key=f"cmp.{mia.id}.prompt.{i}").set_value(prompt)
    at.multiselect(key=f"cmp.{mia.id}.models").set_value([models["offline/preview"], models["offline/preview-i2i"]])
    at.text_input(key=f"cmp.{mia.id}.seeds").set_value("11, 12").run()
    assert "**12 cells** (3 prompts × 2 models × 2 seeds" in texts(at)
    at.button(key="cmp_run").click().run()
    assert not at.exception and not at.error
    comparison = _finish(at, studio, mia.id)
    assert comparison.cells == 12 and all(c.done for c in comparison.items)
    assert "12 of 12 done" in texts(at)
    opens = [b for b in at.button if b.key and b.key.startswith("cmp.open.")]
    assert len(opens) == 12
    assert studio.portraits.list(mia.id).total == 0  # nothing in the gallery until kept
    captions = texts(at)
    assert "seed 11" in captions and "seed 12" in captions and "Offline preview (reference blend)" in captions
    # Open a cell in the lightbox and keep it: a portrait with the cell's recipe.
    cell = comparison.items[5]
    at.button(key=f"cmp.open.{cell.job_id}").click().run()
    at.button(key="lightbox_keep").click().run()
    assert not at.exception
    [portrait] = studio.portraits.list(mia.id).items
    assert portrait.recipe.prompt == "at the beach" and portrait.recipe.seed == cell.seed


@pytest.fixture
def refusing_openai(home, monkeypatch):  # after `home`, which clears provider keys
    fake = OpenAIFake("sk-compare-test")
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    yield fake
    fake.close()


def test_a_failing_cell_shows_its_error_and_retries(refusing_openai, at, studio):
    mia = _open(at, studio)
    models = {m.model_key: m for m in studio.models.list()}
    gpt = models["gpt-image-1-mini"]
    at.text_area(key=f"cmp.{mia.id}.prompt.0").set_value("by the window")
    at.multiselect(key=f"cmp.{mia.id}.models").set_value([models["offline/preview"].id, gpt.id])
    at.text_input(key=f"cmp.{mia.id}.seeds").set_value("3").run()
    refusing_openai.fail_next("Your request was rejected by the safety system.")
    at.button(key="cmp_run").click().run()
    assert not at.exception
    comparison = _finish(at, studio, mia.id)
    ok, failed = comparison.items
    assert ok.done and failed.status == "failed"
    assert any("rejected by the safety system" in e.value for e in at.error)
    refusing_openai.fail_next(None)
    at.button(key=f"cmp.retry.{failed.job_id}").click().run()
    assert not at.exception
    again = _finish(at, studio, mia.id)
    assert all(c.done for c in again.items)
    assert not any("rejected" in e.value for e in at.error)
    assert "2 of 2 done" in texts(at)


def test_an_enhanced_prompt_variant_is_used_and_recorded_in_its_cells(at, studio):
    mia = _open(at, studio)
    at.number_input(key=f"cmp.{mia.id}.n_prompts").set_value(2).run()
    at.text_area(key=f"cmp.{mia.id}.prompt.0").set_value("golden hour light")
    at.text_area(key=f"cmp.{mia.id}.prompt.1").set_value("under neon signs")
    at.text_input(key=f"cmp.{mia.id}.seeds").set_value("4").run()
    at.button(key=f"as.cmp.{mia.id}.slot.0.enhance").click().run()
    assert not at.exception and not at.error
    assert "Enhanced with the offline suggester" in texts(at) and ":green[" in texts(at)
    at.button(key="cmp_run").click().run()
    comparison = _finish(at, studio, mia.id)
    enhanced, plain = comparison.items
    assert enhanced.recipe.enhancement.template == "portrait-sfw"
    assert enhanced.recipe.enhancement.original_prompt == "golden hour light"
    assert enhanced.recipe.final_prompt.startswith(enhanced.recipe.enhancement.prompt)
    assert plain.recipe.enhancement is None and "under neon signs" in plain.recipe.final_prompt
    assert "AI-enhanced" in texts(at)


def test_editing_an_enhanced_prompt_drops_its_enhancement(at, studio):
    mia = _open(at, studio)
    at.text_area(key=f"cmp.{mia.id}.prompt.0").set_value("laughing in the rain")
    at.text_input(key=f"cmp.{mia.id}.seeds").set_value("4").run()
    at.button(key=f"as.cmp.{mia.id}.slot.0.enhance").click().run()
    assert "Enhanced with the offline suggester" in texts(at)
    at.text_area(key=f"cmp.{mia.id}.prompt.0").set_value("laughing in the snow").run()
    assert "The prompt changed after it was enhanced" in texts(at)
    at.button(key="cmp_run").click().run()
    [cell] = _finish(at, studio, mia.id).items
    assert cell.recipe.enhancement is None
    assert "laughing in the snow" in cell.recipe.final_prompt and "rain" not in cell.recipe.final_prompt


def test_bad_input_is_shown_beside_its_field_and_run_waits(at, studio):
    mia = _open(at, studio)
    at.number_input(key=f"cmp.{mia.id}.n_prompts").set_value(2).run()
    at.text_area(key=f"cmp.{mia.id}.prompt.0").set_value("in the rain")
    at.text_input(key=f"cmp.{mia.id}.seeds").set_value("1, 1").run()
    errors = [e.value for e in at.error]
    assert "prompt 2 is empty: write it, or use fewer prompt variants" in errors
    assert "a seed is named more than once" in errors
    assert at.button(key="cmp_run").disabled
    at.text_area(key=f"cmp.{mia.id}.prompt.1").set_value("at dawn")
    at.text_input(key=f"cmp.{mia.id}.seeds").set_value(", ".join(str(i) for i in range(9))).run()
    assert [e.value for e in at.error] == ["at most 8 seeds in one comparison (got 9)"]
    at.text_input(key=f"cmp.{mia.id}.seeds").set_value("one, two").run()
    assert [e.value for e in at.error] == ["whole numbers separated by commas or spaces (empty: one random seed)"]
    at.text_input(key=f"cmp.{mia.id}.seeds").set_value("").run()
    assert not at.error and "**2 cells** (2 prompts × 1 model × 1 seed" in texts(at)  # empty: one random seed
    assert not at.button(key="cmp_run").disabled


def test_delete_asks_first_and_keeps_kept_portraits(at, studio):
    mia = _open(at, studio)
    at.text_input(key=f"cmp.{mia.id}.seeds").set_value("5").run()
    at.button(key="cmp_run").click().run()
    comparison = _finish(at, studio, mia.id)
    studio.compare.keep(comparison.items[0].job_id)
    at.button(key="cmp_delete").click().run()
    assert studio.compare.list(mia.id)  # not yet: the page asks
    assert any("portraits you kept from it stay" in w.value for w in at.warning)
    at.button(key="cmp_delete_no").click().run()
    assert studio.compare.list(mia.id) and not at.warning
    at.button(key="cmp_delete").click().run()
    at.button(key="cmp_delete_yes").click().run()
    assert not at.exception and studio.compare.list(mia.id) == []
    assert studio.portraits.list(mia.id).total == 1
