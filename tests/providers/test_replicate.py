"""Replicate specifics: output as list, string or data URI; failed, canceled and aborted
predictions; versions; a create is never resent; large references via the files API; health."""
from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from core.models import Capabilities, ReferenceMapping
from providers.replicate import ReplicateProvider
from tests.fakes.replicate import ReplicateFake
from tests.providers.conftest import BASE_ENV, SENTINEL, call, finish, generate, make_request


@pytest.fixture
def rep():
    server = ReplicateFake(SENTINEL)
    yield server
    server.close()


def provider(rep: ReplicateFake) -> ReplicateProvider:
    return ReplicateProvider({**rep.env(), **BASE_ENV})


@pytest.mark.parametrize("form", ["list", "string", "data"])
def test_output_as_list_string_or_data_uri(rep, open_studio, form):
    rep.output_form = form
    studio = open_studio(rep)
    job = finish(studio, generate(studio, "replicate", "black-forest-labs/flux-dev"))
    assert job.status == "completed", job.last_error
    assert studio.portraits.image(job.result_id).size == (48, 40)
    downloads = [r for r in rep.log if r.op == "file"]
    assert len(downloads) == (0 if form == "data" else 1)
    sent = rep.requests("submit")[0]
    assert sent.path == "/v1/models/black-forest-labs/flux-dev/predictions"
    assert sent.json()["input"]["aspect_ratio"] == "1:1"
    assert sent.json()["input"]["disable_safety_checker"] is False


@pytest.mark.parametrize("end,message", [("failed", "NSFW content detected"),
                                         ("aborted", "deadline passed before it started")])
def test_failed_and_aborted_predictions(rep, open_studio, end, message):
    rep.fail_with, rep.end_state = "NSFW content detected", end
    studio = open_studio(rep)
    job = finish(studio, generate(studio, "replicate", "black-forest-labs/flux-dev"))
    assert job.status == "failed" and message in job.last_error
    assert rep.count("submit") == 1


def test_prediction_canceled_on_replicate_fails_the_job(rep, open_studio):
    rep.hold = True
    studio = open_studio(rep)
    job = generate(studio, "replicate", "black-forest-labs/flux-dev")
    rep.wait_for(lambda f: f.count("status") >= 2)
    with rep.lock:
        next(iter(rep.jobs.values()))["state"] = "canceled"  # canceled from Replicate's dashboard
    done = finish(studio, job)
    assert done.status == "failed" and "canceled" in done.last_error


def test_version_model_key_creates_by_version(rep, open_studio):
    studio = open_studio(rep)
    studio.models.add("replicate", {"model_key": "someone/custom:5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa",
                                    "display_name": "Custom version"})
    job = finish(studio, generate(studio, "replicate", "someone/custom:5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"))
    assert job.status == "completed", job.last_error
    body = rep.requests("submit")[0]
    assert body.path == "/v1/predictions"
    assert body.json()["version"].startswith("5c7d5dc6")


def test_large_reference_goes_through_the_files_api(rep):
    big = io.BytesIO()
    Image.frombytes("RGB", (400, 400), os.urandom(400 * 400 * 3)).save(big, "PNG")
    assert len(big.getvalue()) > 256 * 1024
    caps = Capabilities(supports_i2i=True, max_references=1, reference=ReferenceMapping(field="input_image"))
    request = make_request("black-forest-labs/flux-kontext-pro", references=[big.getvalue()], capabilities=caps)
    submission = call(provider(rep), "submit", request)
    assert rep.count("upload") == 1
    sent = rep.requests("submit")[0].json()["input"]
    assert sent["input_image"].startswith(f"{rep.url}/files/")
    assert submission.inputs["input_image"].startswith("sha256:")


def test_poll_reads_progress_from_logs(rep):
    p = provider(rep)
    rid = call(p, "submit", make_request("black-forest-labs/flux-dev")).request_id
    first, second = call(p, "poll", rid, None), call(p, "poll", rid, None)
    assert first.state == "queued"
    assert (second.state, second.percent) == ("running", 50.0)


def test_unknown_prediction_is_not_found(rep):
    from core.errors import ProviderError

    with pytest.raises(ProviderError) as err:
        call(provider(rep), "poll", "doesnotexist", None)
    assert err.value.status == 404 and not err.value.retryable
    assert "could not be found" in err.value.message


def test_health(rep):
    p = provider(rep)
    assert call(p, "health").state == "ok"
    rep.key = "other"
    assert call(p, "health").state == "rejected"


def test_a_bare_version_id_creates_by_version(rep, open_studio):
    """Replicate's HTTP API: a version id goes to POST /v1/predictions with `version` (there is no
    /v1/models/{version}/predictions route)."""
    version = "5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637"
    studio = open_studio(rep)
    studio.models.add("replicate", {"model_key": version, "display_name": "Pinned version",
                                    "capabilities": {"supports_txt2img": True}})
    job = finish(studio, generate(studio, "replicate", version))
    assert job.status == "completed", job.last_error
    sent = rep.requests("submit")[0]
    assert sent.path == "/v1/predictions"
    assert sent.json()["version"] == version and sent.json()["input"]["prompt"]
    assert studio.portraits.get(job.result_id).recipe.provider_metadata["version"] == version
