"""Any OpenAI-compatible chat endpoint as a text model: OpenAI, and through the base URL OpenRouter,
Ollama, vLLM or LM Studio. Configured by its own variables, so text and images may use different services.

    POST {base}/chat/completions   Authorization: Bearer <STUDIO_TEXT_API_KEY>
         {"model", "messages": [{"role", "content"}], "max_tokens", "temperature", "stream"?}
      -> {"choices": [{"message": {"content"}}], "usage": {..., "cost"?}}
      streamed: `data: {"choices": [{"delta": {"content"}}]}` lines, a usage chunk, then `data: [DONE]`

A 429 is a rate-limit error carrying its Retry-After; `usage.cost` (OpenRouter) is recorded as the call's cost.
"""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from core import redaction
from core.assist.textmodel import TextDelta, TextProvider, TextRequest, TextResult, sse_events
from core.errors import ProviderError
from core.hookspecs import hookimpl
from core.models import Capabilities, ModelSpec
from core.provider import Health

plugin_api_version = "1.2"

DEFAULT_MODEL = "gpt-4.1-mini"


class OpenAITextProvider(TextProvider):
    """Chat completions on an OpenAI-compatible server; a local server (Ollama) needs no key."""

    id = "openai-text"
    display_name = "OpenAI-compatible chat"
    key_env = ("STUDIO_TEXT_API_KEY",)
    base_url_env = "STUDIO_TEXT_BASE_URL"
    setting_env = ("STUDIO_TEXT_MODEL",)
    default_base_url = "https://api.openai.com/v1"
    streams = True
    timeout = 60.0

    def is_configured(self) -> bool:
        return self.api_key() is not None or self.secret("STUDIO_TEXT_BASE_URL") is not None

    def default_models(self) -> list[ModelSpec]:
        key = self.secret("STUDIO_TEXT_MODEL") or DEFAULT_MODEL
        return [ModelSpec(model_key=key, display_name=f"{key} (chat)", modality="chat", priority=50,
                          capabilities=Capabilities(supports_txt2img=False),
                          notes="Set STUDIO_TEXT_MODEL to the model your STUDIO_TEXT_BASE_URL serves.")]

    def body(self, request: TextRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {**request.input_defaults, "model": request.model_key,
                                "messages": [{"role": m.role, "content": m.content} for m in request.messages]}
        if "max_completion_tokens" not in body:
            body.setdefault("max_tokens", request.max_tokens)
        if request.temperature is not None:
            body.setdefault("temperature", request.temperature)
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return body

    async def complete(self, request: TextRequest) -> TextResult:
        answer = (await self.request("POST", "chat/completions", json=self.body(request, stream=False))).json()
        try:
            text = answer["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise ProviderError(f"{self.display_name} answered without a message: "
                                f"{redaction.clip(json.dumps(answer), 200)}", retryable=False) from None
        usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
        return TextResult(text, cost=_cost(usage), usage=usage)

    async def stream(self, request: TextRequest) -> AsyncIterator[TextDelta]:
        async for line in self.stream_lines("POST", "chat/completions", json=self.body(request, stream=True)):
            event = sse_events(line)
            if not isinstance(event, dict):
                continue
            if isinstance(event.get("error"), dict):  # an error after the stream began
                raise ProviderError(f"{self.display_name}: {event['error'].get('message') or 'error'}", retryable=False)
            for choice in event.get("choices") or []:
                text = ((choice or {}).get("delta") or {}).get("content")
                if text:
                    yield TextDelta(text)
            if isinstance(event.get("usage"), dict) and (cost := _cost(event["usage"])) is not None:
                yield TextDelta(cost=cost)

    async def health(self) -> Health:
        if not self.is_configured():
            return Health("not_configured", "Set STUDIO_TEXT_BASE_URL (and STUDIO_TEXT_API_KEY where the server "
                                            "needs one) to use an OpenAI-compatible chat model.")
        return await self.probe("GET", "models")


def _cost(usage: dict[str, Any]) -> float | None:
    cost = usage.get("cost")
    return float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0 else None


@hookimpl
def register_text_models(register):
    register(OpenAITextProvider)
