"""Gemini specifics: the generateContent request (inline references, aspect ratio, safety settings
from the content rating), blocked prompts and image-less finishes as permanent failures, 429 with
RetryInfo, an invalid or suspended key (whose message quotes it), retired models, health."""
from __future__ import annotations

import base64

import pytest

from core.errors import ProviderError
from providers.gemini import GeminiProvider
from tests.conftest import png_bytes
from tests.fakes.gemini import GeminiFake, google_error, retry_info
from tests.providers.conftest import (BASE_ENV, REFERENCE, SENTINEL, call, finish, generate, make_request,
                                      model_id)


@pytest.fixture
def gem():
    server = GeminiFake(SENTINEL)
    yield server
    server.close()


def provider(gem: GeminiFake, **env) -> GeminiProvider:
    return GeminiProvider({**gem.env(), **BASE_ENV, **env})


def _thresholds(body: dict) -> dict[str, str]:
    return {s["category"]: s["threshold"] for s in body["safetySettings"]}


def test_generation_with_a_reference_through_the_studio(gem, open_studio):
    studio = open_studio(gem)
    job = finish(studio, generate(studio, "gemini", "gemini-3-pro-image", reference=REFERENCE, width=1344, height=896))
    assert job.status == "completed", job.last_error
    sent = gem.requests("submit")[0]
    assert sent.path == "/v1beta/models/gemini-3-pro-image:generateContent"
    assert sent.headers["x-goog-api-key"] == SENTINEL and "key" not in sent.query
    body = sent.json()
    text, inline = body["contents"][0]["parts"]
    assert text["text"] == job.request.final_prompt
    assert base64.b64decode(inline["inlineData"]["data"]) == REFERENCE and inline["inlineData"]["mimeType"] == "image/png"
    assert body["generationConfig"]["imageConfig"] == {"aspectRatio": "3:2"}
    assert "IMAGE" in body["generationConfig"]["responseModalities"]
    assert _thresholds(body)["HARM_CATEGORY_SEXUALLY_EXPLICIT"] == "BLOCK_LOW_AND_ABOVE"
    assert studio.portraits.image(job.result_id).size == (80, 80)  # the fake drew the reference back
    recipe = studio.portraits.get(job.result_id).recipe
    assert recipe.inputs["references"] == [f"sha256:{recipe.reference_hash}"]
    assert "base64" not in str(recipe.inputs) and recipe.provider_metadata["finish_reason"] == "STOP"


def test_nsfw_character_relaxes_the_safety_settings(gem, open_studio):
    studio = open_studio(gem)
    character = studio.characters.create({"name": "Noir", "description": "A detective.", "content_rating": "nsfw"})
    job = studio.portraits.generate(character.id, {"model_id": model_id(studio, "gemini", "gemini-2.5-flash-image")})[0]
    assert finish(studio, job).status == "completed"
    assert set(_thresholds(gem.requests("submit")[0].json()).values()) == {"BLOCK_ONLY_HIGH"}


@pytest.mark.parametrize("key,sent", [("gemini-2.5-flash-image", 3), ("gemini-3.1-flash-image", 5)])
def test_several_references_up_to_the_model_limit(gem, key, sent):
    spec = next(m for m in provider(gem).default_models() if m.model_key == key)
    refs = [png_bytes((20 + i, 20), (i * 40, 10, 10)) for i in range(5)]
    result = call(provider(gem), "generate", make_request(key, references=refs, capabilities=spec.capabilities))
    parts = gem.requests("submit")[0].json()["contents"][0]["parts"]
    assert [base64.b64decode(p["inlineData"]["data"]) for p in parts[1:]] == refs[:sent]
    assert len(result.inputs["references"]) == sent


def test_a_blocked_prompt_fails_at_once_naming_the_reason(gem, open_studio):
    gem.block_prompt = "PROHIBITED_CONTENT"
    studio = open_studio(gem)
    job = finish(studio, generate(studio, "gemini", "gemini-3-pro-image"))
    assert job.status == "failed" and job.attempts == 1
    assert "blocked the prompt (PROHIBITED_CONTENT)" in job.last_error
    assert gem.count("submit") == 1


@pytest.mark.parametrize("reason", ["IMAGE_SAFETY", "SAFETY", "NO_IMAGE"])
def test_a_finish_without_an_image_is_permanent(gem, reason):
    gem.finish_reason = reason
    with pytest.raises(ProviderError) as err:
        call(provider(gem), "generate", make_request("gemini-2.5-flash-image"))
    assert not err.value.retryable and f"finish reason {reason}" in err.value.message
    assert (err.value.kind == "content_policy") == ("SAFETY" in reason)


@pytest.mark.parametrize("delay,expected", [("37s", 37.0), ("1.5s", 1.5)])
def test_resource_exhausted_waits_for_the_retry_delay(gem, delay, expected):
    gem.fault("submit", **{k: v for k, v in vars(google_error(
        429, "You exceeded your current quota, please check your plan and billing details.",
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generate_content"}]},
        retry_info(delay))).items() if k in ("status", "body")})
    with pytest.raises(ProviderError) as err:
        call(provider(gem), "generate", make_request("gemini-2.5-flash-image"))
    assert err.value.retryable and err.value.retry_after == expected and err.value.kind == "rate_limited"
    assert "RESOURCE_EXHAUSTED" in err.value.message


def test_a_suspended_key_quoted_in_the_message_is_scrubbed(gem, open_studio):
    gem.suspended = True
    studio = open_studio(gem)
    job = finish(studio, generate(studio, "gemini", "gemini-2.5-flash-image"))
    assert job.status == "failed" and job.attempts == 1
    assert "has been suspended" in job.last_error and SENTINEL not in job.last_error and "***" in job.last_error
    health = studio.models.health("gemini")
    assert health.state == "rejected" and SENTINEL not in health.message


def test_invalid_key_is_auth_not_validation(gem):
    p = provider(gem)
    gem.key = "another"
    with pytest.raises(ProviderError) as err:
        call(p, "generate", make_request("gemini-2.5-flash-image"))
    assert err.value.kind == "auth" and not err.value.retryable and err.value.status == 400
    assert call(p, "health").state == "rejected"


def test_a_model_the_api_does_not_know_is_retired(gem, open_studio):
    studio = open_studio(gem)
    gone = studio.models.add("gemini", {"model_key": "gemini-2.0-flash-preview-image-generation", "priority": 999,
                                        "display_name": "Gemini 2.0 image preview",
                                        "capabilities": {"supports_txt2img": True}})
    job = finish(studio, generate(studio, "gemini", gone.model_key))
    assert job.status == "failed" and "is not found" in job.last_error
    assert studio.models.get(gone.id).retired
    assert studio.models.route().model_key == "gemini-3-pro-image"


def test_health_and_configuration(gem, refused_url):
    assert call(provider(gem), "health").state == "ok"
    assert gem.requests("models")[0].headers["x-goog-api-key"] == SENTINEL
    assert not GeminiProvider({}).is_configured()
    assert call(GeminiProvider({}), "health").state == "not_configured"
    assert GeminiProvider({"GEMINI_API_KEY": "k" * 8}).base_url == "https://generativelanguage.googleapis.com/v1beta"
    down = GeminiProvider({"GEMINI_API_KEY": SENTINEL, "GEMINI_BASE_URL": f"{refused_url}/v1beta"})
    assert call(down, "health").state == "unreachable"
