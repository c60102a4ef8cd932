"""Scenes, Queue and Models pages: empty states, data, and their main actions."""
from __future__ import annotations

from pathlib import Path

import pytest
from ui_helpers import page, texts

from tests.engine.conftest import until
from tests.engine.scripted import ScriptedServer
from tests.plugin_site import install_distribution


def make_character(studio):
    return studio.characters.create({"name": "Mia", "description": "A cheerful barista"})


# -- Scenes ----------------------------------------------------------------------------
def test_scenes_without_character(at, studio):
    page(at, "scenes")
    assert not at.exception
    assert "Create one on the **Characters** page" in texts(at)


def test_scenes_empty_then_create(at, studio):
    mia = make_character(studio)
    at.query_params["character"] = mia.id
    page(at, "scenes")
    assert "No scenes yet" in texts(at)
    next(b for b in at.button if b.label == "New scene").click()
    at.run()
    at.text_input(key="sc.new.name").set_value("Rainy morning")
    at.text_area(key="sc.new.description").set_value("The cafe at opening time")
    at.text_area(key="sc.new.starters").set_value("Morning!\nThe usual?")
    at.number_input(key="sc.new.priority").set_value(5)
    at.button(key="FormSubmitter:sc.new.form-Create scene").click()
    at.run()
    assert not at.exception
    [scene] = studio.scenes.list(mia.id)
    assert scene.name == "Rainy morning" and scene.starters == ["Morning!", "The usual?"] and scene.priority == 5
    assert "Rainy morning" in texts(at)


def test_scene_validation_message(at, studio):
    mia = make_character(studio)
    at.query_params["character"] = mia.id
    page(at, "scenes")
    next(b for b in at.button if b.label == "New scene").click()
    at.run()
    at.button(key="FormSubmitter:sc.new.form-Create scene").click()
    at.run()
    assert any("at least 1 character" in e.value for e in at.error)
    assert studio.scenes.list(mia.id) == []


def test_generate_scene_image_edit_and_delete(at, studio):
    mia = make_character(studio)
    scene = studio.scenes.create(mia.id, {"name": "Rooftop", "prompt": "city lights at night"})
    at.query_params["character"] = mia.id
    page(at, "scenes")
    at.button(key=f"gen.{scene.id}").click()
    at.run()
    assert not at.exception and not at.error
    [job] = studio.jobs.list(character_id=mia.id).items
    assert job.kind == "scene"
    studio.jobs.wait(job.id, timeout=60)
    at.run()
    assert studio.scenes.get(scene.id).image_key
    # Edit in the dialog.
    at.button(key=f"edit.{scene.id}").click()
    at.run()
    at.text_input(key=f"sc.{scene.id}.name").set_value("Rooftop at night")
    at.button(key=f"FormSubmitter:sc.{scene.id}.form-Save scene").click()
    at.run()
    assert studio.scenes.get(scene.id).name == "Rooftop at night"
    # Delete asks first.
    at.button(key=f"del.{scene.id}").click()
    at.run()
    assert len(studio.scenes.list(mia.id)) == 1
    at.button(key="sc_delete_yes").click()
    at.run()
    assert studio.scenes.list(mia.id) == []
    assert "No scenes yet" in texts(at)


# -- Queue ------------------------------------------------------------------------------
def test_queue_empty(at, studio):
    page(at, "queue")
    assert not at.exception
    body = texts(at)
    assert "Nothing is running" in body and "No jobs yet" in body


def test_queue_with_jobs_stats_filter_and_retry(at, studio):
    mia = make_character(studio)
    jobs = studio.portraits.generate(mia.id, {"n": 3})
    studio.jobs.wait([j.id for j in jobs], timeout=60)
    studio.engine.jobs.set(jobs[0].id, only_if=("completed",), status="failed", stage="failed",
                           last_error="replicate: NSFW content detected")
    page(at, "queue")
    assert not at.exception
    body = texts(at)
    assert "Jobs · 3" in body and "NSFW content detected" in body
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Jobs"] == "3" and metrics["Failed"] == "1"
    assert len(at.get("arrow_vega_lite_chart")) + len(at.get("vega_lite_chart")) >= 1 or at.dataframe
    at.pills(key="q_status").set_value(["failed"])
    at.run()
    assert "Jobs · 1" in texts(at)
    at.button(key=f"hist.retry.{jobs[0].id}").click()
    at.run()
    studio.jobs.wait(jobs[0].id, timeout=60)
    assert studio.jobs.get(jobs[0].id).status == "completed"


@pytest.fixture
def scripted(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The scripted loopback provider, installed as plugins are (an entry point), for the app's studio."""
    server = ScriptedServer()
    install_distribution(tmp_path / "site", "studio-scripted-test", "0", {"scripted": "tests.engine.scripted:plugin"})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("STUDIO_LOAD_PLUGINS", "scripted")
    monkeypatch.setenv("SCRIPTED_URL", server.url)
    monkeypatch.setenv("SCRIPTED_KEY", "scripted-test-key")
    yield server
    server.release()
    server.close()


def test_queue_cancels_a_running_job(scripted, at, studio):
    mia = make_character(studio)
    [job] = studio.portraits.generate(mia.id, prompt="[stall]")  # the provider holds it running
    running = until(studio, lambda: (j := studio.jobs.get(job.id)).stage == "generating" and j)
    assert running.status == "running" and running.provider_id == "scripted"
    page(at, "queue")
    assert "Active · 1" in texts(at)
    at.button(key=f"active.cancel.{job.id}").click()
    at.run()
    assert not at.exception and not at.error
    assert studio.jobs.get(job.id).status == "canceled"
    scripted.wait_for(lambda s: s.canceled == [running.provider_request_id])  # the provider was told
    assert any("canceled" in t.value for t in at.toast) and "Active · 0" in texts(at)
    assert scripted.submissions == {job.id: 1} and studio.portraits.list(mia.id).total == 0


def test_queue_offers_no_retry_for_a_job_whose_scene_was_deleted(scripted, at, studio):
    mia = make_character(studio)
    scene = studio.scenes.create(mia.id, {"name": "Cafe", "prompt": "[stall] behind the counter"})
    job = studio.scenes.generate_image(scene.id)
    until(studio, lambda: studio.jobs.get(job.id).stage == "generating")
    studio.scenes.delete(scene.id)  # the running job is canceled, and kept saying why
    [portrait] = studio.portraits.generate(mia.id, prompt="[stall]")
    until(studio, lambda: studio.jobs.get(portrait.id).stage == "generating")
    studio.jobs.cancel(portrait.id)
    page(at, "queue")
    assert not at.exception
    assert "scene was deleted" in texts(at)
    keys = {b.key for b in at.button}
    assert f"hist.retry.{portrait.id}" in keys and f"hist.retry.{job.id}" not in keys
    assert studio.jobs.retryable(studio.jobs.list().items) == {portrait.id}


# -- Models -----------------------------------------------------------------------------
def test_models_page_lists_providers_and_models(at, studio):
    page(at, "models")
    assert not at.exception and not at.error
    body = texts(at)
    assert "Offline preview" in body and "configured" in body and "image-to-image" in body
    assert any(b.label == "Check" for b in at.button)


def test_check_provider(at, studio):
    """The offline preview needs no key and has no health check: it says so, as information, not as a failure
    or a success; a provider without its key says which variable to set."""
    page(at, "models")
    at.button(key="m.check.offline").click()
    at.run()
    assert not at.exception and not at.error and not at.success
    [offline] = [i.value for i in at.info if i.value.startswith("Offline preview:")]
    assert "no health check" in offline
    at.button(key="m.check.fal").click()
    at.run()
    assert not at.error and not at.success
    [fal] = [i.value for i in at.info if i.value.startswith("fal.ai:")]
    assert "FAL_KEY" in fal


def test_deactivate_model_removes_it_from_portraits(at, studio):
    mia = make_character(studio)
    i2i = next(m for m in studio.models.list(usable_only=True) if m.supports_i2i)
    at.query_params["character"] = mia.id
    page(at, "portraits")
    assert any(o.startswith(i2i.display_name + "  ·") for o in at.selectbox(key="pt.model").options)
    at.switch_page("pages/models.py")
    at.run()
    at.toggle(key=f"m.active.{i2i.id}").set_value(False)
    at.run()
    assert studio.models.get(i2i.id).is_active is False
    at.switch_page("pages/portraits.py")
    at.run()
    assert not any(o.startswith(i2i.display_name + "  ·") for o in at.selectbox(key="pt.model").options)
    assert "Image match: 0 image-to-image models available" in texts(at)


def test_edit_model_validates_json(at, studio):
    model = studio.models.list()[0]
    page(at, "models")
    at.button(key=f"m.edit.{model.id}").click()
    at.run()
    at.text_area(key=f"m.{model.id}.defaults").set_value("{not json")
    at.button(key=f"FormSubmitter:m.{model.id}.form-Save model").click()
    at.run()
    assert any("not valid JSON" in e.value for e in at.error)
    at.text_area(key=f"m.{model.id}.defaults").set_value('{"steps": 4}')
    at.text_input(key=f"m.{model.id}.name").set_value("Offline fast")
    at.number_input(key=f"m.{model.id}.priority").set_value(7)
    at.button(key=f"FormSubmitter:m.{model.id}.form-Save model").click()
    at.run()
    changed = studio.models.get(model.id)
    assert changed.input_defaults == {"steps": 4} and changed.display_name == "Offline fast" and changed.priority == 7


def test_add_model(at, studio):
    page(at, "models")
    next(b for b in at.button if b.label == "Add model").click()
    at.run()
    at.text_input(key="m.new.key").set_value("offline/extra")
    at.text_input(key="m.new.name").set_value("Extra preview")
    at.button(key="FormSubmitter:m.new.form-Add model").click()
    at.run()
    assert not at.error
    assert any(m.model_key == "offline/extra" for m in studio.models.list())


def test_storage_cleanup_button(at, studio):
    page(at, "models")
    if not hasattr(studio, "maintenance"):
        return
    at.button(key="gc_scan").click()
    at.run()
    assert not at.exception and not at.error
    assert any("Orphans" in c.value for c in at.code)


def test_provider_concurrency_and_enabled(at, studio):
    page(at, "models")
    at.number_input(key="m.conc.offline").set_value(3)
    at.run()
    assert next(p for p in studio.models.providers() if p.id == "offline").concurrency_limit == 3
    at.toggle(key="m.enabled.offline").set_value(False)
    at.run()
    assert not next(p for p in studio.models.providers() if p.id == "offline").is_enabled
    assert not at.exception


def test_core_error_renders_as_message_not_traceback(at, studio):
    mia = make_character(studio)
    studio.models.update_provider("offline", {"is_enabled": False})  # nothing can generate now
    at.query_params["character"] = mia.id
    page(at, "portraits")
    at.button(key="generate_portrait").click()
    at.run()
    assert not at.exception
    assert any("No image model is available" in e.value for e in at.error)


# -- the image lightbox from Scenes and Queue --------------------------------------------
def scene_with_image(studio):
    mia = make_character(studio)
    scene = studio.scenes.create(mia.id, {"name": "Rooftop", "prompt": "city lights at night"})
    job = studio.scenes.generate_image(scene.id, seed=41)
    assert studio.jobs.wait([job.id], timeout=60)[0].status == "completed"
    return mia, studio.scenes.get(scene.id), studio.jobs.get(job.id)


def downloads(at) -> list[str]:
    return [d.label for d in at.get("download_button")]


def test_scene_image_opens_in_the_lightbox_with_download(at, studio):
    mia, scene, _ = scene_with_image(studio)
    at.query_params["character"] = mia.id
    page(at, "scenes")
    assert "Download" not in downloads(at)
    at.button(key=f"open.{scene.id}").click()
    at.run()
    assert not at.exception and not at.error
    body = texts(at)
    assert "**Rooftop**" in body and "**Seed:** 41" in body and "city lights at night" in body
    assert downloads(at) == ["Download"]


def test_a_finished_queue_row_opens_its_image(at, studio):
    mia, scene, scene_job = scene_with_image(studio)
    [job] = studio.portraits.generate(mia.id, seed=9)
    portrait = studio.portraits.get(studio.jobs.wait([job.id], timeout=60)[0].result_id)
    page(at, "queue")
    at.button(key=f"hist.open.{job.id}").click()
    at.run()
    assert not at.exception and not at.error
    assert "**Seed:** 9" in texts(at) and downloads(at) == ["Download"]
    assert len(at.image) == 1  # the image itself (the queue shows no other)
    at.button(key=f"hist.open.{scene_job.id}").click()
    at.run()
    assert "**Rooftop**" in texts(at) and portrait.id


def test_the_lightbox_shows_a_seed_only_for_models_that_take_one(at, studio):
    mia = make_character(studio)
    [job] = studio.portraits.generate(mia.id, seed=9)
    portrait = studio.portraits.get(studio.jobs.wait([job.id], timeout=60)[0].result_id)
    page(at, "queue")
    at.button(key=f"hist.open.{job.id}").click()
    at.run()
    assert "**Seed:** 9" in texts(at)
    model = studio.models.get(portrait.recipe.model_id)
    studio.models.update(model.id, {"capabilities": {**model.capabilities.model_dump(), "supports_seed": False}})
    at.run()
    assert not at.exception and "**Seed:**" not in texts(at) and "**Model:**" in texts(at)


def test_the_preview_banner_names_image_provider_keys_only(at, studio):
    page(at, "characters")
    [banner] = [i.value for i in at.info if i.value.startswith("**Preview mode**")]
    assert "FAL_KEY" in banner and "OPENAI_API_KEY" in banner
    assert "STUDIO_TEXT_API_KEY" not in banner  # AI assist's text model makes no images
