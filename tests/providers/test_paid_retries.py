"""Retry rules for paid work (docs/plugins.md, "Errors and retries"): once a submit succeeded, poll
and fetch errors are retried until the job's deadline without submitting again, and 429s wait
without using up attempts."""
from __future__ import annotations

import pytest

from tests.fakes.sample import AcmeFake
from tests.providers.conftest import SENTINEL, finish, generate


@pytest.fixture
def acme(sample_plugin):
    server = AcmeFake(SENTINEL)
    yield server
    server.close()


def test_a_submitted_job_whose_poll_fails_five_times_in_a_row_completes_with_one_submission(acme, open_studio):
    studio = open_studio(acme, STUDIO_LOAD_PLUGINS="sample", STUDIO_MAX_ATTEMPTS="3")
    acme.fault("status", 500, {"message": "upstream hiccup"}, times=5)
    job = finish(studio, generate(studio, "sample", "acme-v1"))
    assert job.status == "completed", job.last_error
    assert acme.count("submit") == 1 and acme.submissions() == 1
    assert acme.count("status") >= 5 + 3  # the five failures, then queued, running, done
    assert job.attempts == 1  # the poll errors used up no attempt


def test_fetching_the_result_is_retried_too(acme, open_studio):
    studio = open_studio(acme, STUDIO_LOAD_PLUGINS="sample", STUDIO_MAX_ATTEMPTS="1")
    job = generate(studio, "sample", "acme-v1")
    acme.wait_for(lambda s: any(j["state"] == "done" for j in s.jobs.values()))  # the next status call fetches
    acme.fault("status", 503, {"message": "busy"}, times=4)
    job = finish(studio, job)
    assert job.status == "completed", job.last_error
    assert acme.count("submit") == 1


def test_429s_at_submit_wait_without_using_up_attempts(acme, open_studio):
    studio = open_studio(acme, STUDIO_LOAD_PLUGINS="sample", STUDIO_MAX_ATTEMPTS="2")
    acme.fault("submit", 429, {"message": "slow down"}, {"Retry-After": "0"}, times=4)
    job = finish(studio, generate(studio, "sample", "acme-v1"))
    assert job.status == "completed", job.last_error
    assert acme.count("submit") == 5 and acme.submissions() == 1
    assert job.attempts == 1


def test_a_5xx_at_submit_still_uses_an_attempt(acme, open_studio):
    studio = open_studio(acme, STUDIO_LOAD_PLUGINS="sample", STUDIO_MAX_ATTEMPTS="2")
    acme.fault("submit", 500, {"message": "down"}, times=2)
    job = finish(studio, generate(studio, "sample", "acme-v1"))
    assert job.status == "failed" and "down" in job.last_error
    assert acme.submissions() == 0 and job.attempts == 2


def test_poll_errors_past_the_deadline_fail_the_job_without_a_second_submission(acme, open_studio):
    studio = open_studio(acme, STUDIO_LOAD_PLUGINS="sample", STUDIO_JOB_DEADLINE="1")
    acme.fault("status", 500, {"message": "still broken"}, times=10_000)
    job = finish(studio, generate(studio, "sample", "acme-v1"))
    assert job.status == "failed"
    assert "still broken" in job.last_error and "gave up" in job.last_error
    assert acme.count("submit") == 1


def test_a_permanent_poll_error_fails_at_once(acme, open_studio):
    studio = open_studio(acme, STUDIO_LOAD_PLUGINS="sample")
    acme.fault("status", 404, {"message": "no such job"})
    job = finish(studio, generate(studio, "sample", "acme-v1"))
    assert job.status == "failed" and "no such job" in job.last_error
    assert acme.count("status") == 1 and acme.count("submit") == 1
