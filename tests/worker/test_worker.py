"""The studio drives the project's worker (worker/) through the runpod SDK's local API server: portraits
and image-to-image portraits end to end with the percent reported, and bad input failing the job with a
message that says what to fix."""
from __future__ import annotations

import base64
import functools
import http.server
import io
import os
import threading
import time

import httpx
import pytest
from PIL import Image

from tests.conftest import png_bytes
from tests.providers.conftest import REFERENCE, generate, model_id

pytestmark = pytest.mark.slow


class Worker:
    """What `open_studio` points a studio at: the worker's URL as RUNPOD_WORKER_URL."""

    def __init__(self, url: str):
        self.url = url

    def env(self) -> dict[str, str]:
        return {"RUNPOD_WORKER_URL": self.url}


def watch(studio, job, timeout: float = 120.0):
    """Wait for the job to end, reading it at every change the runner announces; returns the job and
    the percents it showed while running."""
    runner, percents = studio.jobs.runner, []
    seen = runner.generation
    deadline = time.monotonic() + timeout
    while True:
        current = studio.jobs.get(job.id)
        if current.status == "running" and current.percent is not None:
            percents.append(current.percent)
        if not current.is_active:
            return current, percents
        assert time.monotonic() < deadline, f"job still {current.status} after {timeout} s"
        seen = runner.wait_for_change(1.0, seen)


def pixels(studio, image_id) -> bytes:
    return studio.portraits.image(image_id).convert("RGB").tobytes()


def test_the_seeded_model_fits_the_worker(worker_url, open_studio):
    studio = open_studio(Worker(worker_url))
    model = studio.models.get(model_id(studio, "runpod", worker_url))
    caps = model.capabilities
    assert caps.supports_txt2img and caps.supports_i2i and caps.supports_seed and caps.max_references == 1
    assert (caps.reference.field, caps.reference.form) == ("image", "single")
    assert "negative_prompt" in model.input_defaults


def test_portrait_end_to_end_with_progress(worker_url, open_studio):
    studio = open_studio(Worker(worker_url))
    job, percents = watch(studio, generate(studio, "runpod", worker_url, width=64, height=64, seed=11))
    assert job.status == "completed", job.last_error
    assert studio.portraits.image(job.result_id).size == (64, 64)
    assert any(0 < p < 100 for p in percents), f"no percent seen while running: {percents}"
    assert percents == sorted(percents)
    assert studio.portraits.get(job.result_id).recipe.seed == 11
    again, _ = watch(studio, generate(studio, "runpod", worker_url, width=64, height=64, seed=11))
    other, _ = watch(studio, generate(studio, "runpod", worker_url, width=64, height=64, seed=12))
    assert pixels(studio, again.result_id) == pixels(studio, job.result_id)  # the seed decides the image
    assert pixels(studio, other.result_id) != pixels(studio, job.result_id)


def test_image_to_image_portrait_uses_the_reference(worker_url, open_studio):
    studio = open_studio(Worker(worker_url))
    red = png_bytes((80, 80), (220, 30, 30))
    made = {}
    for name, reference in (("green", REFERENCE), ("red", red), ("none", None)):
        job, percents = watch(studio, generate(studio, "runpod", worker_url, reference=reference, width=64,
                                                height=64, seed=5))
        assert job.status == "completed", (name, job.last_error)
        assert studio.portraits.image(job.result_id).size == (64, 64)
        made[name] = pixels(studio, job.result_id)
        if reference is not None:
            assert job.request.inputs["image"].startswith("sha256:")  # sent inline, recorded by hash
            assert any(0 < p < 100 for p in percents), f"no percent seen while running: {percents}"
    assert len(set(made.values())) == 3  # same seed and prompt: the reference made the difference


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A loopback file server holding reference.png; any other path answers 404 (an expired presigned URL)."""
    folder = tmp_path_factory.mktemp("files")
    (folder / "reference.png").write_bytes(REFERENCE)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=folder))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_reference_given_as_a_url_is_downloaded(worker_url, open_studio, files):
    studio = open_studio(Worker(worker_url))
    mid = model_id(studio, "runpod", worker_url)
    made = []
    for defaults in ({"image": f"{files}/reference.png?X-Amz-Signature=abc"}, {}):
        studio.models.update(mid, {"input_defaults": defaults})
        job, _ = watch(studio, generate(studio, "runpod", worker_url, width=64, height=64, seed=9))
        assert job.status == "completed", job.last_error
        made.append(pixels(studio, job.result_id))
    assert made[0] != made[1]


def test_progress_route_of_the_local_server(worker_url):
    """/run only takes the job; until its /status call runs it, /progress says it is queued."""
    job_id = httpx.post(f"{worker_url}/run", json={"input": {"prompt": "p", "width": 64, "height": 64}}).json()["id"]
    assert httpx.get(f"{worker_url}/progress/{job_id}").json() == {"id": job_id, "status": "IN_QUEUE"}
    done = httpx.post(f"{worker_url}/status/{job_id}", timeout=120).json()
    assert done["status"] == "COMPLETED" and done["output"]["images"][0].startswith("data:image/png;base64,")
    assert httpx.get(f"{worker_url}/progress/{job_id}").status_code == 404
    assert httpx.get(f"{worker_url}/progress/test-unknown").status_code == 404


def _noise_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


BAD_INPUTS = {
    "missing prompt": ({"input_defaults": {"$map": {"prompt": None}}}, {}, ["prompt is required"]),
    "oversized request": ({}, {"width": 1024, "height": 1024}, ["1024x1024", "WORKER_MAX_PIXELS"]),
    "too many steps": ({"input_defaults": {"steps": 5000}}, {}, ["steps must be between 1 and 100"]),
    "unreadable reference": ({"input_defaults": {"image": "data:image/png;base64," + base64.b64encode(
        b"not a picture at all").decode()}}, {}, ["reference image cannot be read"]),
    "oversized reference": ({}, {"reference": "big"}, ["WORKER_MAX_REFERENCE_BYTES"]),
}


@pytest.mark.parametrize("case", [*BAD_INPUTS, "reference URL gone"])
def test_bad_input_fails_the_job_with_a_clear_message(worker_url, open_studio, files, case):
    studio = open_studio(Worker(worker_url))
    if case == "reference URL gone":
        gone = f"{files}/expired.png?X-Amz-Signature=secret"
        update, options, expected = {"input_defaults": {"image": gone}}, {}, ["answered HTTP 404"]
    else:
        update, options, expected = BAD_INPUTS[case]
    if update:
        studio.models.update(model_id(studio, "runpod", worker_url), update)
    options = {"width": 64, "height": 64, **options}
    if options.pop("reference", None):
        options["reference"] = _noise_png(320)  # about 300 KB; this worker takes 256 KB
    job, _ = watch(studio, generate(studio, "runpod", worker_url, **options))
    assert job.status == "failed" and job.attempts == 1, (job.status, job.last_error)
    for words in expected:
        assert words in job.last_error, job.last_error
    assert "secret" not in job.last_error  # a presigned URL's query is never repeated
