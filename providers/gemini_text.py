"""Gemini text models through the Gemini API (same key and base URL as the image models).

    POST {base}/models/{model}:generateContent                x-goog-api-key: <GEMINI_API_KEY>
    POST {base}/models/{model}:streamGenerateContent?alt=sse  (SSE: one GenerateContentResponse per `data:`)
         {"systemInstruction": {"parts": [{"text"}]}, "contents": [{"role": "user"|"model", "parts": [{"text"}]}],
          "generationConfig": {"maxOutputTokens", "temperature"}, "safetySettings": [...]}
      -> {"candidates": [{"content": {"parts": [{"text"}]}, "finishReason"}], "promptFeedback", "usageMetadata"}
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from core.assist.textmodel import TextDelta, TextProvider, TextRequest, TextResult, sse_events
from core.errors import ProviderError
from core.hookspecs import hookimpl
from core.models import Capabilities, ModelSpec
from providers.gemini import DEFAULT_THRESHOLD, HARM_CATEGORIES, SAFETY, GeminiProvider

plugin_api_version = "1.2"


class GeminiTextProvider(TextProvider, GeminiProvider):
    """Gemini's text generation; errors are classified as for the image models (GeminiProvider.classify)."""

    id = "gemini-text"
    display_name = "Google Gemini (text)"
    streams = True
    timeout = 60.0

    def default_models(self) -> list[ModelSpec]:
        return [ModelSpec(model_key="gemini-2.5-flash", display_name="Gemini 2.5 Flash (chat)", modality="chat",
                          priority=45, capabilities=Capabilities(supports_txt2img=False),
                          notes="Fast text model for suggestions and prompt enhancement.")]

    def body(self, request: TextRequest) -> dict[str, Any]:
        thresholds = SAFETY.get(request.content_rating, SAFETY["sfw"])
        body: dict[str, Any] = {
            "contents": [{"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
                         for m in request.messages if m.role != "system"],
            "generationConfig": {"maxOutputTokens": request.max_tokens, **request.input_defaults},
            "safetySettings": [{"category": c, "threshold": thresholds.get(c, DEFAULT_THRESHOLD)} for c in HARM_CATEGORIES],
        }
        if request.temperature is not None:
            body["generationConfig"].setdefault("temperature", request.temperature)
        if system := request.system():
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return body

    async def complete(self, request: TextRequest) -> TextResult:
        answer = (await self.request("POST", f"models/{request.model_key}:generateContent", json=self.body(request))).json()
        text = _text(answer)
        if not text:
            raise _empty(answer)
        return TextResult(text, usage=answer.get("usageMetadata") or {})

    async def stream(self, request: TextRequest) -> AsyncIterator[TextDelta]:
        got = False
        last: dict[str, Any] = {}
        async for line in self.stream_lines("POST", f"models/{request.model_key}:streamGenerateContent",
                                             params={"alt": "sse"}, json=self.body(request)):
            event = sse_events(line)
            if not isinstance(event, dict):
                continue
            last = event
            if text := _text(event):
                got = True
                yield TextDelta(text)
        if not got:
            raise _empty(last)


def _text(answer: dict[str, Any]) -> str:
    candidates = answer.get("candidates") or []
    candidate = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
    parts = (candidate.get("content") or {}).get("parts") or []
    return "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
                   and not p.get("thought"))


def _empty(answer: dict[str, Any]) -> ProviderError:
    feedback = answer.get("promptFeedback") or {}
    if feedback.get("blockReason"):
        return ProviderError(f"Gemini blocked the request ({feedback['blockReason']})", retryable=False,
                             kind="content_policy")
    candidates = answer.get("candidates") or [{}]
    reason = (candidates[0] or {}).get("finishReason") or "no candidate"
    return ProviderError(f"Gemini returned no text (finish reason {reason})", retryable=False,
                         kind="content_policy" if "SAFETY" in str(reason) else None)


@hookimpl
def register_text_models(register):
    register(GeminiTextProvider)
