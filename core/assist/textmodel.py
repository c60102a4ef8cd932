"""Text (chat) models as plugins: the `TextProvider` base class and the data passed in and out.

A text provider is a `Provider` (same declaration: id, keys, base URL, `setting_env`; same HTTP
plumbing, error classification and redaction) whose models have the `chat` modality. It is registered
through the `register_text_models` hook and implements `complete` (one answer) and, where the
service streams, `stream` (the answer in pieces). See docs/plugins.md, "Text models".
"""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from core import redaction
from core.errors import ProviderError
from core.provider import Provider, host_port

Role = Literal["system", "user", "assistant"]


@dataclass
class ChatMessage:
    role: Role
    content: str


@dataclass
class TextRequest:
    """One text generation, as the studio hands it to a text provider.

    `task` says what the studio asks for (`suggest:<field>`, `enhance:<target>`) and `subject` holds
    the character fields the messages were built from: a model that writes from templates rather
    than from the messages (the offline suggester) reads these; a chat service reads `messages`.
    """

    model_key: str
    messages: list[ChatMessage]
    max_tokens: int = 400
    temperature: float | None = 0.8
    content_rating: str = "sfw"
    input_defaults: dict[str, Any] = field(default_factory=dict)
    task: str = "chat"
    subject: dict[str, Any] = field(default_factory=dict)

    def system(self) -> str:
        return "\n\n".join(m.content for m in self.messages if m.role == "system")


@dataclass
class TextResult:
    """A whole answer: the text, and its cost (USD) where the service's answer states one."""

    text: str
    cost: float | None = None
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass
class TextDelta:
    """One piece of a streamed answer; the last piece may carry only the cost (USD)."""

    text: str = ""
    cost: float | None = None


class TextProvider(Provider):
    """Base class of every text (chat) provider; register subclasses with `register_text_models`."""

    text: ClassVar[bool] = True
    streams: ClassVar[bool] = False  # True when `stream` yields the answer as the service sends it
    offline: ClassVar[bool] = False  # True for a model that runs locally from templates (labelled offline)

    async def complete(self, request: TextRequest) -> TextResult:
        """One whole answer."""
        raise NotImplementedError

    async def stream(self, request: TextRequest) -> AsyncIterator[TextDelta]:
        """The answer in pieces; by default `complete`'s answer as one piece."""
        result = await self.complete(request)
        yield TextDelta(result.text, result.cost)

    async def stream_lines(self, method: str, url: str, **kwargs) -> AsyncIterator[str]:
        """Send a request and yield its body's lines as they arrive (for SSE); an error status goes
        through `classify` like any other request."""
        if not url.startswith(("http://", "https://")):
            url = f"{self.base_url}/{url.lstrip('/')}"
        headers = {**self.auth_headers_for(url), **kwargs.pop("headers", {})}
        try:
            first = self.client.build_request(method, url, headers=headers, **kwargs)
            response = await self._send(first, trusted=self.configured_hosts() | {host_port(first.url)}, stream=True)
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - transport errors are mapped as `request` maps them
            raise _transport_error(self, exc) from None
        try:
            if response.status_code >= 400:
                await response.aread()
                raise self.classify(response)
            try:
                async for line in response.aiter_lines():
                    yield line
            except Exception as exc:  # noqa: BLE001 - a stream cut off mid-answer
                raise _transport_error(self, exc) from None
        finally:
            await response.aclose()


def sse_events(line: str) -> Any | None:
    """The JSON of one SSE `data:` line; None for other lines and for the `[DONE]` marker."""
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if not payload or payload == "[DONE]":
        return None
    try:
        return json.loads(payload)
    except json.JSONDecodeError:
        raise ProviderError(f"a streamed chunk is not JSON: {redaction.clip(payload, 120)}", retryable=False) from None


def _transport_error(provider: Provider, exc: Exception) -> ProviderError:
    import httpx

    kind = "timeout" if isinstance(exc, httpx.TimeoutException) else (
        "unreachable" if isinstance(exc, httpx.ConnectError) else "connection")
    return ProviderError(provider.scrub(f"{provider.display_name} {'timed out' if kind == 'timeout' else 'connection failed'}: "
                                        f"{type(exc).__name__} {exc}"), retryable=True, kind=kind)
