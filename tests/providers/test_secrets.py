"""Keys never reach the database, logs or messages: fakes that echo the Authorization header into the
exact field each provider copies into its messages, error bodies cut in the middle of the key, a
plugin that crashes with the key in its exception, and keys loaded with stray whitespace or a
control character. Every studio here is also scanned on teardown (conftest: tables and log lines).
"""
from __future__ import annotations

import json

import pytest

from core.config import Settings
from core.errors import StudioError
from core.hookspecs import hookimpl
from core.models import ModelSpec
from core.provider import GenerationRequest, GenerationResult, Provider
from core.studio import Studio
from tests.conftest import make_settings
from tests.fakes.base import Req
from tests.providers.conftest import BASE_ENV, PROBLEM, SENTINEL, assert_no_secret, finish, generate, key_pieces


def auth(req: Req) -> str:
    return req.headers.get("authorization", "")


def straddling(req: Req, cut: int) -> str:
    """Filler, then the request's Authorization header placed so that character `cut` falls inside it."""
    value = auth(req)
    return "x" * (cut - len(value) // 2) + value


NOTE_AT = len(json.dumps({"status": "IN_QUEUE", "note": ""})) - 2  # where the note's text starts in the body
# The field each provider's error reading copies into its message, made to echo the key.
SUBMIT_ECHO = {
    "openai": dict(status=400, body=lambda r: {"error": {"message": "Invalid request.", "type": "invalid_request_error",
                                                         "param": None, "code": auth(r)}}),
    "fal": dict(status=422, body={"detail": "Unprocessable request"}, headers=lambda r: {"X-Fal-Error-Type": auth(r)}),
    "replicate": dict(status=422, content_type=PROBLEM, body=lambda r: {
        "title": "Input validation failed", "status": 422, "detail": "- input: invalid",
        "invalid_fields": [{"type": "invalid", "field": auth(r), "description": "invalid"}]}),
    # /run answered without a job id; the message quotes the first 200 characters of the body.
    "runpod": dict(status=200, body=lambda r: {"status": "IN_QUEUE", "note": straddling(r, 200 - NOTE_AT)}),
}
# The same fields on the call each provider's health check makes.
HEALTH_ECHO = {
    "openai": dict(op="models", status=401, body=lambda r: {"error": {
        "message": "Incorrect API key provided.", "type": "invalid_request_error", "param": None, "code": auth(r)}}),
    "fal": dict(op="status", status=401, body={"detail": "Unauthorized"}, headers=lambda r: {"X-Fal-Error-Type": auth(r)}),
    "replicate": dict(op="account", status=401, content_type=PROBLEM, body=lambda r: {
        "title": "Unauthenticated", "status": 401, "detail": "Invalid token",
        "invalid_fields": [{"type": "invalid", "field": auth(r)}]}),
    "runpod": dict(op="health", status=401, body=lambda r: {"error": straddling(r, 500)}),
}


def test_the_key_echoed_into_a_provider_specific_field_is_never_stored(case, fake, open_studio):
    fake.fault("submit", **SUBMIT_ECHO[case.provider])
    studio = open_studio(fake)
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "failed" and job.attempts == 1
    assert job.last_error and not key_pieces(job.last_error), job.last_error
    assert "***" in job.last_error  # the echoed field is in the message, its key masked


def test_the_key_echoed_into_a_health_check_answer_is_never_shown(case, fake, open_studio):
    echo = dict(HEALTH_ECHO[case.provider])
    fake.fault(echo.pop("op"), **echo)
    studio = open_studio(fake)
    health = studio.models.health(case.provider)
    assert health.state == "rejected"
    assert not key_pieces(health.message), health.message


def test_an_error_body_cut_in_the_middle_of_the_key_keeps_no_piece_of_it(case, fake, open_studio):
    """Messages keep the first 500 characters of an error body (docs/plugins.md); the key straddles the cut."""
    fake.fault("submit", 500, body=lambda r: (straddling(r, 500) + " and more").encode(), content_type="text/plain")
    studio = open_studio(fake, STUDIO_MAX_ATTEMPTS="1")
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "failed" and "500" in job.last_error
    assert not key_pieces(job.last_error), job.last_error


@pytest.mark.parametrize("padding", [("", "\n"), ("  ", "\r\n"), ("\t", " ")], ids=["newline", "spaces-crlf", "tab"])
def test_a_key_with_surrounding_whitespace_works(case, fake, open_studio, padding):
    before, after = padding
    key_env = case.fake.provider_class.key_env[0]
    studio = open_studio(fake, **{key_env: f"{before}{SENTINEL}{after}"})
    assert studio.models.health(case.provider).state == "ok"
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "completed", job.last_error


@pytest.mark.parametrize("bad", ["\x07", "\x00", "\n", "\u200b"], ids=["bell", "nul", "inner-newline", "zero-width"])
def test_a_key_with_a_control_character_is_refused_at_start_up_naming_the_variable(case, fake, open_studio, tmp_path, bad):
    key_env = case.fake.provider_class.key_env[0]
    value = f"{SENTINEL[:14]}{bad}{SENTINEL[14:]}"
    with pytest.raises(StudioError) as refused:
        open_studio(fake, **{key_env: value})
    assert key_env in refused.value.message and key_env in str(refused.value)
    assert not key_pieces(str(refused.value)), refused.value.message
    studio = open_studio(fake)  # nothing was left half-open: the home opens with a good key
    assert studio.models.health(case.provider).state == "ok"


def test_s3_credentials_are_stripped_and_a_control_character_refused(tmp_path):
    settings = Settings.from_env(home=tmp_path, env={"AWS_ACCESS_KEY_ID": " AKIASTUDIOSTRIPTEST\n",
                                                      "AWS_SECRET_ACCESS_KEY": f"{SENTINEL}\n"})
    assert settings.secret("AWS_ACCESS_KEY_ID") == "AKIASTUDIOSTRIPTEST"
    assert settings.secret("AWS_SECRET_ACCESS_KEY") == SENTINEL
    with pytest.raises(StudioError) as refused:
        Settings.from_env(home=tmp_path, env={"AWS_SECRET_ACCESS_KEY": f"{SENTINEL[:10]}\x1b{SENTINEL[10:]}"})
    assert "AWS_SECRET_ACCESS_KEY" in refused.value.message and not key_pieces(refused.value.message)


class Leaky(Provider):
    """A third-party provider with a bug: its exception carries the request's headers, key included."""

    id = "leaky"
    display_name = "Leaky"
    key_env = ("LEAKY_CREDENTIALS",)  # a name no suffix rule would catch: declared, so still redacted

    def default_models(self):
        return [ModelSpec(model_key="leaky/v1", display_name="Leaky v1", priority=100)]

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        raise RuntimeError(f"upstream refused {self.auth_headers()} and {json.dumps(self.auth_headers())}")

    async def health(self):
        raise RuntimeError(f"probe crashed with {self.auth_headers()}")


class LeakyPlugin:
    @hookimpl
    def register_providers(self, register):
        register(Leaky)


def test_an_unexpected_exception_carrying_the_key_is_stored_and_logged_without_it(tmp_path, sentinel_logs):
    settings = make_settings(tmp_path / "home", {"LEAKY_CREDENTIALS": SENTINEL, **BASE_ENV})
    with Studio.open(settings=settings, plugins=[LeakyPlugin()], retry_base=0.01) as studio:
        job = finish(studio, generate(studio, "leaky", "leaky/v1"))
        assert job.status == "failed" and job.last_error.startswith("Internal error: RuntimeError")
        assert "Bearer ***" in job.last_error and not key_pieces(job.last_error), job.last_error
        health = studio.models.health("leaky")
        assert health.state == "unknown" and "Bearer ***" in health.message and not key_pieces(health.message)
        assert_no_secret(studio)
    crash_logs = [r.getMessage() for r in sentinel_logs.records if "RuntimeError" in r.getMessage()]
    assert crash_logs and all("Bearer ***" in line for line in crash_logs)  # logged, key masked (teardown scans all)
