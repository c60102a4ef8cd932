"""Deleting a scene or a character while its jobs are at work (issue 11, findings 7 and 10): the
jobs are canceled with the delete, the provider is told, and no restart runs them again; an upload
another character or an active job uses stays."""
from __future__ import annotations

import pytest

from core.errors import NotFound
from tests.conftest import png_bytes
from tests.engine.conftest import spooled, until


def polled(job_id: str):
    return lambda s: any(j["job_id"] == job_id and j["polls"] >= 1 for j in s.jobs.values())


def test_a_scene_deleted_while_its_job_runs_cancels_it_and_a_restart_does_not_send_it_again(open_studio, server):
    studio = open_studio()
    character = studio.characters.create({"name": "Ada", "description": "An engineer."})
    scene = studio.scenes.create(character.id, {"name": "Cafe", "prompt": "[stall] behind the counter"})
    job = studio.scenes.generate_image(scene.id)
    server.wait_for(polled(job.id))  # running at the provider, its request id stored
    request_id = studio.jobs.get(job.id).provider_request_id

    studio.scenes.delete(scene.id)
    canceled = studio.jobs.get(job.id)  # canceled by the delete itself, not later
    assert canceled.status == "canceled" and "scene was deleted" in canceled.last_error
    server.wait_for(lambda s: request_id in s.canceled)
    until(studio, lambda: job.id not in studio.engine.runner.in_flight)

    studio.close()
    server.release()
    studio = open_studio()
    assert studio.engine.runner.recovered == {"resumed": 0, "resubmitted": 0, "storing": 0}
    other = studio.scenes.create(character.id, {"name": "Park", "prompt": "on a bench"})
    [done] = studio.jobs.wait([studio.scenes.generate_image(other.id).id], timeout=30)  # the runner has claimed since
    assert done.status == "completed"
    assert server.submissions[job.id] == 1 and studio.jobs.get(job.id).status == "canceled"
    assert studio.ctx.db.scalar("SELECT count(*) FROM scene_images WHERE job_id = ?", [job.id]) == 0
    with pytest.raises(NotFound, match="scene was deleted"):
        studio.jobs.retry(job.id)
    assert studio.jobs.get(job.id).status == "canceled"


def test_a_scene_deleted_while_its_job_waits_in_the_queue_is_never_sent(open_studio, server):
    studio = open_studio()
    studio.models.update_provider("scripted", {"concurrency_limit": 1})
    character = studio.characters.create({"name": "Ada", "description": "An engineer."})
    [busy] = studio.portraits.generate(character.id, prompt="[stall]")
    server.wait_for(lambda s: busy.id in s.submissions)
    scene = studio.scenes.create(character.id, {"name": "Cafe", "prompt": "behind the counter"})
    job = studio.scenes.generate_image(scene.id)
    assert studio.jobs.get(job.id).status == "queued"
    studio.scenes.delete(scene.id)
    assert studio.jobs.get(job.id).status == "canceled"
    server.release()
    assert studio.jobs.wait([busy.id], timeout=30)[0].status == "completed"
    assert job.id not in server.attempts


def test_a_scene_deleted_while_its_image_waits_for_storage_drops_the_spooled_image(open_studio, server):
    studio = open_studio()
    character = studio.characters.create({"name": "Ada", "description": "An engineer."})
    scene = studio.scenes.create(character.id, {"name": "Cafe", "prompt": "behind the counter"})
    blocker = f"{studio.ctx.store.root}/local"
    open(blocker, "w").close()  # a file where the owner's folder must go: every write fails
    job = studio.scenes.generate_image(scene.id)
    until(studio, lambda: (j := studio.jobs.get(job.id)).status == "storing" and j.last_error)
    assert spooled(studio, job.id)
    studio.scenes.delete(scene.id)
    assert studio.jobs.get(job.id).status == "canceled"
    until(studio, lambda: not spooled(studio, job.id) and job.id not in studio.engine.runner.in_flight)
    import os
    os.remove(blocker)
    studio.close()
    studio = open_studio()
    assert studio.engine.runner.recovered["storing"] == 0 and studio.jobs.get(job.id).status == "canceled"
    assert list(studio.ctx.store.keys()) == []
    assert server.submissions[job.id] == 1


def test_a_character_deleted_while_its_jobs_run_stops_them_and_a_restart_sends_none(open_studio, server):
    studio = open_studio()
    studio.models.update_provider("scripted", {"concurrency_limit": 1})
    character = studio.characters.create({"name": "Ada", "description": "An engineer."})
    running, queued = studio.portraits.generate(character.id, n=2, prompt="[stall]")
    server.wait_for(polled(running.id))
    request_id = studio.jobs.get(running.id).provider_request_id
    studio.characters.delete(character.id)
    assert studio.jobs.list().total == 0
    server.wait_for(lambda s: request_id in s.canceled)
    until(studio, lambda: not studio.engine.runner.in_flight)
    studio.close()
    server.release()
    studio = open_studio()
    assert studio.engine.runner.recovered == {"resumed": 0, "resubmitted": 0, "storing": 0}
    other = studio.characters.create({"name": "Bo", "description": "A sailor."})
    [done] = studio.jobs.wait([studio.portraits.generate(other.id)[0].id], timeout=30)
    assert done.status == "completed"
    assert server.submissions[running.id] == 1 and queued.id not in server.attempts


def test_an_upload_another_characters_queued_job_uses_stays_until_nothing_uses_it(open_studio, server):
    studio = open_studio()
    studio.models.update_provider("scripted", {"concurrency_limit": 1})
    ada = studio.characters.create({"name": "Ada", "description": "An engineer."})
    bo = studio.characters.create({"name": "Bo", "description": "A sailor."})
    key = studio.characters.set_reference_upload(ada.id, png_bytes((80, 80), (10, 200, 40))).reference_image_key
    [busy] = studio.portraits.generate(bo.id, prompt="[stall]")
    server.wait_for(lambda s: busy.id in s.submissions)
    [job] = studio.portraits.generate(bo.id, reference="upload", reference_key=key)
    assert studio.jobs.get(job.id).status == "queued"

    studio.characters.delete(ada.id)  # the only character with this reference; Bo's queued job still needs it
    assert studio.ctx.store.exists(key)
    assert studio.ctx.db.scalar("SELECT count(*) FROM uploads WHERE key = ?", [key]) == 1
    server.release()
    [job] = studio.jobs.wait([job.id], timeout=30)
    assert job.status == "completed", job.last_error
    assert studio.portraits.get(job.result_id).recipe["reference_key"] == key


def test_an_upload_two_characters_share_goes_with_the_last_of_them(open_studio, server):
    studio = open_studio()
    data = png_bytes((80, 80), (10, 200, 40))
    ada = studio.characters.create({"name": "Ada", "description": "An engineer."})
    bo = studio.characters.create({"name": "Bo", "description": "A sailor."})
    key = studio.characters.set_reference_upload(ada.id, data).reference_image_key
    assert studio.characters.set_reference_upload(bo.id, data).reference_image_key == key
    studio.characters.delete(ada.id)
    assert studio.ctx.store.exists(key)
    [job] = studio.jobs.wait([studio.portraits.generate(bo.id, reference="character")[0].id], timeout=30)
    assert job.status == "completed", job.last_error
    studio.characters.delete(bo.id)
    assert not studio.ctx.store.exists(key)
    assert studio.ctx.db.scalar("SELECT count(*) FROM uploads WHERE key = ?", [key]) == 0
