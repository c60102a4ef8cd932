"""Portraits page: empty states, the workspace controls, generate with the offline provider, gallery actions."""
from __future__ import annotations

from ui_helpers import page, texts


def make_character(studio, **extra):
    return studio.characters.create({"name": "Mia", "description": "A cheerful barista", **extra})


def open_portraits(at, character_id):
    at.query_params["character"] = character_id
    return page(at, "portraits")


def generated(studio, character_id, n=1, **options):
    jobs = studio.portraits.generate(character_id, {"n": n, **options})
    done = studio.jobs.wait([j.id for j in jobs], timeout=60)
    assert all(j.status == "completed" for j in done), [j.last_error for j in done]
    return [studio.portraits.get(j.result_id) for j in done]


def test_no_character_says_what_to_do(at, studio):
    page(at, "portraits")
    assert not at.exception
    assert "Create one on the **Characters** page" in texts(at)


def test_workspace_without_portraits(at, studio):
    mia = make_character(studio)
    open_portraits(at, mia.id)
    assert not at.exception and not at.error
    body = texts(at)
    assert "No portraits yet" in body
    assert "Image match: 1 image-to-image model available" in body
    pose = at.pills(key=f"pt.{mia.id}.pose")
    assert list(pose.options) == ["Standing", "Profile", "Back", "Sitting", "Lying", "Close-up"]
    assert {s.label for s in at.selectbox} >= {"Expression", "Outfit", "Camera", "Model"}
    model = at.selectbox(key="pt.model")
    assert any("image-to-image" in o for o in model.options)
    assert at.button(key="generate_portrait").label == "Generate portrait"
    assert at.text_area(key=f"pt.{mia.id}.prompt").max_chars == 200
    assert "0/200 characters" in body
    assert "Final prompt" in body


def test_generate_then_see_the_portrait(at, studio):
    mia = make_character(studio)
    open_portraits(at, mia.id)
    at.pills(key=f"pt.{mia.id}.pose").set_value("closeup")
    at.text_area(key=f"pt.{mia.id}.prompt").set_value("golden hour light")
    at.number_input(key="pt.n").set_value(2)
    at.button(key="generate_portrait").click()
    at.run()
    assert not at.exception and not at.error
    jobs = studio.jobs.list(character_id=mia.id).items
    assert len(jobs) == 2
    assert all(j.request.presets == {"pose": "closeup"} for j in jobs)
    assert all("golden hour light" in j.request.final_prompt for j in jobs)
    # Tiles are there at once (the fragment reads the job rows).
    assert "Generation" in texts(at)
    studio.jobs.wait([j.id for j in jobs], timeout=60)
    at.run()
    assert not at.exception
    assert "Gallery · 2 portraits" in texts(at)
    assert len(at.image) >= 3  # primary + 2 thumbnails
    # The first finished portrait became primary, so exactly one tile is starred.
    assert sum("Primary]" in m.value for m in at.markdown) >= 1


def test_the_pages_batch_maximum_is_the_apis(at, studio):
    import pytest

    from core.errors import InvalidInput

    mia = make_character(studio)
    open_portraits(at, mia.id)
    import re

    # The page states its maximum beside the field (the input itself has none: the browser would keep showing
    # a larger number while sending the old one).
    most = int(re.search(r"At most (\d+)", " ".join(c.value for c in at.caption)).group(1))
    assert len(studio.portraits.generate(mia.id, {"n": most})) == most  # the API takes it
    with pytest.raises(InvalidInput, match=f"n: at most {most} "):
        studio.portraits.generate(mia.id, {"n": most + 1})  # and refuses one more, naming the limit
    studio.jobs.wait([j.id for j in studio.jobs.list(character_id=mia.id).items], timeout=60)


def test_generate_needs_a_description(at, studio):
    mia = studio.characters.create({"name": "Mia"})
    open_portraits(at, mia.id)
    at.button(key="generate_portrait").click()
    at.run()
    assert any("Description: is required" in e.value for e in at.error)
    assert studio.jobs.list().total == 0


def test_set_primary_and_star(at, studio):
    mia = make_character(studio)
    first, second = generated(studio, mia.id, n=2)
    primary = studio.characters.get(mia.id).primary_portrait_id
    other = second if primary == first.id else first
    open_portraits(at, mia.id)
    at.button(key=f"primary.{other.id}").click()
    at.run()
    assert studio.characters.get(mia.id).primary_portrait_id == other.id
    assert not any(b.key == f"primary.{other.id}" for b in at.button)  # starred now, no button


def test_delete_asks_then_deletes(at, studio):
    mia = make_character(studio)
    [p] = generated(studio, mia.id)
    open_portraits(at, mia.id)
    at.button(key=f"view.{p.id}").click()
    at.run()
    at.button(key="view_delete").click()
    at.run()
    assert studio.portraits.list(mia.id).total == 1
    assert "cannot be undone" in texts(at)
    at.button(key="view_delete_yes").click()
    at.run()
    assert studio.portraits.list(mia.id).total == 0
    assert "No portraits yet" in texts(at)


def test_large_view_recipe_navigation_and_regenerate(at, studio):
    mia = make_character(studio)
    generated(studio, mia.id, n=2, seed=7)
    open_portraits(at, mia.id)
    first = studio.portraits.list(mia.id).items[0]
    at.button(key=f"view.{first.id}").click()
    at.run()
    body = texts(at)
    assert "1 of 2" in body and "Offline preview" in body and "**Seed:**" in body
    at.button(key="view_next").click()
    at.run()
    assert "2 of 2" in texts(at)
    second = studio.portraits.list(mia.id).items[1]
    at.text_area(key=f"regen.{second.id}").set_value("in the rain")
    at.button(key="view_regen").click()
    at.run()
    assert not at.exception and not at.error
    job = studio.jobs.list(character_id=mia.id, limit=1).items[0]
    assert job.request.prompt == "in the rain"
    studio.jobs.wait(job.id, timeout=60)


def test_use_as_reference_and_image_match(at, studio):
    mia = make_character(studio)
    [p] = generated(studio, mia.id)
    open_portraits(at, mia.id)
    at.button(key=f"view.{p.id}").click()
    at.run()
    at.button(key="view_ref").click()
    at.run()
    assert studio.characters.get(mia.id).reference_image_key
    assert at.checkbox(key=f"pt.{mia.id}.use_ref").value is True
    at.button(key="generate_portrait").click()
    at.run()
    [job] = studio.jobs.active(character_id=mia.id) or [studio.jobs.list(character_id=mia.id, limit=1).items[0]]
    assert job.request.mode == "i2i"
    studio.jobs.wait(job.id, timeout=60)
    # Remove the reference.
    at.run()
    remove = next(b for b in at.button if b.label == "Remove reference")
    remove.click()
    at.run()
    assert studio.characters.get(mia.id).reference_image_key is None


def test_failed_job_shows_provider_message_and_retry(at, studio):
    mia = make_character(studio)
    [p] = generated(studio, mia.id)
    studio.engine.jobs.set(p.job_id, only_if=("completed",), status="failed", stage="failed",
                           last_error="fal: content policy violation")
    open_portraits(at, mia.id)
    assert any("content policy violation" in e.value for e in at.error)
    retry = next(b for b in at.button if b.key == f"pt.tile.{mia.id}.retry.{p.job_id}")
    retry.click()
    at.run()
    assert studio.jobs.get(p.job_id).status in ("queued", "running", "storing", "completed")
    studio.jobs.wait(p.job_id, timeout=60)


def test_gallery_is_paged(at, studio):
    mia = make_character(studio)
    [p] = generated(studio, mia.id)
    db = studio.ctx.db
    row = db.fetchone("SELECT * FROM character_portraits WHERE id = ?", [p.id])
    cols = list(row)
    with db.transaction() as cur:
        for i in range(40):
            values = {**row, "id": f"copy{i:04d}", "job_id": f"job{i:04d}"}
            cur.execute(f"INSERT INTO character_portraits ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        [values[c] for c in cols])
    open_portraits(at, mia.id)
    assert "Gallery · 41 portraits" in texts(at)
    assert "Page 1 of 3" in "\n".join(m.value for m in at.markdown)
    at.button(key="gal_next").click()
    at.run()
    assert "Page 2 of 3" in "\n".join(m.value for m in at.markdown)


def png_bytes(color=(200, 40, 40)) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(out, "PNG")
    return out.getvalue()


def test_upload_reference_then_invalid_upload_is_an_error(at, studio):
    mia = make_character(studio)
    open_portraits(at, mia.id)
    at.file_uploader[0].set_value(("face.png", png_bytes(), "image/png"))
    at.run()
    assert not at.exception
    assert studio.characters.get(mia.id).reference_image_key
    assert at.checkbox(key=f"pt.{mia.id}.use_ref").value is True
    assert not at.warning  # e.g. no "value set via the Session State API" warnings
    at.file_uploader[0].set_value(("broken.png", b"not an image at all", "image/png"))
    at.run()
    assert not at.exception
    assert any("not an image" in e.value for e in at.error)


def test_pick_reference_from_portraits_dialog(at, studio):
    mia = make_character(studio)
    [p] = generated(studio, mia.id)
    open_portraits(at, mia.id)
    next(b for b in at.button if b.label == "Pick from portraits").click()
    at.run()
    at.button(key=f"pickref.{p.id}").click()
    at.run()
    assert studio.characters.get(mia.id).reference_image_key
    assert not any(b.key == f"pickref.{p.id}" for b in at.button)  # the dialog closed


def test_choices_and_prompt_survive_a_page_switch(at, studio):
    mia = make_character(studio)
    open_portraits(at, mia.id)
    at.pills(key=f"pt.{mia.id}.pose").set_value("sitting")
    at.text_area(key=f"pt.{mia.id}.prompt").set_value("on a rooftop")
    at.run()
    at.switch_page("pages/scenes.py")
    at.run()
    at.switch_page("pages/portraits.py")
    at.run()
    assert at.pills(key=f"pt.{mia.id}.pose").value == "sitting"
    assert at.text_area(key=f"pt.{mia.id}.prompt").value == "on a rooftop"


def test_lightbox_stays_on_its_portrait_when_a_new_one_arrives(at, studio):
    mia = make_character(studio)
    generated(studio, mia.id, n=2, seed=5)
    first, second = studio.portraits.list(mia.id).items
    studio.portraits.set_primary(first.id)
    open_portraits(at, mia.id)
    at.button(key=f"view.{second.id}").click()
    at.run()
    assert "2 of 2" in texts(at)
    at.text_area(key=f"regen.{second.id}").set_value("by the sea")
    at.run()
    newest, = generated(studio, mia.id)  # finishes while the lightbox is open; comes first in the gallery
    at.run()
    assert not at.exception
    assert "3 of 3" in texts(at) and at.text_area(key=f"regen.{second.id}").value == "by the sea"
    at.button(key="view_prev").click()
    at.run()
    assert "2 of 3" in texts(at) and any(t.key == f"regen.{first.id}" for t in at.text_area)
    at.button(key="view_next").click()
    at.run()
    at.button(key="view_primary").click()
    at.run()
    assert studio.characters.get(mia.id).primary_portrait_id == second.id
    at.button(key="view_regen").click()
    at.run()
    job = studio.jobs.list(character_id=mia.id, limit=1).items[0]
    assert job.request.prompt == "by the sea" and job.request.seed == second.recipe.seed
    studio.jobs.wait(job.id, timeout=60)


def test_delete_in_the_lightbox_shows_the_next_portrait(at, studio):
    mia = make_character(studio)
    generated(studio, mia.id, n=3)
    a, b, c = studio.portraits.list(mia.id).items
    open_portraits(at, mia.id)
    at.button(key=f"view.{b.id}").click()
    at.run()
    at.button(key="view_delete").click()
    at.run()
    at.button(key="view_delete_yes").click()
    at.run()
    assert [p.id for p in studio.portraits.list(mia.id).items] == [a.id, c.id]
    assert "2 of 2" in texts(at) and any(t.key == f"regen.{c.id}" for t in at.text_area)


def test_select_then_bulk_delete_asks_once(at, studio):
    mia = make_character(studio)
    generated(studio, mia.id, n=3)
    a, b, c = studio.portraits.list(mia.id).items
    open_portraits(at, mia.id)
    assert not any(c.key == f"sel.{a.id}" for c in at.checkbox)  # ticks only while selecting
    at.segmented_control(key=f"pt.{mia.id}.mode").set_value("select")
    at.run()
    at.checkbox(key=f"sel.{a.id}").check()
    at.run()
    at.checkbox(key=f"sel.{c.id}").check()
    at.run()
    assert "**2 selected**" in texts(at)
    assert any(d.label == "Download selected" for d in at.get("download_button"))
    at.button(key="pt_bulk_delete").click()
    at.run()
    assert "Delete the 2 selected portraits" in texts(at) and studio.portraits.list(mia.id).total == 3
    at.button(key="pt_bulk_delete_yes").click()
    at.run()
    assert not at.exception
    assert [p.id for p in studio.portraits.list(mia.id).items] == [b.id]
    assert "Gallery · 1 portrait" in texts(at) and "selected**" not in texts(at)


def test_move_earlier_later_and_first(at, studio):
    mia = make_character(studio)
    generated(studio, mia.id, n=3)
    a, b, c = studio.portraits.list(mia.id).items
    open_portraits(at, mia.id)
    assert not any(b.key == f"mvfirst.{a.id}" for b in at.button)  # only while arranging
    at.segmented_control(key=f"pt.{mia.id}.mode").set_value("arrange")
    at.run()
    assert at.button(key=f"mvfirst.{a.id}").disabled and at.button(key=f"mvdown.{c.id}").disabled
    at.button(key=f"mvdown.{a.id}").click()
    at.run()
    assert [p.id for p in studio.portraits.list(mia.id).items] == [b.id, a.id, c.id]
    at.button(key=f"mvfirst.{c.id}").click()
    at.run()
    assert [p.id for p in studio.portraits.list(mia.id).items] == [c.id, b.id, a.id]
    at.button(key=f"mvup.{a.id}").click()
    at.run()
    assert [p.id for p in studio.portraits.list(mia.id).items] == [c.id, a.id, b.id]
    assert not at.exception and not at.error


def test_a_job_tile_shows_the_seed_only_for_models_that_take_one(at, studio):
    mia = studio.characters.create({"name": "Mia", "description": "A barista"})
    [job] = studio.portraits.generate(mia.id, seed=9)
    studio.jobs.wait([job.id], timeout=60)
    at.query_params["character"] = mia.id
    at.session_state["pt_watch"] = {mia.id: [job.id]}  # the batch this session asked for
    page(at, "portraits")
    assert "Done · seed 9" in " ".join(c.value for c in at.caption)
    model = studio.models.get(job.model_id)
    studio.models.update(model.id, {"capabilities": {**model.capabilities.model_dump(), "supports_seed": False}})
    at.run()
    captions = " ".join(c.value for c in at.caption)
    assert not at.exception and "Done" in captions and "seed 9" not in captions
