"""The contract every built-in provider meets, driven through the real engine against its fake.

Parametrized over fal, Replicate, OpenAI and RunPod (see conftest.CASES for what differs).
"""
from __future__ import annotations

import base64

import pytest

from tests.providers.conftest import CASES, REFERENCE, SENTINEL, SHORT_TIMEOUT, finish, generate


def _sent_inputs(case, fake) -> dict:
    """The model input the provider sent in its (last) submission, as the fake received it."""
    req = fake.requests("submit")[-1]
    if case.provider == "openai":
        return req.parsed
    body = req.json()
    return body if case.provider == "fal" else body["input"]


def test_txt2img_success(case, fake, open_studio):
    studio = open_studio(fake)
    job = finish(studio, generate(studio, case.provider, case.txt2img, prompt="in a library"))
    assert job.status == "completed", job.last_error
    portrait = studio.portraits.get(job.result_id)
    assert studio.portraits.image(portrait.id).size == (48, 40)
    assert fake.count("submit") == 1
    sent = _sent_inputs(case, fake)
    assert "in a library" in sent["prompt"]
    recipe = portrait.recipe
    assert recipe.provider == case.provider and recipe.model_key == case.txt2img
    assert "in a library" in recipe.inputs["prompt"]
    if case.resumable:
        assert recipe.provider_request_id
        assert fake.count("status") >= 3  # queued, running, completed


def test_i2i_success_reference_in_mapped_field(case, fake, open_studio):
    studio = open_studio(fake)
    job = finish(studio, generate(studio, case.provider, case.i2i, reference=REFERENCE))
    assert job.status == "completed", job.last_error
    sent = _sent_inputs(case, fake)
    if case.provider == "openai":
        (name, ctype, data), = sent["_images"]
        assert name == "image" and ctype == "image/png"
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert "input_fidelity" not in sent  # gpt-image-2 takes references at high fidelity and refuses the field
    else:
        value = sent[case.ref_field]
        value = value[0] if case.ref_form == "list" else value
        assert isinstance(value, str) and value.startswith("data:image/png;base64,")
        assert base64.b64decode(value.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    recipe = studio.portraits.get(job.result_id).recipe
    assert recipe.mode == "i2i"
    assert str(recipe.inputs.get(case.ref_field)).startswith("sha256:")  # the recipe names, not inlines, it


def test_provider_side_failure(case, fake, open_studio):
    fake.fail_with = "CUDA out of memory while sampling"
    studio = open_studio(fake)
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "failed"
    assert "CUDA out of memory while sampling" in job.last_error
    assert fake.count("submit") == 1  # a provider-side failure is not retried


def test_unauthorized_is_permanent(case, fake, open_studio):
    studio = open_studio(fake)
    fake.key = "the-right-key-is-something-else"  # the fake now rejects (and echoes) the sentinel key
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "failed" and job.attempts == 1
    assert "401" in job.last_error
    assert SENTINEL not in job.last_error


def test_validation_error_is_permanent(case, fake, open_studio):
    fake.fault("submit", **case.invalid)
    studio = open_studio(fake)
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "failed" and job.attempts == 1
    assert str(case.invalid["status"]) in job.last_error
    detail = case.invalid["body"]
    expected = {"fal": "image_size: value is not a valid size", "replicate": "must be <= 4",
                "openai": "Invalid value: 'x'", "runpod": "input.width must be an integer"}[case.provider]
    assert expected in job.last_error, (job.last_error, detail)


def test_rate_limited_retries_after_retry_after(case, fake, open_studio):
    fake.fault("submit", **case.throttle)
    studio = open_studio(fake)
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "completed", job.last_error
    assert job.attempts == 1  # a 429 waits without using up an attempt (docs/plugins.md, Errors and retries)
    first, second = fake.requests("submit")
    waited = second.at - first.at
    assert waited >= case.wait_s * 0.95, f"retried after {waited:.3f}s, the provider asked for {case.wait_s}s"


def test_server_error_retries(case, fake, open_studio):
    fake.fault("submit", **case.server_error, times=2)
    studio = open_studio(fake)
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "completed", job.last_error
    assert job.attempts == 3 and fake.count("submit") == 3


def test_timeout_retries_without_paying_twice(case, fake, open_studio):
    op = "status" if case.resumable else "submit"
    fake.fault(op, hang=True)
    studio = open_studio(fake, STUDIO_PROVIDER_TIMEOUT=SHORT_TIMEOUT)
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "completed", job.last_error
    assert job.attempts == (1 if case.resumable else 2)  # a paid job's poll errors are retried in place
    if case.resumable:
        assert fake.count("submit") == 1  # the retry kept polling the stored request id
    else:
        assert fake.count("submit") == 2  # one-shot: the only way on is to call again


def test_cancel(case, fake, open_studio):
    studio = open_studio(fake)
    if case.resumable:
        fake.hold = True
    else:
        fake.fault("submit", hang=True)
    job = generate(studio, case.provider, case.txt2img)
    fake.wait_for(lambda f: f.count("status" if case.resumable else "submit") >= 1)
    canceled = studio.jobs.cancel(job.id)
    assert canceled.status == "canceled"
    if case.resumable:
        fake.wait_for(lambda f: f.count("cancel") == 1)
        assert all(j["state"] == "canceled" for j in fake.jobs.values())
    fake.release()
    assert finish(studio, job).status == "canceled"
    assert fake.count("submit") == 1


def test_resume_after_restart(case, fake, open_studio):
    if case.resumable:
        fake.hold = True
    else:
        fake.fault("submit", hang=True)
    studio = open_studio(fake)
    job = generate(studio, case.provider, case.txt2img)
    op = "status" if case.resumable else "submit"
    fake.wait_for(lambda f: f.count(op) >= (2 if case.resumable else 1))
    studio.close()  # mid-poll (mid-call for one-shot): the job stays running, with its request id if any
    fake.release()
    again = open_studio(fake)
    done = finish(again, again.jobs.get(job.id))
    assert done.status == "completed", done.last_error
    if case.resumable:
        assert again.engine.runner.recovered["resumed"] == 1
        assert fake.count("submit") == 1, "a restart must not submit again"
        assert next(iter(fake.jobs)) in done.provider_request_id
    else:  # one-shot (OpenAI): nothing to resume, the job is sent again
        assert again.engine.runner.recovered["resubmitted"] == 1
        assert fake.count("submit") == 2


@pytest.mark.parametrize("case", [c for c in CASES if c.resumable], ids=str)
def test_create_timeout_is_not_resent(case, fake, open_studio):
    """A job-creating call without idempotency that timed out may have reached the service: no resend.

    (One-shot OpenAI retries a timed-out call instead, as its SDK does: test_timeout_retries_without_paying_twice.)
    """
    fake.fault("submit", hang=True)
    studio = open_studio(fake, STUDIO_PROVIDER_TIMEOUT=SHORT_TIMEOUT)
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "failed" and "not sent again" in job.last_error
    assert fake.count("submit") == 1


def test_health_through_the_studio(case, fake, open_studio):
    """The Models page's check: key accepted, then rejected, then unreachable."""
    studio = open_studio(fake)
    assert studio.models.health(case.provider).state == "ok"
    fake.key = "a-different-key"
    rejected = studio.models.health(case.provider)
    assert rejected.state == "rejected" and SENTINEL not in rejected.message
    fake.close()
    assert studio.models.health(case.provider).state == "unreachable"
