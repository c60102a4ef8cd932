"""Runner paths off the happy one: cancel at each stage, a lost spool, a provider without an image,
and unexpected exceptions (issue 11, finding 12)."""
from __future__ import annotations

import os

import pytest

from core.errors import StudioError
from core.models import JobRequest, NewJob
from tests.engine.conftest import lose_spool, spooled, until


def arrived(job_id: str):
    return lambda s: job_id in s.arrivals


def test_cancel_while_the_submission_is_in_flight_cancels_the_job_the_provider_then_creates(estudio, echaracter, server):
    [job] = estudio.portraits.generate(echaracter.id, prompt="[hold-submit]")
    server.wait_for(arrived(job.id))  # the provider has the request and has not answered
    assert estudio.jobs.cancel(job.id).status == "canceled"
    server.release()  # now it answers with a request id: the studio cancels that job at the provider
    server.wait_for(lambda s: s.canceled == ["r1"])
    until(estudio, lambda: job.id not in estudio.engine.runner.in_flight)
    assert estudio.jobs.get(job.id).status == "canceled" and estudio.jobs.get(job.id).provider_request_id is None
    assert server.submissions[job.id] == 1 and estudio.portraits.list(echaracter.id).total == 0


def test_cancel_while_a_one_shot_provider_generates_stores_nothing_and_the_runner_goes_on(estudio, echaracter, server):
    [job] = estudio.portraits.generate(echaracter.id, prompt="[hold-generate]", model_id="scripted/oneshot")
    server.wait_for(arrived(job.id))
    assert estudio.jobs.cancel(job.id).status == "canceled"
    until(estudio, lambda: job.id not in estudio.engine.runner.in_flight)
    server.release()
    [other] = estudio.jobs.wait([estudio.portraits.generate(echaracter.id, model_id="scripted/oneshot")[0].id], timeout=30)
    assert other.status == "completed"
    assert estudio.jobs.get(job.id).status == "canceled"
    assert [p.job_id for p in estudio.portraits.list(echaracter.id).items] == [other.id]
    assert not spooled(estudio, job.id)


def test_a_storing_job_cannot_be_canceled_and_completes_when_storage_returns(estudio, echaracter, server):
    blocker = f"{estudio.ctx.store.root}/local"
    open(blocker, "w").close()  # a file where the owner's folder must go: every write fails
    [job] = estudio.portraits.generate(echaracter.id)
    until(estudio, lambda: (j := estudio.jobs.get(job.id)).status == "storing" and j.last_error)
    with pytest.raises(StudioError, match="being stored"):
        estudio.jobs.cancel(job.id)
    os.remove(blocker)
    [job] = estudio.jobs.wait([job.id], timeout=60)
    assert job.status == "completed" and server.submissions[job.id] == 1
    assert estudio.portraits.list(echaracter.id).total == 1


def test_a_spool_lost_while_the_studio_was_down_fails_the_job_clearly(open_studio, server):
    studio = open_studio()
    character = studio.characters.create({"name": "Di", "description": "A diver."})
    blocker = f"{studio.ctx.store.root}/local"
    open(blocker, "w").close()
    [job] = studio.portraits.generate(character.id)
    until(studio, lambda: studio.jobs.get(job.id).status == "storing")
    studio.close()
    os.remove(blocker)
    lose_spool(studio, job.id)  # e.g. a cleaned temp folder
    studio = open_studio()
    [job] = studio.jobs.wait([job.id], timeout=30)
    assert job.status == "failed" and "spool file missing" in job.last_error and "lost" in job.last_error
    assert server.submissions[job.id] == 1 and studio.portraits.list(character.id).total == 0


@pytest.mark.parametrize("model", ["scripted/txt", "scripted/oneshot"])
def test_a_provider_answer_without_an_image_fails_the_job_once(estudio, echaracter, server, model):
    [job] = estudio.portraits.generate(echaracter.id, prompt="[no-image]", model_id=model)
    [job] = estudio.jobs.wait([job.id], timeout=30)
    assert job.status == "failed" and job.attempts == 1
    assert "returned no image" in job.last_error and "Scripted" in job.last_error
    assert server.submissions[job.id] == 1 and estudio.portraits.list(echaracter.id).total == 0


def test_an_unexpected_exception_fails_its_job_with_a_message_and_the_runner_runs_the_others(estudio, echaracter, server):
    # A provider that breaks its contract (a KeyError on an answer it did not expect) ...
    broken, fine = estudio.portraits.generate(echaracter.id, prompt="[malformed]") + estudio.portraits.generate(echaracter.id)
    # ... and a job row the runner cannot even build a request from (its model is not in the catalog).
    model = estudio.models.route()
    [bad_row] = estudio.engine.jobs.create([NewJob(
        kind="portrait", owner=estudio.actor.id, character_id=echaracter.id, batch_id="b",
        provider_id=model.provider_id, model_id="no-such-model", model_key=model.model_key, max_attempts=3,
        request=JobRequest(final_prompt="a portrait"))])
    estudio.engine.runner.wake()
    broken, fine, bad_row = estudio.jobs.wait([broken.id, fine.id, bad_row.id], timeout=30)
    assert broken.status == "failed" and broken.last_error.startswith("Internal error: KeyError")
    assert bad_row.status == "failed" and bad_row.last_error.startswith("Internal error: NotFound")
    assert fine.status == "completed"
    [after] = estudio.jobs.wait([estudio.portraits.generate(echaracter.id)[0].id], timeout=30)
    assert after.status == "completed" and estudio.engine.runner.running
