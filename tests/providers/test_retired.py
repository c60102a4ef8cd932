"""A model fal, Replicate or RunPod answers does not exist is marked retired, as OpenAI's and Gemini's are:
the job fails saying so, no later job is sent to it, routing moves on. Transient, auth and per-request
not-found answers retire nothing."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest

from core.errors import ModelNotAvailable
from tests.fakes.base import FakeServer
from tests.fakes.fal import FalFake
from tests.fakes.replicate import ReplicateFake
from tests.fakes.runpod import RunPodFake
from tests.providers.conftest import SENTINEL, finish, generate

VERSION = "ab" * 32


@dataclass
class Gone:
    """A model key the fake's service does not have, and how the fake is told so."""

    provider: str
    fake: type[FakeServer]
    key: str
    forget: Callable[[FakeServer], None]
    says: str  # part of the job's error: the service's own words

    def __str__(self) -> str:
        return f"{self.provider}:{self.key.split(':')[0]}{':version' if ':' in self.key else ''}"


GONE = [
    Gone("fal", FalFake, "fal-ai/old-app", lambda f: f.missing_apps.add("fal-ai/old-app"), "Application 'fal-ai/old-app' not found"),
    Gone("fal", FalFake, "fal-ai/old-app/edit", lambda f: f.missing_apps.add("fal-ai/old-app"), "fal has no model fal-ai/old-app/edit"),
    Gone("replicate", ReplicateFake, "stability-ai/old-model", lambda f: f.missing_models.add("stability-ai/old-model"),
         "The requested resource could not be found"),
    Gone("replicate", ReplicateFake, f"someone/model:{VERSION}", lambda f: f.missing_versions.add(VERSION),
         "The specified version does not exist"),
    Gone("runpod", RunPodFake, "ep-deleted", lambda f: None, "RunPod has no endpoint ep-deleted"),
]
DEFAULT_ROUTE = {"fal": "fal-ai/flux/dev", "replicate": "black-forest-labs/flux-kontext-pro", "runpod": "ep-test123"}


@pytest.fixture(params=GONE, ids=str)
def gone(request) -> Gone:
    return request.param


@pytest.fixture
def server(gone):
    fake = gone.fake(SENTINEL)
    gone.forget(fake)
    yield fake
    fake.close()


def add_model(studio, gone: Gone):
    return studio.models.add(gone.provider, {"model_key": gone.key, "display_name": f"Old {gone.provider} model",
                                             "priority": 1000, "capabilities": {"supports_txt2img": True}})


def test_a_model_the_service_does_not_have_is_retired_and_never_sent_again(gone, server, open_studio):
    studio = open_studio(server, STUDIO_LOAD_PLUGINS=gone.provider)
    old = add_model(studio, gone)
    assert studio.models.route().id == old.id
    studio.models.update_provider(gone.provider, {"concurrency_limit": 1})  # the second job waits for the first
    character = studio.characters.create({"name": "Ada", "description": "An engineer."})
    first, second = studio.portraits.generate(character.id, {"model_id": old.id, "n": 2})
    jobs = studio.jobs.wait([first.id, second.id], timeout=20)
    assert [j.status for j in jobs] == ["failed", "failed"]
    assert server.count("submit") == 1  # the second job was not sent once the model was known to be gone
    assert gone.says in jobs[0].last_error and "marked retired" in jobs[0].last_error and jobs[0].attempts == 1
    assert "retired" in jobs[1].last_error
    retired = studio.models.get(old.id)
    assert retired.retired and retired.retired_by == "provider" and gone.says in retired.retired_reason
    assert studio.models.route().model_key == DEFAULT_ROUTE[gone.provider]
    with pytest.raises(ModelNotAvailable, match="retired"):
        studio.portraits.generate(character.id, {"model_id": old.id})


@dataclass
class Answer:
    provider: str
    fake: type[FakeServer]
    key: str
    op: str
    fault: dict

    def __str__(self) -> str:
        return f"{self.provider}-{self.op}-{self.fault['status']}"


PROBLEM = "application/problem+json"
NOT_GONE = [
    Answer("fal", FalFake, "fal-ai/flux/dev", "submit", {"status": 401, "body": {"detail": "Invalid authentication credentials"}}),
    Answer("fal", FalFake, "fal-ai/flux/dev", "submit", {"status": 403, "body": {"detail": "User is locked"}}),
    Answer("fal", FalFake, "fal-ai/flux/dev", "submit", {"status": 503, "body": {"detail": "Service unavailable"}, "times": 9}),
    Answer("fal", FalFake, "fal-ai/flux/dev", "status", {"status": 404, "body": {"detail": "Request not found"}}),
    Answer("fal", FalFake, "fal-ai/flux/dev", "result", {"status": 404, "body": {"detail": "Request not found"}}),
    Answer("replicate", ReplicateFake, "black-forest-labs/flux-dev", "submit",
           {"status": 401, "content_type": PROBLEM, "body": {"title": "Unauthenticated", "status": 401,
                                                            "detail": "You did not pass a valid authentication token"}}),
    Answer("replicate", ReplicateFake, "black-forest-labs/flux-dev", "submit",
           {"status": 422, "content_type": PROBLEM, "body": {"title": "Input validation failed", "status": 422,
                                                            "detail": "- input.prompt: too long"}}),
    Answer("replicate", ReplicateFake, "black-forest-labs/flux-dev", "submit",
           {"status": 502, "content_type": PROBLEM, "body": {"title": "Bad gateway", "status": 502, "detail": "x"},
            "times": 9}),
    Answer("replicate", ReplicateFake, "black-forest-labs/flux-dev", "status",
           {"status": 404, "content_type": PROBLEM, "body": {"title": "Not found", "status": 404,
                                                            "detail": "The requested resource could not be found."}}),
    Answer("runpod", RunPodFake, "ep-test123", "submit", {"status": 401, "body": {"error": "Unauthorized"}}),
    Answer("runpod", RunPodFake, "ep-test123", "submit", {"status": 500, "body": {"error": "internal"}, "times": 9}),
    Answer("runpod", RunPodFake, "ep-test123", "status", {"status": 404, "body": {"error": "request does not exist"}}),
]


@pytest.mark.parametrize("answer", NOT_GONE, ids=str)
def test_transient_auth_and_request_not_found_answers_retire_nothing(answer, open_studio):
    fake = answer.fake(SENTINEL)
    try:
        fake.fault(answer.op, **answer.fault)
        studio = open_studio(fake, STUDIO_LOAD_PLUGINS=answer.provider, STUDIO_MAX_ATTEMPTS="2",
                             STUDIO_JOB_DEADLINE="1")
        job = finish(studio, generate(studio, answer.provider, answer.key))
        assert job.status == "failed", job.last_error
        assert "retired" not in job.last_error
        assert not any(m.retired for m in studio.models.list(modality=None))
    finally:
        fake.close()


def test_a_self_hosted_worker_url_that_answers_404_is_not_retired(open_studio):
    fake = RunPodFake(SENTINEL)  # its root is no worker: every path but /v2/ep-test123/... answers 404
    try:
        studio = open_studio(fake, STUDIO_LOAD_PLUGINS="runpod", RUNPOD_WORKER_URL=f"{fake.url}/not-a-worker")
        job = finish(studio, generate(studio, "runpod", f"{fake.url}/not-a-worker"))
        assert job.status == "failed" and "retired" not in job.last_error
        assert not any(m.retired for m in studio.models.list(modality=None))
    finally:
        fake.close()
