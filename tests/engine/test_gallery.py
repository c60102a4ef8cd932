"""Gallery operations and scene images, on the offline provider."""
from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from core.errors import InvalidInput, StudioError


def generate(studio, character_id, n=1, **options):
    jobs = studio.portraits.generate(character_id, n=n, **options)
    done = studio.jobs.wait([j.id for j in jobs], timeout=30)
    assert all(j.status == "completed" for j in done), [j.last_error for j in done]
    return [studio.portraits.get(j.result_id) for j in done]


def test_first_portrait_becomes_primary_and_switching_is_one_update(studio, character):
    first, second = generate(studio, character.id, n=2, seed=1)
    primary = studio.characters.get(character.id).primary_portrait_id
    assert primary in (first.id, second.id)
    other = second if primary == first.id else first
    studio.portraits.set_primary(other.id)
    assert studio.characters.get(character.id).primary_portrait_id == other.id
    listed = {p.id: p.is_primary for p in studio.portraits.list(character.id).items}
    assert listed == {other.id: True, primary: False}
    summary = studio.characters.list().items[0]
    assert summary.primary_thumbnail_key == other.thumbnail_key and summary.portrait_count == 2


def test_deleting_the_primary_passes_it_to_the_newest_remaining(studio, character):
    a, = generate(studio, character.id)
    b, = generate(studio, character.id)
    c, = generate(studio, character.id)
    assert studio.characters.get(character.id).primary_portrait_id == a.id
    studio.portraits.delete(a.id)
    assert studio.characters.get(character.id).primary_portrait_id == c.id
    assert not studio.ctx.store.exists(a.image_key) and not studio.ctx.store.exists(a.thumbnail_key)
    studio.portraits.delete(c.id)
    studio.portraits.delete(b.id)
    assert studio.characters.get(character.id).primary_portrait_id is None


def test_list_is_sort_order_then_newest_first_and_paged(studio, character):
    made = [generate(studio, character.id)[0] for _ in range(4)]
    page = studio.portraits.list(character.id, limit=3)
    assert page.total == 4 and [p.id for p in page.items] == [p.id for p in reversed(made)][:3]
    last = studio.portraits.list(character.id, limit=3, offset=3)
    assert last.total == 4 and [p.id for p in last.items] == [made[0].id]
    past = studio.portraits.list(character.id, limit=3, offset=6)  # no row to carry the total
    assert past.total == 4 and past.items == []
    studio.portraits.reorder(character.id, [made[0].id, made[2].id])
    order = [p.id for p in studio.portraits.list(character.id).items]
    assert order[:2] == [made[0].id, made[2].id] and set(order[2:]) == {made[1].id, made[3].id}
    with pytest.raises(InvalidInput):
        studio.portraits.reorder(character.id, ["nope"])


def test_use_as_reference_download_recall_and_regenerate(studio, character):
    portrait, = generate(studio, character.id, prompt="on a beach", presets={"expression": "smiling"}, seed=11)
    updated = studio.portraits.use_as_reference(portrait.id)
    assert updated.reference_image_key.startswith("local/references/") and updated.reference_image_hash
    data, filename = studio.portraits.download(portrait.id)
    assert filename.startswith("mia-") and filename.endswith(".png")
    assert Image.open(io.BytesIO(data)).size == (1024, 1024)
    options = studio.portraits.recall(portrait.id)
    assert (options.prompt, options.seed, options.presets.expression) == ("on a beach", 11, "smiling")
    assert studio.characters.get(character.id).reference_image_key == updated.reference_image_key  # unchanged by recall
    again, = [studio.portraits.get(j.result_id) for j in
              studio.jobs.wait([j.id for j in studio.portraits.regenerate(portrait.id, prompt="in the snow")], timeout=30)]
    assert again.recipe.seed == 11 and "in the snow" in again.recipe.final_prompt


def test_reference_generation_uses_an_i2i_model_and_the_identity_phrase(studio, character):
    portrait, = generate(studio, character.id)
    studio.portraits.use_as_reference(portrait.id)
    ref_portrait, = generate(studio, character.id, reference="character")
    recipe = ref_portrait.recipe
    assert recipe.mode == "i2i" and recipe.model_key == "offline/preview-i2i"
    assert "maintain same character identity" in recipe.final_prompt
    assert recipe.reference_hash == studio.characters.get(character.id).reference_image_hash
    assert studio.portraits.image_bytes(ref_portrait.id) != studio.portraits.image_bytes(portrait.id)


def test_generation_refuses_a_character_without_description(studio):
    bare = studio.characters.create({"name": "Nameless"})
    with pytest.raises(InvalidInput) as err:
        studio.portraits.generate(bare.id)
    assert "description" in err.value.errors


def test_unknown_preset_and_long_prompt_are_refused(studio, character):
    with pytest.raises(InvalidInput) as err:
        studio.portraits.generate(character.id, presets={"pose": "handstand"})
    assert "presets.pose" in err.value.errors and "standing" in err.value.errors["presets.pose"]
    with pytest.raises(InvalidInput) as err:
        studio.portraits.generate(character.id, prompt="x" * 201)
    assert "200" in err.value.errors["prompt"]
    assert studio.jobs.list().total == 0


def test_scene_image_uses_the_primary_portrait_as_reference(studio, character):
    generate(studio, character.id)
    scene = studio.scenes.create(character.id, {"name": "Cafe", "prompt": "behind the counter", "description": "morning rush"})
    job = studio.scenes.generate_image(scene.id)
    [job] = studio.jobs.wait([job.id], timeout=30)
    assert job.status == "completed" and job.kind == "scene"
    scene = studio.scenes.get(scene.id)
    assert scene.image_key and studio.ctx.store.exists(scene.thumbnail_key)
    assert scene.recipe.mode == "i2i" and "behind the counter" in scene.recipe.final_prompt
    assert "red hair" in scene.recipe.final_prompt and "wearing apron" in scene.recipe.final_prompt
    assert studio.portraits.list(character.id).total == 1  # a scene image is not a portrait


@pytest.mark.parametrize("kind", ["portrait", "scene"])
def test_a_finished_job_run_again_keeps_one_result_row_with_the_new_recipe(studio, character, kind):
    if kind == "portrait":
        job = studio.portraits.generate(character.id, seed=1)[0]
    else:
        scene = studio.scenes.create(character.id, {"name": "Cafe", "prompt": "behind the counter"})
        job = studio.scenes.generate_image(scene.id, seed=1)
    [job] = studio.jobs.wait([job.id], timeout=30)
    table = "character_portraits" if kind == "portrait" else "scene_images"
    # Edited by hand (or a future admin tool): the completed job is marked failed and retried.
    studio.engine.jobs.set(job.id, only_if=("completed",), status="failed", request=job.request.model_copy(update={"seed": 2}))
    [again] = studio.jobs.wait([studio.jobs.retry(job.id).id], timeout=30)
    rows = studio.ctx.db.fetchall(f"SELECT id, recipe FROM {table} WHERE job_id = ?", [job.id])
    assert again.status == "completed" and [r["id"] for r in rows] == [job.result_id] == [again.result_id]
    assert json.loads(rows[0]["recipe"])["seed"] == 2
    if kind == "scene":
        assert studio.scenes.get(scene.id).recipe.seed == 2


def test_cancel_and_retry_refuse_the_wrong_states(studio, character):
    [job] = studio.jobs.wait([studio.portraits.generate(character.id)[0].id], timeout=30)
    with pytest.raises(StudioError):
        studio.jobs.cancel(job.id)
    with pytest.raises(StudioError):
        studio.jobs.retry(job.id)


def test_other_users_cannot_touch_my_portraits_or_jobs(studio, character):
    portrait, = generate(studio, character.id)
    bob = studio.as_user("bob")
    with pytest.raises(StudioError):
        bob.portraits.set_primary(portrait.id)
    with pytest.raises(StudioError):
        bob.portraits.generate(character.id)
    assert bob.jobs.list().total == 0


def test_a_portrait_reference_carries_the_hash_recorded_at_storing(studio, character):
    from core.images import sha256

    portrait, = generate(studio, character.id)
    assert portrait.recipe.sha256 == sha256(studio.portraits.image_bytes(portrait.id))
    again, = generate(studio, character.id, reference="portrait", reference_portrait_id=portrait.id)
    assert again.recipe.mode == "i2i" and again.recipe.reference_hash == portrait.recipe.sha256


def test_reorder_keeps_the_order_of_the_rest(studio, character):
    """Naming a few portraits puts them first; the others keep the order an earlier reorder gave them."""
    a, b, c, d = (generate(studio, character.id)[0] for _ in range(4))
    studio.portraits.reorder(character.id, [a.id, b.id, c.id, d.id])
    studio.portraits.reorder(character.id, [c.id])
    assert [p.id for p in studio.portraits.list(character.id).items] == [c.id, a.id, b.id, d.id]
    with pytest.raises(InvalidInput, match="more than once"):
        studio.portraits.reorder(character.id, [a.id, a.id])
    assert [p.id for p in studio.portraits.list(character.id).items] == [c.id, a.id, b.id, d.id]


def test_move_and_neighbours_follow_the_gallery_order(studio, character):
    made = [generate(studio, character.id)[0] for _ in range(4)]
    order = [p.id for p in studio.portraits.list(character.id).items]  # newest first
    assert order == [p.id for p in reversed(made)]
    first = studio.portraits.neighbours(order[0])
    assert (first.index, first.total, first.previous_id, first.next_id) == (0, 4, None, order[1])
    middle = studio.portraits.neighbours(order[2])
    assert (middle.index, middle.previous_id, middle.next_id) == (2, order[1], order[3])
    assert studio.portraits.neighbours(order[3]).next_id is None

    moved = studio.portraits.move(order[3], 1)  # last -> second
    expected = [order[0], order[3], order[1], order[2]]
    assert [p.id for p in studio.portraits.list(character.id).items] == expected
    assert (moved.index, moved.previous_id, moved.next_id) == (1, order[0], order[1])
    studio.portraits.move(order[0], 99)  # past the end: last
    assert [p.id for p in studio.portraits.list(character.id).items] == expected[1:] + [order[0]]
    # A portrait generated afterwards comes first and shifts every index by one, not the neighbours.
    newest, = generate(studio, character.id)
    after = studio.portraits.neighbours(order[3])
    assert (after.index, after.total, after.previous_id) == (1, 5, newest.id)
    with pytest.raises(InvalidInput):
        studio.portraits.move(order[1], -1)


def test_zip_holds_the_stored_bytes_and_checks_every_id_first(studio, character):
    import zipfile

    a, b = generate(studio, character.id, n=2, seed=3)
    data, name = studio.portraits.zip([a.id, b.id, a.id])
    assert name == "mia-portraits.zip"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        stored = {n: archive.read(n) for n in archive.namelist()}
    assert stored == {f"mia-{a.id[:8]}.png": studio.ctx.store.read(a.image_key),
                      f"mia-{b.id[:8]}.png": studio.ctx.store.read(b.image_key)}
    with pytest.raises(StudioError):
        studio.portraits.zip([a.id, "nope"])
    with pytest.raises(InvalidInput):
        studio.portraits.zip([])


def test_delete_many_checks_all_before_deleting_any(studio, character):
    a, b, c = generate(studio, character.id, n=3)
    with pytest.raises(StudioError):
        studio.portraits.delete_many([a.id, "nope"])
    assert studio.portraits.list(character.id).total == 3
    assert studio.portraits.delete_many([a.id, b.id]) == 2
    assert [p.id for p in studio.portraits.list(character.id).items] == [c.id]
    assert not studio.ctx.store.exists(a.image_key) and not studio.ctx.store.exists(b.thumbnail_key)


def test_neighbours_count_only_what_the_viewer_sees(studio):
    alice = studio.as_user("alice")
    olga = alice.characters.create({"name": "Olga", "description": "A baker.", "is_public": True})
    alice.jobs.wait([j.id for j in alice.portraits.generate(olga.id, n=3)], timeout=30)
    a, b, c = alice.portraits.list(olga.id).items
    alice.portraits.set_public(b.id, False)
    seen = studio.as_user("bob").portraits.neighbours(a.id)
    assert (seen.index, seen.total, seen.next_id) == (0, 2, c.id)
    own = alice.portraits.neighbours(a.id)
    assert (own.total, own.next_id) == (3, b.id)
