"""Fixtures for provider contract tests: a loopback fake per provider and studios pointed at it.

Every studio opened here is checked on teardown: no piece of the sentinel key (any 8 characters of
it in a row, so a key cut in two is caught too) appears in any table of the database, and none in
any log line of the test (caplog, DEBUG).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.models import Job
from core.studio import Studio
from tests.conftest import make_settings, png_bytes
from tests.fakes.base import FakeServer
from tests.fakes.fal import FalFake
from tests.fakes.openai import OpenAIFake
from tests.fakes.replicate import ReplicateFake
from tests.fakes.runpod import ENDPOINT, RunPodFake

SENTINEL = "sk-SENTINEL-7f3e9a1c5b2d4e6f"


def key_pieces(text: str, key: str = SENTINEL, size: int = 8) -> list[str]:
    """The pieces of `key` (runs of `size` characters) found in `text`; empty when nothing leaked."""
    return [key[i:i + size] for i in range(len(key) - size + 1) if key[i:i + size] in text]


@dataclass
class Case:
    """What differs between providers in the shared contract tests."""

    provider: str
    fake: type[FakeServer]
    txt2img: str
    i2i: str
    ref_field: str
    ref_form: str = "single"
    resumable: bool = True
    throttle: dict = field(default_factory=dict)  # the 429 reply: body and headers
    wait_s: float = 1.0  # what the 429's headers ask to wait
    server_error: dict = field(default_factory=dict)
    invalid: dict = field(default_factory=dict)  # a 422-style validation error

    def __str__(self) -> str:
        return self.provider


PROBLEM = "application/problem+json"
CASES = [
    Case("fal", FalFake, "fal-ai/flux/dev", "fal-ai/flux/dev/image-to-image", "image_url",
         throttle={"status": 429, "body": {"detail": "Too many requests"}, "headers": {"Retry-After": "1"}},
         server_error={"status": 503, "body": {"detail": "Service unavailable", "error_type": "runner_unavailable"},
                       "headers": {"X-Fal-Error-Type": "runner_unavailable"}},
         invalid={"status": 422, "body": {"detail": [{"loc": ["body", "image_size"], "msg": "value is not a valid size",
                                                      "type": "value_error"}]}}),
    Case("replicate", ReplicateFake, "black-forest-labs/flux-schnell", "black-forest-labs/flux-kontext-pro",
         "input_image",
         throttle={"status": 429, "content_type": PROBLEM,
                   "body": {"title": "Too Many Requests", "status": 429,
                            "detail": "Request was throttled. Expected available in 1 second."},
                   "headers": {"ratelimit-remaining": "0", "ratelimit-reset": "1"}},
         server_error={"status": 500, "content_type": PROBLEM,
                       "body": {"title": "Internal Server Error", "detail": "Something went wrong", "status": 500}},
         invalid={"status": 422, "content_type": PROBLEM,
                  "body": {"title": "Input validation failed", "status": 422, "detail": "- input.num_outputs: must be <= 4",
                           "invalid_fields": [{"type": "less_equal", "field": "input.num_outputs",
                                               "description": "must be <= 4"}]}}),
    Case("openai", OpenAIFake, "gpt-image-2", "gpt-image-2", "image", resumable=False, wait_s=0.8,
         throttle={"status": 429, "body": {"error": {"message": "Rate limit reached for gpt-image-2 on images per min",
                                                     "type": "requests", "param": None, "code": "rate_limit_exceeded"}},
                   "headers": {"retry-after-ms": "800", "x-ratelimit-remaining-requests": "0"}},
         server_error={"status": 500, "body": {"error": {"message": "The server had an error while processing your request.",
                                                         "type": "server_error", "param": None, "code": None}}},
         invalid={"status": 400, "body": {"error": {"message": "Invalid value: 'x'. Supported values are: 'low', 'medium', 'high', 'auto'.",
                                                    "type": "invalid_request_error", "param": "quality", "code": "invalid_value"}}}),
    Case("runpod", RunPodFake, ENDPOINT, ENDPOINT, "image",
         throttle={"status": 429, "body": {"error": "rate limit exceeded"}, "headers": {"Retry-After": "1"}},
         server_error={"status": 502, "body": {"error": "bad gateway"}},
         invalid={"status": 400, "body": {"error": "invalid request body: input.width must be an integer"}}),
]
BY_NAME = {c.provider: c for c in CASES}
BASE_ENV = {"STUDIO_POLL_INTERVAL": "0.01", "STUDIO_PROVIDER_TIMEOUT": "5"}
SHORT_TIMEOUT = "0.5"  # for the tests that make the fake hang


@pytest.fixture
def sentinel_logs(caplog):
    caplog.set_level(logging.DEBUG)
    yield caplog
    leaked = [r.getMessage() for r in caplog.records if key_pieces(r.getMessage())]
    assert not leaked, f"the key leaked into log lines: {leaked[:3]}"
    assert not key_pieces(caplog.text), "the key leaked into the log output"


@pytest.fixture(params=CASES, ids=str)
def case(request) -> Case:
    return request.param


@pytest.fixture
def fake(case):
    server = case.fake(SENTINEL)
    yield server
    server.close()


def assert_no_secret(studio: Studio) -> None:
    """Scan every row of every table for any piece of the sentinel key."""
    db = studio.ctx.db
    tables = [r["table_name"] for r in db.fetchall("SELECT table_name FROM information_schema.tables")]
    for table in tables:
        for row in db.fetchall(f'SELECT * FROM "{table}"'):
            assert not key_pieces(str(row)), f"the key leaked into table {table}: {row}"


@pytest.fixture
def open_studio(tmp_path: Path, sentinel_logs):
    """`open_studio(fake, **env)` opens (and reopens) a studio on one home, pointed at the fake."""
    opened: list[Studio] = []

    def _open(server: FakeServer, **env: str) -> Studio:
        settings = make_settings(tmp_path / "home", {**server.env(), **BASE_ENV, **env})
        studio = Studio.open(settings=settings, retry_base=0.01)
        opened.append(studio)
        return studio

    yield _open
    for studio in opened:
        if not studio.ctx.db._closed:
            assert_no_secret(studio)
            studio.close()


def model_id(studio: Studio, provider: str, key: str) -> str:
    return next(m.id for m in studio.models.list(modality=None) if m.provider_id == provider and m.model_key == key)


def generate(studio: Studio, provider: str, key: str, *, reference: bytes | None = None, **options) -> Job:
    """Queue one portrait of a fresh character on the given model."""
    character = studio.characters.create({"name": "Ada", "description": "An engineer with short black hair.",
                                          "appearance_tags": ["short black hair"], "content_rating": "sfw"})
    if reference is not None:
        options.update(reference="upload", reference_key=studio.uploads.add(reference))
    return studio.portraits.generate(character.id, {"model_id": model_id(studio, provider, key), **options})[0]


def finish(studio: Studio, job: Job, timeout: float = 20.0) -> Job:
    return studio.jobs.wait(job.id, timeout=timeout)[0]


REFERENCE = png_bytes((80, 80), (10, 200, 30))


def call(provider, method: str, *args, **kwargs):
    """Run one provider coroutine on a fresh loop and close the provider's client after it."""
    import asyncio

    async def main():
        try:
            return await getattr(provider, method)(*args, **kwargs)
        finally:
            await provider.aclose()

    return asyncio.run(main())


def make_request(model_key: str, *, references=(), capabilities=None, input_defaults=None, safety=True, **kw):
    from core.models import Capabilities
    from core.provider import GenerationRequest, ReferenceImage, sha256

    refs = [ReferenceImage(data=d, content_type="image/png", sha256=sha256(d)) for d in references]
    return GenerationRequest(job_id="j1", model_key=model_key, prompt=kw.pop("prompt", "a portrait"), seed=7,
                             references=refs, capabilities=capabilities or Capabilities(),
                             input_defaults=input_defaults or {}, safety_checker=safety,
                             content_rating="sfw" if safety else "nsfw", **kw)


SAMPLE_PLUGIN_DIR = Path(__file__).resolve().parent.parent / "sample_plugin"


@pytest.fixture(scope="session")
def sample_plugin():
    """The sample third-party plugin, pip-installed (editable) as its own distribution; its entry point."""
    import importlib
    import importlib.metadata
    import site
    import subprocess
    import sys
    import sysconfig

    def entry_point():
        return next((ep for ep in importlib.metadata.entry_points(group="character_studio") if ep.name == "sample"), None)

    installed_here = entry_point() is None
    if installed_here:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e",
                        str(SAMPLE_PLUGIN_DIR)], check=True)
        importlib.invalidate_caches()
    try:
        importlib.import_module("studio_sample_provider")
    except ModuleNotFoundError:  # installed by this process: activate its .pth (editable finder)
        site.addsitedir(sysconfig.get_paths()["purelib"])
        importlib.invalidate_caches()
    ep = entry_point()
    assert ep is not None and ep.dist.name == "studio-sample-provider"
    yield ep
    if installed_here:  # leave the environment as we found it: a studio run here must not load it
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "studio-sample-provider"], check=True)
