"""Google Gemini image models ("Nano Banana") through the Gemini API's `generateContent`; one-shot.

    POST {base}/models/{model}:generateContent   x-goog-api-key: <GEMINI_API_KEY>
         {"contents": [{"role": "user", "parts": [{"text"}, {"inlineData": {"mimeType", "data"}}...]}],
          "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio"}},
          "safetySettings": [{"category", "threshold"}...]}
      -> {"candidates": [{"content": {"parts": [...{"inlineData"}]}, "finishReason"}], "promptFeedback",
          "usageMetadata"}

References go inline, several where the model takes them. A blocked prompt (`promptFeedback.blockReason`)
or a candidate that ended without an image (`finishReason` SAFETY, IMAGE_SAFETY, ...) is a permanent,
named failure; 429 RESOURCE_EXHAUSTED waits as long as its `RetryInfo.retryDelay` says.
"""
from __future__ import annotations

import base64
import re
from typing import Any

import httpx

from core import redaction
from core.errors import ProviderError
from core.hookspecs import hookimpl
from core.models import Capabilities, ModelSpec, ReferenceMapping
from core.provider import GenerationRequest, GenerationResult, Health, Provider

plugin_api_version = "1.2"  # the plugin API the built-ins are written for, declared as a third party does

ASPECT_RATIOS = {"1:1": 1.0, "2:3": 2 / 3, "3:2": 1.5, "3:4": 0.75, "4:3": 4 / 3, "4:5": 0.8, "5:4": 1.25,
                 "9:16": 9 / 16, "16:9": 16 / 9, "21:9": 21 / 9}
HARM_CATEGORIES = ("HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_SEXUALLY_EXPLICIT",
                   "HARM_CATEGORY_DANGEROUS_CONTENT")
# The content rating's thresholds: SFW characters block sexual content at low probability already.
SAFETY = {"sfw": {"HARM_CATEGORY_SEXUALLY_EXPLICIT": "BLOCK_LOW_AND_ABOVE"},
          "nsfw": {c: "BLOCK_ONLY_HIGH" for c in HARM_CATEGORIES}}
DEFAULT_THRESHOLD = "BLOCK_MEDIUM_AND_ABOVE"
_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def _model(key: str, name: str, priority: int, references: int, notes: str) -> ModelSpec:
    return ModelSpec(model_key=key, display_name=name, priority=priority, notes=notes, capabilities=Capabilities(
        supports_txt2img=True, supports_i2i=True, supports_seed=False, max_references=references,
        reference=ReferenceMapping(field="references", form="list", limit=references),
        aspect_ratios=list(ASPECT_RATIOS), formats=["png"]))


class GeminiProvider(Provider):
    """The Gemini API (Google AI Studio keys); not resumable: generateContent answers with the image."""

    id = "gemini"
    display_name = "Google Gemini"
    key_env = ("GEMINI_API_KEY",)
    base_url_env = "GEMINI_BASE_URL"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    timeout = 180.0

    def default_models(self) -> list[ModelSpec]:
        return [
            _model("gemini-3-pro-image", "Gemini 3 Pro Image (Google)", 65, 14,
                   "Best at keeping a character's identity across edits; up to 14 references."),
            _model("gemini-3.1-flash-image", "Gemini 3.1 Flash Image (Google)", 58, 14, "Fast; up to 14 references."),
            _model("gemini-2.5-flash-image", "Gemini 2.5 Flash Image (Google)", 50, 3, "Works best with up to 3 references."),
        ]

    def auth_headers(self) -> dict[str, str]:
        key = self.api_key()
        return {"x-goog-api-key": key} if key else {}

    def classify(self, response: httpx.Response) -> ProviderError:
        """Google's `{"error": {code, message, status, details}}`: an invalid key is `auth` (it answers
        400), 429 waits for `RetryInfo.retryDelay`, a model the API does not know is gone."""
        error = super().classify(response)
        try:
            body = response.json().get("error") or {}
        except (ValueError, AttributeError):
            body = {}
        if not isinstance(body, dict):
            return error
        status = str(body.get("status") or "")
        details = [d for d in body.get("details") or [] if isinstance(d, dict)]
        reasons = {str(d.get("reason")) for d in details if d.get("reason")}
        if status:
            error.message = f"{error.message} [{status}]"  # redacted when set, like every message
        if reasons & {"API_KEY_INVALID", "API_KEY_EXPIRED"} or status in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            error.kind, error.retryable = "auth", False
        elif status == "RESOURCE_EXHAUSTED":
            error.kind, error.retryable = "rate_limited", True
            for d in details:
                if (m := _DELAY.match(str(d.get("retryDelay") or ""))) is not None:
                    error.retry_after = float(m.group(1))
        elif response.status_code == 404 and ":generateContent" in response.request.url.path:
            error.kind = "model_retired"
        return error

    # -- the work ----------------------------------------------------------------------
    def build_body(self, request: GenerationRequest) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"text": request.prompt}]
        limit = request.capabilities.max_references or 1
        for ref in request.references[:limit]:
            parts.append({"inlineData": {"mimeType": ref.content_type, "data": base64.b64encode(ref.data).decode()}})
        defaults = dict(request.input_defaults)
        image_config = {"aspectRatio": _ratio(request.width, request.height, request.capabilities.aspect_ratios),
                        **defaults.pop("imageConfig", {})}
        thresholds = SAFETY.get(request.content_rating, SAFETY["sfw"])
        return {
            "contents": [{"role": "user", "parts": parts}],
            "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], **defaults, "imageConfig": image_config},
            "safetySettings": [{"category": c, "threshold": thresholds.get(c, DEFAULT_THRESHOLD)} for c in HARM_CATEGORIES],
        }

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        body = self.build_body(request)
        answer = (await self.request("POST", f"models/{request.model_key}:generateContent", json=body)).json()
        feedback = answer.get("promptFeedback") or {}
        if feedback.get("blockReason"):
            raise ProviderError(f"Gemini blocked the prompt ({feedback['blockReason']})"
                                + (f": {feedback['blockReasonMessage']}" if feedback.get("blockReasonMessage") else ""),
                                retryable=False, kind="content_policy")
        candidates = answer.get("candidates") or []
        candidate = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
        parts = (candidate.get("content") or {}).get("parts") or []
        images = [p["inlineData"] for p in parts if isinstance(p, dict) and isinstance(p.get("inlineData"), dict)
                  and str(p["inlineData"].get("mimeType", "")).startswith("image/")]
        text = " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)).strip()
        reason = candidate.get("finishReason") or "no candidate"
        if not images:
            detail = candidate.get("finishMessage") or text
            raise ProviderError(f"Gemini returned no image (finish reason {reason})"
                                + (f": {redaction.clip(detail, 300)}" if detail else ""), retryable=False,
                                kind="content_policy" if "SAFETY" in reason or "PROHIBITED" in reason else None)
        image = await self.download(images[0].get("data") or "")
        recorded = {"prompt": request.prompt, "generationConfig": body["generationConfig"],
                    "safetySettings": body["safetySettings"],
                    "references": [f"sha256:{r.sha256}" for r in request.references[:len(body["contents"][0]["parts"]) - 1]]}
        return GenerationResult(images=[image], inputs=recorded, seed=None, metadata={
            "text": text or None, "finish_reason": reason, "usage": answer.get("usageMetadata"),
            "model_version": answer.get("modelVersion")})

    async def health(self) -> Health:
        return await self.probe("GET", "models", params={"pageSize": "1"})


def _ratio(width: int, height: int, allowed: list[str]) -> str:
    ratios = {r: ASPECT_RATIOS[r] for r in allowed if r in ASPECT_RATIOS} or ASPECT_RATIOS
    return min(ratios, key=lambda r: abs(ratios[r] - width / height))


@hookimpl
def register_providers(register):
    register(GeminiProvider)
