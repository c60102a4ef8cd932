"""Replicate through its predictions API: create (official model or version), get, cancel.

A model key `owner/name` uses the official-model route; `owner/name:version` or a bare 64-hex
version id creates by version (`POST /v1/predictions` with `version`).
A create is never resent once it may have reached Replicate (no idempotency key exists).
"""
from __future__ import annotations

import re
from typing import Any

import httpx

from core import redaction
from core.errors import ProviderError
from core.hookspecs import hookimpl
from core.models import Capabilities, ModelSpec, ReferenceMapping
from core.provider import (GenerationRequest, GenerationResult, Health, Progress, Provider, ReferenceImage,
                           Submission, image_sources)

plugin_api_version = "1.2"  # the plugin API the built-ins are written for, declared as a third party does

_STATES = {"starting": "queued", "processing": "running", "succeeded": "completed",
           "failed": "failed", "canceled": "canceled", "aborted": "failed"}
_RATIOS = {"1:1": 1.0, "16:9": 16 / 9, "9:16": 9 / 16, "4:3": 4 / 3, "3:4": 3 / 4, "3:2": 1.5, "2:3": 2 / 3,
           "21:9": 21 / 9, "9:21": 9 / 21, "4:5": 0.8, "5:4": 1.25}
_PERCENT = re.compile(r"(\d{1,3})%\|")
_VERSION_ID = re.compile(r"[0-9a-f]{64}")
_MODEL_ROUTE = re.compile(r"/v1/models/[^/]+/[^/]+/predictions$")


class ReplicateProvider(Provider):
    """Replicate predictions; resumable."""

    id = "replicate"
    display_name = "Replicate"
    key_env = ("REPLICATE_API_TOKEN",)
    base_url_env = "REPLICATE_BASE_URL"
    default_base_url = "https://api.replicate.com"
    resumable = True
    poll_interval = 1.0

    def __init__(self, secrets=None):
        super().__init__(secrets)
        self._last: dict[str, dict[str, Any]] = {}  # succeeded predictions, so `result` need not fetch again

    def default_models(self) -> list[ModelSpec]:
        fmt = ["png", "webp", "jpg"]
        return [
            ModelSpec(model_key="black-forest-labs/flux-schnell", display_name="FLUX.1 [schnell] (Replicate)",
                      priority=30, capabilities=Capabilities(formats=fmt, aspect_ratios=list(_RATIOS)),
                      input_defaults={"output_format": "png", "num_outputs": 1}),
            ModelSpec(model_key="black-forest-labs/flux-dev", display_name="FLUX.1 [dev] (Replicate)", priority=35,
                      capabilities=Capabilities(formats=fmt, aspect_ratios=list(_RATIOS)),
                      input_defaults={"output_format": "png", "num_outputs": 1}),
            ModelSpec(model_key="black-forest-labs/flux-kontext-pro", display_name="FLUX.1 Kontext [pro] (Replicate)",
                      priority=55, capabilities=Capabilities(
                          supports_txt2img=True, supports_i2i=True, max_references=1, formats=["png", "jpg"],
                          reference=ReferenceMapping(field="input_image", form="single", limit=1),
                          aspect_ratios=["match_input_image", *_RATIOS]),
                      input_defaults={"output_format": "png", "safety_tolerance": 2}),
        ]

    def classify(self, response: httpx.Response) -> ProviderError:
        """problem+json errors; a 422 names its invalid fields. A create that Replicate answers with 404
        (no such official model) or 422 "Invalid version or not permitted" names a model that is gone."""
        error = super().classify(response)
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        fields = body.get("invalid_fields") or []
        names = [f.get("field") or f.get("description") for f in fields if isinstance(f, dict)]
        if names:
            error.message = f"{error.message} (invalid: {', '.join(str(n) for n in names if n)})"  # redacted when set
        request = response.request
        create = request.method == "POST" and (request.url.path.endswith("/v1/predictions")
                                               or _MODEL_ROUTE.search(request.url.path) is not None)
        if create and (response.status_code == 404 or (
                response.status_code == 422 and str(body.get("title", "")).lower().startswith("invalid version"))):
            what = "version" if response.status_code == 422 else "official model"
            error.kind, error.retryable = "model_retired", False
            error.message = (f"{error.message}: Replicate has no such {what} (or this token may not use it); the "
                             "model is marked retired (pick another model, or correct its key on the Models page: "
                             "owner/name for an official model, owner/name:version otherwise)")
        return error

    # -- the work ----------------------------------------------------------------------
    def build_input(self, request: GenerationRequest) -> dict[str, Any]:
        inputs: dict[str, Any] = {**request.input_defaults, "prompt": request.prompt, "seed": request.seed}
        if request.references and "match_input_image" in request.capabilities.aspect_ratios:
            inputs.setdefault("aspect_ratio", "match_input_image")
        inputs.setdefault("aspect_ratio", _ratio(request.width, request.height))
        if "safety_tolerance" not in inputs:
            inputs["disable_safety_checker"] = not request.safety_checker
        return inputs

    async def submit(self, request: GenerationRequest) -> Submission:
        sent = await self.place_references(self.build_input(request), request)
        owner_name, _, version = request.model_key.partition(":")
        if not version and _VERSION_ID.fullmatch(owner_name):  # a bare version id is a version
            version = owner_name
        if version:
            path, body = "v1/predictions", {"version": version, "input": sent}
        else:
            path, body = f"v1/models/{owner_name}/predictions", {"input": sent}
        prediction = (await self.request("POST", path, json=body, retry_safe=False)).json()
        return Submission(request_id=prediction["id"], inputs=self.recorded_inputs(sent, request))

    async def poll(self, request_id: str, request: GenerationRequest) -> Progress:
        prediction = await self._get(request_id)
        state = _STATES.get(prediction.get("status", ""), "running")
        error = None
        if state == "failed":
            error = str(prediction.get("error") or f"Replicate prediction {prediction.get('status')}")
            if prediction.get("status") == "aborted" and not prediction.get("error"):
                error = "Replicate aborted the prediction (its deadline passed before it started)"
        logs = prediction.get("logs") or ""
        percents = _PERCENT.findall(logs)
        lines = [ln for ln in logs.splitlines() if ln.strip()]
        return Progress(state=state, percent=float(percents[-1]) if percents else None,
                        message=redaction.clip(lines[-1], 200) if lines else None, error=error)

    async def result(self, request_id: str, request: GenerationRequest) -> GenerationResult:
        prediction = self._last.pop(request_id, None) or await self._get(request_id)
        if prediction.get("data_removed"):
            raise ProviderError("Replicate already deleted this prediction's output (kept about an hour)", retryable=False)
        sources = image_sources(prediction.get("output"))
        if not sources:
            raise ProviderError("Replicate returned no image", retryable=False)
        image = await self.download(sources[0])
        predict_time = (prediction.get("metrics") or {}).get("predict_time")
        return GenerationResult(images=[image], seed=request.seed,
                                provider_ms=predict_time * 1000 if isinstance(predict_time, (int, float)) else None,
                                metadata={"prediction_id": request_id, "version": prediction.get("version")})

    async def cancel(self, request_id: str) -> None:
        await self.request("POST", f"v1/predictions/{request_id}/cancel")

    async def upload_reference(self, ref: ReferenceImage) -> str:
        """Large references go through Replicate's files API."""
        ext = ref.content_type.split("/")[-1]
        response = await self.request("POST", "v1/files", files={"content": (f"reference.{ext}", ref.data, ref.content_type)})
        return response.json()["urls"]["get"]

    async def health(self) -> Health:
        return await self.probe("GET", "v1/account")

    async def _get(self, request_id: str) -> dict[str, Any]:
        prediction = (await self.request("GET", f"v1/predictions/{request_id}")).json()
        if prediction.get("status") == "succeeded":
            self._last[request_id] = prediction
        return prediction


def _ratio(width: int, height: int) -> str:
    target = width / height
    return min(_RATIOS, key=lambda r: abs(_RATIOS[r] - target))


@hookimpl
def register_providers(register):
    register(ReplicateProvider)
