"""The generation engine against a scripted loopback provider: batches, limits, retries, cancel, recovery."""
from __future__ import annotations

import os
import statistics

import pytest

from core.data import utcnow
from core.errors import ConstraintViolation
from tests.engine.conftest import SENTINEL_KEY, spooled, until


def ids(jobs):
    return [j.id for j in jobs]


def test_generate_returns_queued_jobs_at_once_and_a_batch_yields_n_portraits(estudio, echaracter, server):
    jobs = estudio.portraits.generate(echaracter.id, n=3, prompt="smiling", seed=7)
    assert len(jobs) == 3 and len({j.batch_id for j in jobs}) == 1
    assert [j.request["seed"] for j in jobs] == [7, 8, 9]
    assert all(j.provider_id == "scripted" for j in jobs)
    done = estudio.jobs.wait(ids(jobs), timeout=30)
    assert [j.status for j in done] == ["completed"] * 3
    portraits = estudio.portraits.list(echaracter.id).items
    assert sorted(p.job_id for p in portraits) == sorted(ids(jobs))
    assert sorted(p.recipe["seed"] for p in portraits) == [7, 8, 9]
    assert all(server.submissions[j] == 1 for j in ids(jobs))


def test_portrait_recipe_records_the_full_generation(estudio, echaracter):
    [job] = estudio.portraits.generate(echaracter.id, prompt="in the rain", presets={"pose": "profile"}, seed=3)
    [job] = estudio.jobs.wait([job.id], timeout=30)
    portrait = estudio.portraits.get(job.result_id)
    r = portrait.recipe
    assert r["provider"] == "scripted" and r["model_key"] == "scripted/txt" and r["mode"] == "txt2img"
    assert r["inputs"]["prompt"] == r["final_prompt"] and "in the rain" in r["final_prompt"]
    assert "side profile view" in r["final_prompt"] and r["presets"] == {"pose": "profile"}
    assert r["job_id"] == job.id and r["provider_request_id"] and r["seed"] == 3
    assert r["provider_ms"] is not None and r["overhead_ms"] is not None
    assert job.provider_ms is not None and job.overhead_ms is not None


def test_concurrency_never_exceeds_the_provider_limit(estudio, echaracter, server):
    estudio.models.update_provider("scripted", {"concurrency_limit": 2})
    jobs = estudio.portraits.generate(echaracter.id, n=6, prompt="[stall]")
    server.wait_for(lambda s: s.in_flight == 2)
    queued = [j for j in estudio.jobs.active(character_id=echaracter.id) if j.status == "queued"]
    assert len(queued) == 4
    assert sorted(j.queue_position for j in queued) == [1, 2, 3, 4]
    server.release()
    done = estudio.jobs.wait(ids(jobs), timeout=30)
    assert all(j.status == "completed" for j in done)
    assert server.max_in_flight == 2


def test_retryable_failures_back_off_and_then_succeed(estudio, echaracter, server):
    [job] = estudio.portraits.generate(echaracter.id, prompt="[fail-submit-2]")
    [job] = estudio.jobs.wait([job.id], timeout=30)
    assert job.status == "completed" and job.attempts == 3
    assert server.attempts[job.id] == 3 and server.submissions[job.id] == 1


def test_throttling_waits_at_least_the_retry_after_before_the_next_attempt(estudio, echaracter, server):
    # The studio's own backoff here is about 10 ms (retry_base 0.01): only Retry-After makes it wait longer.
    [job] = estudio.portraits.generate(echaracter.id, prompt="[throttle-1@0.4]")
    [job] = estudio.jobs.wait([job.id], timeout=30)
    assert job.status == "completed" and job.attempts == 1  # a 429 uses no attempt (docs/plugins.md)
    first, second = server.arrivals[job.id]
    assert second - first >= 0.4, f"the second attempt came {second - first:.3f}s after the throttled one"


def test_retries_stop_after_max_attempts(estudio, echaracter, server):
    [job] = estudio.portraits.generate(echaracter.id, prompt="[fail-submit-9]")
    [job] = estudio.jobs.wait([job.id], timeout=30)
    assert job.status == "failed" and job.attempts == 3 and server.attempts[job.id] == 3
    assert "temporarily overloaded" in job.last_error


def test_backoff_grows_with_each_attempt_spreads_retries_out_and_is_capped(open_studio):
    runner = open_studio(start_runner=False, retry_base=1.0).engine.runner
    cap = runner.retry_cap
    samples = {attempt: [runner.backoff(attempt) for _ in range(200)] for attempt in range(1, 21)}
    for attempt, delays in samples.items():
        assert all(0 < d <= cap for d in delays), attempt  # bounded, and never zero
        assert len(set(delays)) > 100, attempt  # jittered: many jobs failing together retry apart
    medians = {attempt: statistics.median(delays) for attempt, delays in samples.items()}
    growing = [a for a in range(1, 21) if medians[a] < cap / 4]
    assert len(growing) >= 3  # the cap leaves room to see the growth
    for a in growing:
        assert medians[a + 1] >= 1.5 * medians[a], (a, medians[a], medians[a + 1])  # exponential, not linear
    assert medians[20] > cap / 4  # late attempts stay near the cap (not reset, not past it)
    # A provider's Retry-After wins when it asks for longer than the backoff.
    assert all(runner.backoff(1, retry_after=30) >= 30 for _ in range(20))


def test_permanent_failure_fails_at_once_with_the_providers_message(estudio, echaracter, server):
    [job] = estudio.portraits.generate(echaracter.id, prompt="[permanent]")
    [job] = estudio.jobs.wait([job.id], timeout=30)
    assert job.status == "failed" and job.attempts == 1
    assert "prompt is not allowed" in job.last_error and "422" in job.last_error


def test_remote_failure_fails_the_job_with_its_error(estudio, echaracter):
    [job] = estudio.portraits.generate(echaracter.id, prompt="[fail-remote]")
    [job] = estudio.jobs.wait([job.id], timeout=30)
    assert job.status == "failed" and "the model crashed" in job.last_error


def test_failed_job_can_be_retried_by_hand(estudio, echaracter, server):
    [job] = estudio.portraits.generate(echaracter.id, prompt="[fail-submit-3]")
    [job] = estudio.jobs.wait([job.id], timeout=30)
    assert job.status == "failed"
    estudio.jobs.retry(job.id)
    [job] = estudio.jobs.wait([job.id], timeout=30)
    assert job.status == "completed" and job.result_id


def test_cancel_a_queued_job_never_submits_it(estudio, echaracter, server):
    estudio.models.update_provider("scripted", {"concurrency_limit": 1})
    first, second = estudio.portraits.generate(echaracter.id, n=2, prompt="[stall]")
    server.wait_for(lambda s: len(s.submissions) == 1)
    assert estudio.jobs.get(second.id).status == "queued"
    assert estudio.jobs.cancel(second.id).status == "canceled"
    server.release()
    [first] = estudio.jobs.wait([first.id], timeout=30)
    assert first.status == "completed"
    assert second.id not in server.submissions and estudio.jobs.get(second.id).status == "canceled"


def test_cancel_a_running_job_calls_the_providers_cancel(estudio, echaracter, server):
    [job] = estudio.portraits.generate(echaracter.id, prompt="[stall]")
    server.wait_for(lambda s: job.id in s.submissions)
    job = estudio.jobs.cancel(job.id)
    assert job.status == "canceled"
    server.wait_for(lambda s: len(s.canceled) == 1)
    server.release()
    assert estudio.jobs.get(job.id).status == "canceled"
    assert estudio.portraits.list(echaracter.id).total == 0


def test_restart_mid_job_resumes_polling_without_submitting_again(open_studio, server):
    studio = open_studio()
    character = studio.characters.create({"name": "Bo", "description": "A sailor."})
    jobs = studio.portraits.generate(character.id, n=3, prompt="[stall]")
    until(studio, lambda: all(studio.jobs.get(j.id).stage == "generating" for j in jobs))
    assert all(studio.jobs.get(j.id).provider_request_id for j in jobs)
    old = studio.engine.runner
    studio.close()
    server.release()
    studio = open_studio()
    # One server hands its jobs back when it opens again; servers sharing PostgreSQL, when one stops.
    handed_back = old.released if studio.ctx.db.shared else studio.engine.runner.recovered
    assert handed_back["resumed"] == 3
    done = studio.jobs.wait(ids(jobs), timeout=30)
    assert [j.status for j in done] == ["completed"] * 3
    assert all(server.submissions[j.id] == 1 for j in jobs)
    assert studio.portraits.list(character.id).total == 3


@pytest.mark.parametrize("db_backend", ["duckdb"])  # claim_due is the one-server claim
def test_restart_resubmits_jobs_that_never_got_a_request_id(open_studio, server):
    studio = open_studio(start_runner=False)
    character = studio.characters.create({"name": "Cy", "description": "A pilot."})
    jobs = studio.portraits.generate(character.id, n=2)
    # Simulate a crash after claiming but before submitting: rows are `running` without an id.
    claimed, _, _ = studio.engine.jobs.claim_due(utcnow(), {"scripted": 8}, one_shot=set(), exclude=set())
    assert [(j.id, j.status, j.stage) for j in claimed] == [(j.id, "running", "submitting") for j in jobs]
    studio.close()
    studio = open_studio()
    assert studio.engine.runner.recovered["resubmitted"] == 2
    done = studio.jobs.wait(ids(jobs), timeout=30)
    assert all(j.status == "completed" and j.attempts == 1 for j in done)


def test_a_claim_starts_jobs_in_order_up_to_the_free_slots_and_hands_back_what_the_rows_say(open_studio, server):
    studio = open_studio(start_runner=False)
    character = studio.characters.create({"name": "Cy", "description": "A pilot."})
    jobs = studio.portraits.generate(character.id, n=3)
    store = studio.engine.jobs
    # Two slots: the two oldest start; all of them were handed over, so no row is read back.
    started, next_at, backlog = store.claim_due(utcnow(), {"scripted": 2}, set(), set(), created={j.id: j for j in jobs})
    assert [j.id for j in started] == ids(jobs[:2]) and backlog and next_at is None
    for job in started:
        assert job.model_dump() == store.get(job.id).model_dump()
    started[0].request["inputs"] = {"changed": "by the runner"}
    assert "inputs" not in jobs[0].request  # the caller's objects are not shared
    # The third was not handed over: it is read from its row.
    [third], _, backlog = store.claim_due(utcnow(), {"scripted": 1}, set(), set(), created={})
    assert third.id == jobs[2].id and third.model_dump() == store.get(third.id).model_dump() and not backlog
    assert (third.status, third.stage, third.attempts) == ("running", "submitting", 1)


def test_jobs_created_while_the_runner_is_stopped_wait_for_its_next_start(estudio, echaracter):
    estudio.engine.runner.stop()
    [job] = estudio.portraits.generate(echaracter.id, model_id="scripted/oneshot")
    assert estudio.jobs.cancel(estudio.portraits.generate(echaracter.id, model_id="scripted/oneshot")[0].id).status == "canceled"
    assert estudio.jobs.get(job.id).status == "queued"
    estudio.engine.runner.start()
    assert estudio.jobs.wait([job.id], timeout=30)[0].status == "completed"


def test_storage_failure_keeps_the_job_storing_until_storage_recovers(estudio, echaracter, server):
    root = estudio.ctx.store.root
    blocker = f"{root}/local"
    with open(blocker, "w") as fh:  # a file where the owner's folder must go: every write fails
        fh.write("in the way")
    [job] = estudio.portraits.generate(echaracter.id)
    server.wait_for(lambda s: job.id in s.submissions)
    current = until(estudio, lambda: (j := estudio.jobs.get(job.id)).status == "storing" and j.last_error and j)
    assert current.status == "storing" and "could not write" in current.last_error
    assert spooled(estudio, job.id)
    os.remove(blocker)
    [job] = estudio.jobs.wait([job.id], timeout=60)
    assert job.status == "completed"
    portrait = estudio.portraits.get(job.result_id)
    assert estudio.ctx.store.exists(portrait.image_key) and estudio.ctx.store.exists(portrait.thumbnail_key)
    assert not spooled(estudio, job.id)


def test_storing_jobs_finish_after_a_restart(open_studio, server):
    studio = open_studio()
    character = studio.characters.create({"name": "Di", "description": "A diver."})
    blocker = f"{studio.ctx.store.root}/local"
    open(blocker, "w").close()
    [job] = studio.portraits.generate(character.id)
    until(studio, lambda: studio.jobs.get(job.id).status == "storing")
    studio.close()
    os.remove(blocker)
    studio = open_studio()
    [job] = studio.jobs.wait([job.id], timeout=60)
    assert job.status == "completed" and server.submissions[job.id] == 1
    assert studio.portraits.list(character.id).total == 1


def test_a_repeated_store_cannot_duplicate_a_portrait(estudio, echaracter):
    [job] = estudio.jobs.wait([estudio.portraits.generate(echaracter.id)[0].id], timeout=30)
    before = estudio.ctx.db.scalar("SELECT count(*) FROM character_portraits")
    with pytest.raises(ConstraintViolation):  # a second portrait for one job is refused
        estudio.ctx.db.execute(
            "INSERT INTO character_portraits SELECT 'dup', character_id, owner, image_key, thumbnail_key, prompt, recipe, "
            "job_id, sort_order, width, height, created_at FROM character_portraits WHERE job_id = ?", [job.id])
    assert estudio.ctx.db.scalar("SELECT count(*) FROM character_portraits") == before


def test_no_key_reaches_rows_recipes_or_errors(estudio, echaracter):
    jobs = estudio.portraits.generate(echaracter.id, n=2, prompt="[permanent]")
    jobs += estudio.portraits.generate(echaracter.id, n=1)
    estudio.jobs.wait(ids(jobs), timeout=30)
    dump = estudio.ctx.db.fetchall("SELECT * FROM jobs") + estudio.ctx.db.fetchall("SELECT * FROM character_portraits")
    assert SENTINEL_KEY not in repr(dump)


def test_progress_reports_real_stages(estudio, echaracter, server):
    [job] = estudio.portraits.generate(echaracter.id, prompt="[stall]")
    current = until(estudio, lambda: (j := estudio.jobs.get(job.id)).stage == "generating" and j)
    assert current.status == "running" and current.percent == 40
    server.release()
    [job] = estudio.jobs.wait([job.id], timeout=30)
    assert job.stage == "completed" and job.percent == 100


def test_stats_count_outcomes_and_times(estudio, echaracter):
    jobs = estudio.portraits.generate(echaracter.id, n=3) + estudio.portraits.generate(echaracter.id, prompt="[permanent]")
    estudio.jobs.wait(ids(jobs), timeout=30)
    stats = estudio.stats()
    assert (stats.total, stats.completed, stats.failed) == (4, 3, 1)
    assert stats.failure_rate == 0.25 and stats.avg_provider_ms > 0 and stats.p95_provider_ms > 0
    assert stats.per_model[0].model_key == "scripted/txt"


def test_an_unreadable_reference_retries_instead_of_failing_at_once(open_studio, server):
    import os

    from tests.conftest import png_bytes

    studio = open_studio(STUDIO_MAX_ATTEMPTS="20")
    character = studio.characters.create({"name": "Gus", "description": "A gardener."})
    studio.characters.set_reference_upload(character.id, png_bytes())
    path = f"{studio.ctx.store.root}/{studio.characters.get(character.id).reference_image_key}"
    data = open(path, "rb").read()
    os.remove(path)  # the store "loses" the object for a while
    [job] = studio.portraits.generate(character.id, reference="character")
    job = until(studio, lambda: (j := studio.jobs.get(job.id)).last_error and j)
    assert "Reading the reference image failed" in job.last_error and job.status != "failed"
    with open(path, "wb") as fh:
        fh.write(data)
    [job] = studio.jobs.wait([job.id], timeout=60)
    assert job.status == "completed" and job.attempts >= 2 and server.submissions[job.id] == 1
