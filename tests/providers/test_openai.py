"""OpenAI specifics: insufficient_quota vs rate_limit_exceeded, content policy, edits with
several references, size mapping, moderation level, health."""
from __future__ import annotations


import pytest

from core.errors import ModelNotAvailable, ProviderError
from core.models import Capabilities, ReferenceMapping
from providers.openai import OpenAIProvider
from tests.conftest import png_bytes
from tests.fakes.openai import OpenAIFake
from tests.providers.conftest import BASE_ENV, REFERENCE, SENTINEL, call, finish, generate, make_request, model_id


@pytest.fixture
def oai():
    server = OpenAIFake(SENTINEL)
    yield server
    server.close()


def provider(oai: OpenAIFake, **env) -> OpenAIProvider:
    return OpenAIProvider({**oai.env(), **BASE_ENV, **env})


def test_insufficient_quota_is_not_retried(oai, open_studio):
    oai.fault("submit", 429, {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                                        "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}})
    studio = open_studio(oai)
    job = finish(studio, generate(studio, "openai", "gpt-image-2"))
    assert job.status == "failed" and job.attempts == 1
    assert "exceeded your current quota" in job.last_error and "insufficient_quota" in job.last_error
    assert oai.count("submit") == 1


def test_moderation_blocked_is_permanent(oai):
    oai.fail_with = "Your request was rejected as a result of our safety system."
    with pytest.raises(ProviderError) as err:
        call(provider(oai), "generate", make_request("gpt-image-2"))
    assert not err.value.retryable and err.value.kind == "content_policy"
    assert "safety system" in err.value.message


def test_should_retry_header_wins(oai):
    oai.fault("submit", 409, {"error": {"message": "busy", "type": "conflict", "param": None, "code": None}},
              {"x-should-retry": "false"})
    with pytest.raises(ProviderError) as err:
        call(provider(oai), "generate", make_request("gpt-image-2"))
    assert not err.value.retryable


def test_generation_request_shape(oai, open_studio):
    studio = open_studio(oai)
    character = studio.characters.create({"name": "Noir", "description": "A detective.", "content_rating": "nsfw"})
    job = studio.portraits.generate(character.id, {"model_id": model_id(studio, "openai", "gpt-image-2"),
                                                   "width": 1344, "height": 896})[0]
    assert finish(studio, job).status == "completed"
    sent = oai.requests("submit")[0]
    assert sent.path == "/v1/images/generations"
    body = sent.json()
    assert (body["model"], body["size"], body["n"], body["moderation"]) == ("gpt-image-2", "1536x1024", 1, "low")
    assert "input_fidelity" not in body
    assert sent.headers["authorization"] == f"Bearer {SENTINEL}"


def test_several_references_use_repeated_image_parts(oai):
    caps = Capabilities(supports_i2i=True, max_references=2, reference=ReferenceMapping(field="image", limit=2))
    refs = [png_bytes((30, 30), (1, 2, 3)), png_bytes((31, 31), (4, 5, 6))]
    result = call(provider(oai), "generate", make_request("gpt-image-1.5", references=refs, capabilities=caps,
                                                          input_defaults={"input_fidelity": "high"}))
    parsed = oai.requests("submit")[0].parsed
    assert [name for name, _, _ in parsed["_images"]] == ["image[]", "image[]"]
    assert [data for _, _, data in parsed["_images"]] == refs
    assert parsed["input_fidelity"] == "high" and parsed["model"] == "gpt-image-1.5"
    assert result.inputs["image[]"][0].startswith("sha256:")
    assert result.metadata["usage"]["total_tokens"] == 292


def test_organization_and_project_headers(oai):
    call(provider(oai, OPENAI_ORG_ID="org-1", OPENAI_PROJECT_ID="proj-1"), "generate", make_request("gpt-image-2"))
    headers = oai.requests("submit")[0].headers
    assert headers["openai-organization"] == "org-1" and headers["openai-project"] == "proj-1"


def test_health(oai):
    p = provider(oai)
    assert call(p, "health").state == "ok"
    oai.key = "other"
    rejected = call(p, "health")
    assert rejected.state == "rejected" and SENTINEL not in rejected.message


def test_defaults_are_the_current_gpt_image_models(oai, open_studio):
    studio = open_studio(oai)
    keys = {m.model_key for m in studio.models.list() if m.provider_id == "openai"}
    assert keys == {"gpt-image-2", "gpt-image-1.5", "gpt-image-1-mini"}
    job = finish(studio, generate(studio, "openai", "gpt-image-1-mini", reference=REFERENCE))
    assert job.status == "completed", job.last_error
    assert "input_fidelity" not in oai.requests("submit")[0].parsed


@pytest.mark.parametrize("key,sent", [("gpt-image-2", None), ("gpt-image-1-mini", None), ("gpt-image-1.5", "high"),
                                      ("gpt-image-1.5-2025-12-16", "high")])
def test_input_fidelity_only_for_models_that_take_it(oai, key, sent):
    """Even when a model's defaults ask for it (an admin's edit), a model that refuses it is not sent it."""
    caps = Capabilities(supports_i2i=True, max_references=1, reference=ReferenceMapping(field="image"))
    result = call(provider(oai), "generate", make_request(key, references=[REFERENCE], capabilities=caps,
                                                         input_defaults={"input_fidelity": "high"}))
    assert oai.requests("submit")[0].parsed.get("input_fidelity") == sent
    assert result.inputs.get("input_fidelity") == sent


def test_output_format_follows_the_model_defaults(oai, open_studio):
    studio = open_studio(oai)
    mid = model_id(studio, "openai", "gpt-image-2")
    studio.models.update(mid, {"input_defaults": {"quality": "low", "output_format": "jpeg"}})
    job = finish(studio, generate(studio, "openai", "gpt-image-2"))
    assert job.status == "completed", job.last_error
    assert oai.requests("submit")[0].json()["output_format"] == "jpeg"
    assert studio.portraits.get(job.result_id).recipe.inputs["output_format"] == "jpeg"
    studio.models.update(mid, {"input_defaults": {"output_format": "gif"}})
    refused = finish(studio, generate(studio, "openai", "gpt-image-2"))
    assert refused.status == "failed" and "output_format 'gif'" in refused.last_error and refused.attempts == 1
    assert oai.count("submit") == 1  # refused before anything was sent


def test_a_model_the_provider_retired_is_marked_and_no_longer_routed(oai, open_studio):
    studio = open_studio(oai)
    old = studio.models.add("openai", {"model_key": "gpt-image-1", "display_name": "GPT Image 1 (from an old install)",
                                       "priority": 1000, "capabilities": {"supports_txt2img": True}})
    assert studio.models.route().id == old.id
    studio.models.update_provider("openai", {"concurrency_limit": 1})  # the second job waits for the first
    character = studio.characters.create({"name": "Ada", "description": "An engineer."})
    first, second = studio.portraits.generate(character.id, {"model_id": old.id, "n": 2})
    jobs = studio.jobs.wait([first.id, second.id], timeout=20)
    assert [j.status for j in jobs] == ["failed", "failed"]
    assert oai.count("submit") == 1  # the second job was not sent once the model was known to be gone
    assert "model_not_found" in jobs[0].last_error and jobs[0].attempts == 1
    assert "retired" in jobs[1].last_error
    retired = studio.models.get(old.id)
    assert retired.retired and "does not exist" in retired.retired_reason
    assert studio.models.route().model_key == "gpt-image-2"  # routing moved on
    with pytest.raises(ModelNotAvailable, match="retired"):
        studio.portraits.generate(character.id, {"model_id": old.id})
    assert not studio.models.update(old.id, {"retired": False}).retired  # an admin brings it back


def test_the_catalog_price_is_recorded_as_the_cost_where_the_provider_reports_none(oai, open_studio):
    studio = open_studio(oai)
    mid = model_id(studio, "openai", "gpt-image-2")
    unpriced = finish(studio, generate(studio, "openai", "gpt-image-2"))
    assert unpriced.status == "completed" and unpriced.cost is None
    caps = studio.models.get(mid).capabilities.model_copy(update={"price_per_image": 0.053})
    studio.models.update(mid, {"capabilities": caps.model_dump()})
    job = finish(studio, generate(studio, "openai", "gpt-image-2"))
    assert job.status == "completed" and job.cost == 0.053
    assert studio.portraits.get(job.result_id).recipe.cost == 0.053
    assert studio.jobs.get(job.id).cost == 0.053
