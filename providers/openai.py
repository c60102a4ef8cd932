"""OpenAI images (generations; edits for image-to-image) and chat completions; one-shot."""
from __future__ import annotations

import re
from typing import Any

import httpx

from core.errors import ProviderError
from core.hookspecs import hookimpl
from core.models import Capabilities, ModelSpec, ReferenceMapping
from core.provider import GenerationRequest, GenerationResult, Health, Provider, image_sources

plugin_api_version = "1.2"  # the plugin API the built-ins are written for, declared as a third party does

SIZES = {"1024x1024": 1.0, "1536x1024": 1.5, "1024x1536": 2 / 3}
PERMANENT_CODES = {"insufficient_quota", "moderation_blocked", "invalid_api_key", "content_policy_violation",
                   "billing_hard_limit_reached", "model_not_found"}
# The models whose edits take `input_fidelity` (openai-python `image_edit_params.py`: not gpt-image-1-mini;
# gpt-image-2 answers 400 `invalid_input_fidelity_model`); dated snapshots included.
INPUT_FIDELITY_MODELS = ("gpt-image-1", "gpt-image-1.5")
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


class OpenAIProvider(Provider):
    """OpenAI's image API; not resumable (no request id to come back to)."""

    id = "openai"
    display_name = "OpenAI"
    key_env = ("OPENAI_API_KEY",)
    base_url_env = "OPENAI_BASE_URL"
    setting_env = ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID")
    default_base_url = "https://api.openai.com/v1"
    timeout = 180.0

    def default_models(self) -> list[ModelSpec]:
        """The GPT image models the image API serves (openai-python's `ImageModel`); gpt-image-1 and
        DALL-E are shut down. `input_fidelity` only where the model takes it (see INPUT_FIDELITY_MODELS)."""
        def image(key: str, name: str, priority: int, defaults: dict[str, Any], notes: str = "") -> ModelSpec:
            return ModelSpec(model_key=key, display_name=name, priority=priority, notes=notes, input_defaults=defaults,
                             capabilities=Capabilities(
                                 supports_txt2img=True, supports_i2i=True, supports_seed=False, max_references=16,
                                 max_resolution="1536x1024", reference=ReferenceMapping(field="image", form="single", limit=1),
                                 aspect_ratios=["1:1", "3:2", "2:3"], formats=["png", "jpeg", "webp"]))

        return [
            image("gpt-image-2", "GPT Image 2 (OpenAI)", 45, {"quality": "medium"},
                  "Takes reference images at high fidelity always (no input_fidelity)."),
            image("gpt-image-1.5", "GPT Image 1.5 (OpenAI)", 40, {"quality": "medium", "input_fidelity": "high"}),
            image("gpt-image-1-mini", "GPT Image 1 mini (OpenAI)", 30, {"quality": "medium"}, "Cheaper and faster."),
        ]

    def auth_headers(self) -> dict[str, str]:
        headers = super().auth_headers()
        for name, header in (("OPENAI_ORG_ID", "OpenAI-Organization"), ("OPENAI_PROJECT_ID", "OpenAI-Project")):
            if value := self.secret(name):
                headers[header] = value
        return headers

    def classify(self, response: httpx.Response) -> ProviderError:
        """`insufficient_quota` and content-policy codes are permanent; `x-should-retry` is obeyed."""
        error = super().classify(response)
        try:
            detail = response.json().get("error") or {}
        except (ValueError, AttributeError):
            detail = {}
        code = (detail.get("code") or detail.get("type") or "") if isinstance(detail, dict) else ""
        if code:
            error.kind = {"insufficient_quota": "quota", "moderation_blocked": "content_policy",
                          "content_policy_violation": "content_policy",
                          "model_not_found": "model_retired"}.get(code, error.kind)
            error.message = f"{error.message} [{code}]"  # redacted when set, like every message
        should = response.headers.get("x-should-retry")
        if code in PERMANENT_CODES or should == "false":
            error.retryable = False
        elif should == "true":
            error.retryable = True
        return error

    # -- images ------------------------------------------------------------------------
    def build_input(self, request: GenerationRequest) -> dict[str, Any]:
        """The request body: `output_format` as the model's input defaults ask (png otherwise), one the
        model offers; `input_fidelity` only for an edit on a model that takes it."""
        formats = request.capabilities.formats or ["png"]
        output_format = request.input_defaults.get("output_format", "png" if "png" in formats else formats[0])
        if output_format not in formats:
            raise ProviderError(f"output_format {output_format!r} is not one {request.model_key} offers "
                                f"({', '.join(formats)}); change the model's input defaults", retryable=False,
                                kind="validation")
        inputs = {**request.input_defaults, "model": request.model_key, "prompt": request.prompt, "n": 1,
                  "size": _size(request.width, request.height), "output_format": output_format,
                  "moderation": "auto" if request.safety_checker else "low"}
        if not request.references or _SNAPSHOT.sub("", request.model_key) not in INPUT_FIDELITY_MODELS:
            inputs.pop("input_fidelity", None)
        return inputs

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        inputs = self.build_input(request)
        if request.references:
            inputs.pop("moderation", None)  # the edits endpoint does not take it
            limit = request.capabilities.max_references or 1
            refs = request.references[:limit]
            part = "image" if len(refs) == 1 else "image[]"
            files = [(part, (f"reference-{i}.{r.content_type.split('/')[-1]}", r.data, r.content_type))
                     for i, r in enumerate(refs)]
            form = {k: str(v) for k, v in inputs.items()}
            response = await self.request("POST", "images/edits", data=form, files=files)
            recorded = {**inputs, part: [f"sha256:{r.sha256}" for r in refs] if part == "image[]" else f"sha256:{refs[0].sha256}"}
        else:
            response = await self.request("POST", "images/generations", json=inputs)
            recorded = inputs
        body = response.json()
        sources = image_sources(body.get("data") or [])
        if not sources:
            raise ProviderError("OpenAI returned no image", retryable=False)
        image = await self.download(sources[0])
        data0 = (body.get("data") or [{}])[0]
        return GenerationResult(images=[image], inputs=recorded, seed=None,
                                metadata={"usage": body.get("usage"), "revised_prompt": data0.get("revised_prompt")})

    async def health(self) -> Health:
        return await self.probe("GET", "models")


def _size(width: int, height: int) -> str:
    target = width / height
    return min(SIZES, key=lambda s: abs(SIZES[s] - target))


@hookimpl
def register_providers(register):
    register(OpenAIProvider)
