"""fal.ai specifics: returned URLs without the sub-path, queue position and logs, big seeds,
infrastructure error headers, the key pair, list-form references, safety checker, health."""
from __future__ import annotations

import pytest

from core.errors import ProviderError
from providers.fal import FalProvider
from tests.fakes.fal import BIG_SEED, FalFake
from tests.providers.conftest import BASE_ENV, REFERENCE, SENTINEL, call, finish, generate, model_id


@pytest.fixture
def fal():
    server = FalFake(SENTINEL)
    yield server
    server.close()


def provider(fal: FalFake, **env) -> FalProvider:
    return FalProvider({**fal.env(), **BASE_ENV, **env})


def test_follows_returned_urls_without_the_sub_path(fal, open_studio):
    studio = open_studio(fal)
    job = finish(studio, generate(studio, "fal", "fal-ai/flux/dev"))
    assert job.status == "completed", job.last_error
    assert fal.requests("submit")[0].path == "/fal-ai/flux/dev"
    assert {r.path.rsplit("/", 2)[0] for r in fal.requests("status")} == {f"/fal-ai/flux/requests"}
    assert all(r.query == {"logs": ["1"]} for r in fal.requests("status"))
    assert fal.requests("result")[0].path == f"/fal-ai/flux/requests/{next(iter(fal.jobs))}"
    recipe = studio.portraits.get(job.result_id).recipe
    assert recipe.seed == BIG_SEED and isinstance(recipe.seed, int)  # beyond 2^53, kept exact
    assert recipe.inputs["enable_safety_checker"] is True
    assert recipe.inputs["image_size"] == {"width": 1024, "height": 1024}


def test_poll_reports_queue_position_then_logs(fal):
    p = provider(fal)
    request_id = call(p, "submit", _req()).request_id
    first, second, third = (call(p, "poll", request_id, _req()) for _ in range(3))
    assert (first.state, first.queue_position) == ("queued", 2)
    assert (second.state, second.message) == ("running", "step 3/28")
    assert third.state == "completed"
    result = call(p, "result", request_id, _req())
    assert result.seed == BIG_SEED and result.provider_ms == 250.0
    assert result.metadata["has_nsfw_concepts"] == [False]


def test_resume_without_cached_urls_uses_the_response_url(fal):
    request_id = call(provider(fal), "submit", _req()).request_id
    fresh = provider(fal)  # as after a restart: nothing cached
    assert [call(fresh, "poll", request_id, _req()).state for _ in range(3)] == ["queued", "running", "completed"]
    call(fresh, "result", request_id, _req())
    assert all(r.path.startswith("/fal-ai/flux/requests/") for r in fal.requests("status"))


def test_list_form_reference_for_seedream(fal, open_studio):
    studio = open_studio(fal)
    job = finish(studio, generate(studio, "fal", "fal-ai/bytedance/seedream/v4/edit", reference=REFERENCE))
    assert job.status == "completed", job.last_error
    sent = fal.requests("submit")[0].json()
    assert isinstance(sent["image_urls"], list) and len(sent["image_urls"]) == 1
    assert sent["image_urls"][0].startswith("data:image/png;base64,")


def test_nsfw_character_turns_the_safety_checker_off(fal, open_studio):
    studio = open_studio(fal)
    character = studio.characters.create({"name": "Noir", "description": "A detective.", "content_rating": "nsfw"})
    job = studio.portraits.generate(character.id, {"model_id": model_id(studio, "fal", "fal-ai/flux/dev")})[0]
    assert finish(studio, job).status == "completed"
    assert fal.requests("submit")[0].json()["enable_safety_checker"] is False


def test_user_timeout_504_is_permanent_but_infrastructure_504_retries(fal):
    p = provider(fal)
    fal.fault("submit", 504, {"detail": "Request timed out", "error_type": "request_timeout"},
              {"X-Fal-Error-Type": "request_timeout", "X-Fal-Request-Timeout-Type": "user"})
    with pytest.raises(ProviderError) as user:
        call(p, "submit", _req())
    assert not user.value.retryable and "request_timeout" in user.value.message
    fal.fault("submit", 504, {"detail": "Request timed out", "error_type": "request_timeout"},
              {"X-Fal-Error-Type": "request_timeout"})
    with pytest.raises(ProviderError) as infra:
        call(p, "submit", _req())
    assert infra.value.retryable


def test_key_id_and_secret_join_into_the_key(fal):
    key_id, secret = SENTINEL.split("-", 1)
    fal.key = f"{key_id}:{secret}"
    p = FalProvider({"FAL_KEY_ID": key_id, "FAL_KEY_SECRET": secret, "FAL_QUEUE_URL": fal.url})
    assert p.is_configured()
    assert call(p, "submit", _req()).request_id.startswith(fal.url)
    assert fal.requests("submit")[0].headers["authorization"] == f"Key {key_id}:{secret}"
    assert p.scrub(f"oops {key_id}:{secret}") == "oops ***"


def test_cancel_of_a_finished_job_is_reported(fal):
    p = provider(fal)
    request_id = call(p, "submit", _req())
    for _ in range(3):
        call(p, "poll", request_id.request_id, _req())
    with pytest.raises(ProviderError):
        call(p, "cancel", request_id.request_id)  # ALREADY_COMPLETED: the runner logs it, best effort


def test_health(fal, refused_url):
    p = provider(fal)
    assert call(p, "health").state == "ok"
    fal.key = "another"
    rejected = call(p, "health")
    assert rejected.state == "rejected" and SENTINEL not in rejected.message
    down = FalProvider({"FAL_KEY": SENTINEL, "FAL_QUEUE_URL": refused_url})
    assert call(down, "health").state == "unreachable"
    assert call(FalProvider({}), "health").state == "not_configured"


def _req(**kw):
    from tests.providers.conftest import make_request

    return make_request("fal-ai/flux/dev", **kw)


def test_sync_mode_data_uri_output(fal, open_studio):
    studio = open_studio(fal)
    mid = model_id(studio, "fal", "fal-ai/flux/dev")
    studio.models.update(mid, {"input_defaults": {"sync_mode": True}})
    job = finish(studio, generate(studio, "fal", "fal-ai/flux/dev"))
    assert job.status == "completed", job.last_error
    assert not [r for r in fal.log if r.op == "file"]  # the image came inline, nothing to download
    assert studio.portraits.image(job.result_id).size == (48, 40)


def _large_png() -> bytes:
    """A reference well above the inline limit (noise does not compress)."""
    import io
    import os

    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("RGB", (400, 400), os.urandom(400 * 400 * 3)).save(out, "PNG")
    return out.getvalue()


def test_a_large_reference_goes_through_fals_storage_upload(fal, open_studio):
    big = _large_png()
    assert len(big) > FalProvider.max_inline_reference_bytes
    studio = open_studio(fal, FAL_REST_URL=fal.url)
    job = finish(studio, generate(studio, "fal", "fal-ai/flux/dev/image-to-image", reference=big))
    assert job.status == "completed", job.last_error
    initiate, = fal.requests("initiate")
    assert initiate.query == {"storage_type": ["fal-cdn-v3"]}
    assert initiate.json()["content_type"] == "image/png" and initiate.headers["authorization"] == f"Key {SENTINEL}"
    put, = fal.requests("put")
    assert put.body == big and put.headers["content-type"] == "image/png"
    sent = fal.requests("submit")[0].json()["image_url"]
    assert sent.startswith(f"{fal.url}/files/") and fal.uploads[sent.rsplit("/", 1)[-1]] == big
    assert studio.portraits.get(job.result_id).recipe.inputs["image_url"].startswith("sha256:")


def test_a_small_reference_stays_inline(fal, open_studio):
    studio = open_studio(fal, FAL_REST_URL=fal.url)
    assert finish(studio, generate(studio, "fal", "fal-ai/flux/dev/image-to-image", reference=REFERENCE)).status == "completed"
    assert fal.requests("submit")[0].json()["image_url"].startswith("data:image/png;base64,")
    assert not fal.requests("initiate")


@pytest.mark.parametrize("rating,tolerance", [("sfw", "2"), ("nsfw", "6")])
def test_kontext_takes_safety_tolerance_not_the_safety_checker(fal, open_studio, rating, tolerance):
    studio = open_studio(fal)
    character = studio.characters.create({"name": "Kay", "description": "A pilot.", "content_rating": rating})
    uploaded = studio.uploads.add(REFERENCE)
    job = studio.portraits.generate(character.id, {"model_id": model_id(studio, "fal", "fal-ai/flux-pro/kontext"),
                                                   "reference": "upload", "reference_key": uploaded})[0]
    assert finish(studio, job).status == "completed"
    sent = fal.requests("submit")[0].json()
    assert sent["safety_tolerance"] == tolerance and "enable_safety_checker" not in sent


def test_an_admins_stricter_tolerance_holds_for_sfw(fal):
    call(provider(fal), "submit", _req(input_defaults={"safety_tolerance": "1"}))
    assert fal.requests("submit")[0].json()["safety_tolerance"] == "1"


def test_completed_with_an_error_is_a_failure(fal, open_studio):
    fal.complete_with_error = "Runner disconnected while processing the request"
    studio = open_studio(fal)
    job = finish(studio, generate(studio, "fal", "fal-ai/flux/dev"))
    assert job.status == "failed" and "Runner disconnected" in job.last_error and "runner_disconnected" in job.last_error
    assert not fal.requests("result")  # nothing fetched for a failed request
