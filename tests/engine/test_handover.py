"""A job is always started from its current row, never from an older copy (issue 11, finding 3).

`generate` hands its new jobs to the runner so that starting them needs no read; a copy handed
over late (after a claim had already started the job from its row) must never start a later
attempt. These paths were racy, so each runs many times.
"""
from __future__ import annotations

from core.data import utcnow

RUNS = 20


def test_a_retried_attempt_resumes_the_stored_request_instead_of_submitting_again(open_studio, server):
    # The first status poll fails retryably: the second attempt must poll the stored request id. No
    # backoff, so the retry is started by the first claim after the job's start.
    estudio = open_studio(retry_base=0)
    echaracter = estudio.characters.create({"name": "Ada", "description": "An engineer."})
    for run in range(RUNS):  # one at a time, so nothing else claims in between
        [job] = estudio.portraits.generate(echaracter.id, prompt="[fail-poll-1]")
        [job] = estudio.jobs.wait([job.id], timeout=30)
        assert job.status == "completed", job.last_error
        # a submitted job's poll error is retried in place, using no attempt (docs/plugins.md, Errors and retries)
        assert (server.submissions[job.id], job.attempts) == (1, 1), f"run {run}: submitted again"


def test_a_job_run_again_carries_its_new_seed_into_the_recipe(estudio, echaracter, server):
    for run in range(RUNS):
        [job] = estudio.jobs.wait([estudio.portraits.generate(echaracter.id, seed=run)[0].id], timeout=30)
        assert job.status == "completed", job.last_error
        # Edited by hand (or a future admin tool): the completed job is marked failed, gets a new seed, is retried.
        assert estudio.engine.jobs.set(job.id, only_if=("completed",), status="failed",
                                       request=job.request.model_copy(update={"seed": 1000 + run}))
        [again] = estudio.jobs.wait([estudio.jobs.retry(job.id).id], timeout=30)
        assert again.status == "completed", again.last_error
        recipe = estudio.portraits.get(again.result_id).recipe
        assert recipe.seed == 1000 + run, f"run {run}: the recipe kept seed {recipe.seed}"
        assert server.jobs[f"r{len(server.jobs)}"]["seed"] == 1000 + run  # and the provider was sent the new seed


def test_a_copy_handed_over_after_its_job_started_is_ignored(open_studio, server):
    """The claim itself: a handed-over copy older than its row (the job started and went back to
    the queue with a request id meanwhile) is not used; the row is."""
    studio = open_studio(start_runner=False)
    character = studio.characters.create({"name": "Cy", "description": "A pilot."})
    [job] = studio.portraits.generate(character.id)
    store = studio.engine.jobs
    [first], _, _ = store.claim_due(utcnow(), {"scripted": 1}, set(), set(), created={job.id: job})
    assert first.attempts == 1 and first.provider_request_id is None
    # The attempt got a request id, then failed retryably: queued again, to resume.
    assert store.set(job.id, provider_request_id="r-stored", status="queued", stage="retrying")
    [second], _, _ = store.claim_due(utcnow(), {"scripted": 1}, set(), set(), created={job.id: job})
    assert (second.provider_request_id, second.attempts, second.stage) == ("r-stored", 2, "resuming")
    assert second.model_dump() == store.get(job.id).model_dump()
