"""RunPod specifics: the three worker output shapes, FAILED with HTTP 200, unknown ids, input
mapping, health; and the runpod SDK's own local worker server (`--rp_serve_api`) as a
self-hosted worker."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ProviderError
from providers.runpod import RunPodProvider
from tests.fakes.runpod import ENDPOINT, RunPodFake
from tests.providers.conftest import (BASE_ENV, REFERENCE, SENTINEL, call, finish, generate, make_request,
                                      model_id)
from tests.runpod_local import local_worker

HANDLER = Path(__file__).parent / "runpod_worker" / "handler.py"
SHAPES = ["comfyui", "sdxl", "a1111"]


@pytest.fixture
def rp():
    server = RunPodFake(SENTINEL)
    yield server
    server.close()


def provider(rp: RunPodFake) -> RunPodProvider:
    return RunPodProvider({**rp.env(), **BASE_ENV})


# -- the cloud-shaped fake ---------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_cloud_output_shapes(rp, open_studio, shape):
    rp.shape = shape
    studio = open_studio(rp)
    job = finish(studio, generate(studio, "runpod", ENDPOINT))
    assert job.status == "completed", job.last_error
    assert studio.portraits.image(job.result_id).size == (48, 40)
    assert rp.requests("submit")[0].path == f"/v2/{ENDPOINT}/run"
    assert {r.method for r in rp.requests("status")} == {"GET"}
    assert job.provider_request_id.startswith(f"{ENDPOINT}/")


def test_failed_job_error_is_decoded(rp):
    rp.fail_with = "worker ran out of VRAM"
    p = provider(rp)
    rid = call(p, "submit", make_request(ENDPOINT)).request_id
    states = [call(p, "poll", rid, None) for _ in range(3)]
    assert [s.state for s in states] == ["queued", "running", "failed"]
    assert states[-1].error == "worker ran out of VRAM"  # not the JSON-encoded object


def test_unknown_id_is_permanent_not_found(rp):
    with pytest.raises(ProviderError) as err:
        call(provider(rp), "poll", f"{ENDPOINT}/no-such-job", None)
    assert err.value.status == 404 and not err.value.retryable


def test_input_mapping_from_model_defaults(rp):
    defaults = {"$map": {"prompt": "positive_prompt", "width": None, "height": None},
                "workflow": {"3": {"inputs": {"seed": "{seed}", "text": "photo, {prompt}"}}}, "steps": 20}
    call(provider(rp), "submit", make_request(ENDPOINT, input_defaults=defaults, prompt="a knight"))
    sent = rp.requests("submit")[0].json()["input"]
    assert sent == {"positive_prompt": "a knight", "seed": 7, "steps": 20,
                    "workflow": {"3": {"inputs": {"seed": 7, "text": "photo, a knight"}}}}


def test_health_cloud(rp):
    p = provider(rp)
    assert call(p, "health").state == "ok"
    assert rp.requests("health")[0].path == f"/v2/{ENDPOINT}/health"
    rp.key = "other"
    assert call(p, "health").state == "rejected"


# -- the runpod SDK's local worker server -----------------------------------------------------
@pytest.fixture(scope="module")
def worker():
    """`python handler.py --rp_serve_api` on a loopback port it picks."""
    with local_worker([str(HANDLER)], cwd=HANDLER.parent) as url:
        yield url


@pytest.fixture
def local_env(worker):
    class Local:
        def env(self):
            return {"RUNPOD_WORKER_URL": worker, "RUNPOD_API_KEY": SENTINEL}

    return Local()


@pytest.mark.slow
def test_local_worker_all_output_shapes(local_env, worker, open_studio):
    studio = open_studio(local_env)
    mid = model_id(studio, "runpod", worker)
    for shape in SHAPES:
        studio.models.update(mid, {"input_defaults": {"shape": shape}})
        job = finish(studio, generate(studio, "runpod", worker))
        assert job.status == "completed", (shape, job.last_error)
        assert studio.portraits.image(job.result_id).size == (64, 64), shape
        assert job.provider_request_id.startswith(f"{worker}/test-")


@pytest.mark.slow
def test_local_worker_reference_and_failure(local_env, worker, open_studio):
    studio = open_studio(local_env)
    job = finish(studio, generate(studio, "runpod", worker, reference=REFERENCE))
    assert job.status == "completed", job.last_error
    assert studio.portraits.image(job.result_id).size == (80, 80)  # the worker echoed the reference it got
    failed = finish(studio, generate(studio, "runpod", worker, prompt="[fail]"))
    assert failed.status == "failed" and "worker ran out of VRAM" in failed.last_error


@pytest.mark.slow
def test_local_worker_health_cancel_and_forgotten_ids(worker, refused_url):
    p = RunPodProvider({"RUNPOD_WORKER_URL": worker, **BASE_ENV})
    assert p.is_configured()
    assert call(p, "health").state == "ok"
    call(p, "cancel", f"{worker}/test-unknown")  # no /cancel on the local server: best effort, no error
    gone = call(p, "poll", f"{worker}/test-unknown", None)  # it forgets jobs once their status was read
    assert gone.state == "failed" and "Job ID not found" in gone.error
    down = RunPodProvider({"RUNPOD_WORKER_URL": refused_url})
    assert call(down, "health").state == "unreachable"


def test_cloud_key_never_goes_to_a_self_hosted_worker(rp):
    worker = f"{rp.url}/v2/{ENDPOINT}"  # the fake, addressed as a worker URL instead of an endpoint id
    p = RunPodProvider({**rp.env(), **BASE_ENV, "RUNPOD_ENDPOINT_BASE_URL": "https://api.runpod.example/v2"})
    with pytest.raises(ProviderError) as err:
        call(p, "submit", make_request(worker))
    assert err.value.status == 401 and "authorization" not in rp.requests("submit")[0].headers
    with_worker_key = RunPodProvider({**rp.env(), **BASE_ENV, "RUNPOD_WORKER_KEY": SENTINEL,
                                      "RUNPOD_ENDPOINT_BASE_URL": "https://api.runpod.example/v2"})
    assert call(with_worker_key, "submit", make_request(worker)).request_id.startswith(f"{worker}/")
    assert rp.requests("submit")[1].headers["authorization"] == f"Bearer {SENTINEL}"


# -- worker presets, reference size, output shapes -------------------------------------------
def _ref(data: bytes, url: str | None = None):
    from core.provider import ReferenceImage, sha256

    return ReferenceImage(data=data, content_type="image/png", sha256=sha256(data), url=url)


def _i2i_request(defaults: dict, ref) -> object:
    from core.models import Capabilities, ReferenceMapping

    request = make_request(ENDPOINT, input_defaults=defaults,
                           capabilities=Capabilities(supports_i2i=True, max_references=1,
                                                     reference=ReferenceMapping(field="image")))
    request.references = [ref]
    return request


def test_comfyui_preset_sends_images_by_name(rp, open_studio):
    studio = open_studio(rp)
    mid = model_id(studio, "runpod", ENDPOINT)
    workflow = {"10": {"class_type": "LoadImage", "inputs": {"image": "reference.png"}},
                "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "{prompt}"}}}
    studio.models.update(mid, {"input_defaults": {"$worker": "comfyui", "workflow": workflow,
                                                  "$map": {"prompt": None, "seed": None, "width": None, "height": None}}})
    job = finish(studio, generate(studio, "runpod", ENDPOINT, reference=REFERENCE))
    assert job.status == "completed", job.last_error
    sent = rp.requests("submit")[0].json()["input"]
    (image,) = sent["images"]
    assert image["name"] == "reference.png" and image["image"].startswith("data:image/png;base64,")
    assert sent["workflow"]["6"]["inputs"]["text"] == job.request.final_prompt and "$worker" not in sent
    recorded = studio.portraits.get(job.result_id).recipe.inputs["images"]
    assert recorded == [{"name": "reference.png", "image": f"sha256:{job.request.reference_hash}"}]


def test_sdxl_preset_needs_a_url_and_a_local_store_refuses_clearly(rp, open_studio):
    studio = open_studio(rp)
    studio.models.update(model_id(studio, "runpod", ENDPOINT), {"input_defaults": {"$worker": "sdxl"}})
    job = finish(studio, generate(studio, "runpod", ENDPOINT, reference=REFERENCE))
    assert job.status == "failed" and job.attempts == 1
    assert "worker-sdxl" in job.last_error and "cannot sign URLs" in job.last_error
    assert not rp.requests("submit")  # refused before anything was paid for
    signed = "https://bucket.s3.example/ref.png?X-Amz-Signature=abc"
    call(provider(rp), "submit", _i2i_request({"$worker": "sdxl"}, _ref(REFERENCE, signed)))
    assert rp.requests("submit")[0].json()["input"]["image_url"] == signed


def test_a1111_preset_sends_raw_base64_init_images(rp):
    import base64

    call(provider(rp), "submit", _i2i_request({"$worker": "a1111"}, _ref(REFERENCE)))
    (sent,) = rp.requests("submit")[0].json()["input"]["init_images"]
    assert base64.b64decode(sent) == REFERENCE


def test_a_reference_over_the_run_body_limit_goes_as_a_url_or_is_refused(rp):
    import os

    big = os.urandom(8 * 1024 * 1024)  # 8 MB: 10.7 MB once base64-encoded
    with pytest.raises(ProviderError) as err:
        call(provider(rp), "submit", _i2i_request({}, _ref(big)))
    assert not err.value.retryable and "10 MB" in err.value.message and "S3" in err.value.message
    assert not rp.requests("submit")
    signed = "https://bucket.s3.example/big.png?X-Amz-Signature=abc"
    call(provider(rp), "submit", _i2i_request({}, _ref(big, signed)))
    assert rp.requests("submit")[0].json()["input"]["image"] == signed
    small = call(provider(rp), "submit", _i2i_request({}, _ref(REFERENCE, signed)))  # small: inline even with a URL
    assert rp.requests("submit")[1].json()["input"]["image"].startswith("data:image/png;base64,") and small


def test_comfyui_before_5_output_shape(rp, open_studio):
    rp.shape = "comfyui-4"
    studio = open_studio(rp)
    job = finish(studio, generate(studio, "runpod", ENDPOINT))
    assert job.status == "completed", job.last_error
    assert studio.portraits.image(job.result_id).size == (48, 40)


@pytest.mark.slow
def test_local_worker_result_longer_than_the_request_timeout_is_kept(local_env, worker, open_studio):
    """The SDK's local server runs the handler inside /status: the call waits for it, so a job longer
    than STUDIO_PROVIDER_TIMEOUT still completes instead of losing its result ("Job ID not found")."""
    studio = open_studio(local_env, STUDIO_PROVIDER_TIMEOUT="0.5")
    studio.models.update(model_id(studio, "runpod", worker), {"input_defaults": {"sleep": 1.5, "shape": "sdxl"}})
    job = finish(studio, generate(studio, "runpod", worker))
    assert job.status == "completed" and job.attempts == 1, job.last_error
