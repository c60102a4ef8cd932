"""Fakes of the chat APIs the text models speak, on the shared loopback server (tests/fakes/base.py).

OpenAI-compatible: OpenAI's API reference for chat completions (POST /v1/chat/completions with `model`,
`messages`, `max_tokens`/`max_completion_tokens`, `stream`, `stream_options.include_usage`; the answer's
`choices[].message.content` and `usage`; streamed as server-sent events, `data: {"choices": [{"delta":
{"content"}}]}` per piece, a last chunk with empty `choices` and the `usage` when asked, then `data:
[DONE]`; errors as `{"error": {"message", "type", "code"}}`, 429 with Retry-After; GET /v1/models).
OpenRouter adds `usage.cost` (credits, USD). Ollama, vLLM and LM Studio serve the same routes.

Gemini text: https://ai.google.dev/api/generate-content (`models/{model}:generateContent` and
`:streamGenerateContent?alt=sse`, one GenerateContentResponse per `data:` event; `systemInstruction`,
`contents[].parts[].text`, `generationConfig.maxOutputTokens`), errors as tests/fakes/gemini.py.
"""
from __future__ import annotations

import json
import re

from providers.gemini_text import GeminiTextProvider
from providers.openai_text import OpenAITextProvider
from tests.fakes.base import FakeServer, Reply, Req
from tests.fakes.gemini import GeminiFake, google_error

DEFAULT_ANSWER = "A cheerful barista who remembers every regular's order."


def sse(events: list[object], done: bool = True) -> bytes:
    lines = [f"data: {json.dumps(e)}\n\n" for e in events] + (["data: [DONE]\n\n"] if done else [])
    return "".join(lines).encode()


def pieces(text: str, n: int = 3) -> list[str]:
    words = text.split(" ")
    size = max(1, len(words) // n)
    out = [" ".join(words[i:i + size]) for i in range(0, len(words), size)]
    return [p + (" " if i < len(out) - 1 else "") for i, p in enumerate(out)]


class OpenAIChatFake(FakeServer):
    provider_class = OpenAITextProvider
    model_key = "test-chat-model"

    def __init__(self, key: str = "sk-text-test-key-123"):
        super().__init__(key)
        self.answer = DEFAULT_ANSWER
        self.cost: float | None = None  # usage.cost, as OpenRouter reports it

    def env(self) -> dict[str, str]:
        return {"STUDIO_TEXT_API_KEY": self.key, "STUDIO_TEXT_BASE_URL": f"{self.url}/v1",
                "STUDIO_TEXT_MODEL": self.model_key}

    def error_reply(self, status: int) -> dict:
        def body(req: Req) -> dict:  # echoes the key, as a careless gateway does
            return {"error": {"message": f"injected error {status} for {req.headers.get('authorization', '')}",
                              "type": "rate_limit_exceeded" if status == 429 else "invalid_request_error"}}
        return {"status": status, "body": body, "headers": {"Retry-After": "7"} if status == 429 else {}}

    def route(self, req: Req) -> str:
        if req.path == "/v1/chat/completions" and req.method == "POST":
            return "submit"
        return "models" if req.path == "/v1/models" else ""

    def chats(self) -> list[dict]:
        return [r.json() for r in self.requests("submit")]

    def dispatch(self, req: Req) -> Reply:
        if not req.op:
            return Reply(404, {"error": {"message": "not found"}})
        if not self.authorized(req):
            return Reply(401, {"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}})
        if req.op == "models":
            return Reply(200, {"object": "list", "data": [{"id": self.model_key, "object": "model"}]})
        body = req.json() or {}
        if not body.get("model") or not isinstance(body.get("messages"), list) or not body["messages"]:
            return Reply(400, {"error": {"message": "model and messages are required"}})
        usage = {"prompt_tokens": 20, "completion_tokens": 12, "total_tokens": 32}
        if self.cost is not None:
            usage["cost"] = self.cost
        if body.get("stream"):
            events: list[object] = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
            events += [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces(self.answer)]
            events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                events.append({"choices": [], "usage": usage})
            return Reply(200, raw=sse(events), content_type="text/event-stream")
        return Reply(200, {"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"], "usage": usage,
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": self.answer}}]})


class GeminiTextFake(GeminiFake):
    provider_class = GeminiTextProvider
    model_key = "gemini-2.5-flash"

    def __init__(self, key: str = "gemini-text-test-key"):
        super().__init__(key)
        self.answer = DEFAULT_ANSWER

    def error_reply(self, status: int) -> dict:
        out = super().error_reply(status)
        out["body"] = lambda req, body=out["body"]: {
            "error": {**body["error"], "message": f"{body['error']['message']} (key {req.headers.get('x-goog-api-key')})"}}
        return out

    def route(self, req: Req) -> str:
        if re.match(r"^/v1beta/models/[^/:]+:(generateContent|streamGenerateContent)$", req.path):
            return "submit"
        return "models" if req.path == "/v1beta/models" else ""

    def chats(self) -> list[dict]:
        return [r.json() for r in self.requests("submit")]

    def dispatch(self, req: Req) -> Reply:
        if not req.op:
            return google_error(404, "Method not found.")
        if not self.authorized(req):
            return google_error(400, "API key not valid. Please pass a valid API key.",
                                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"})
        if req.op == "models":
            return Reply(200, {"models": [{"name": f"models/{self.model_key}"}]})
        body = req.json() or {}
        if not any(p.get("text") for c in body.get("contents") or [] for p in c.get("parts") or []):
            return google_error(400, "* GenerateContentRequest.contents: contents is not specified")
        usage = {"promptTokenCount": 20, "candidatesTokenCount": 12, "totalTokenCount": 32}
        if req.path.endswith(":streamGenerateContent"):
            if req.query.get("alt") != ["sse"]:
                return Reply(200, [{"candidates": [{"content": {"parts": [{"text": self.answer}]}}]}])
            events = [{"candidates": [{"content": {"role": "model", "parts": [{"text": p}]}, "index": 0}]}
                      for p in pieces(self.answer)]
            events[-1]["candidates"][0]["finishReason"] = "STOP"
            events[-1]["usageMetadata"] = usage
            return Reply(200, raw=sse(events, done=False), content_type="text/event-stream")
        return Reply(200, {"candidates": [{"content": {"role": "model", "parts": [{"text": self.answer}]},
                                           "finishReason": "STOP", "index": 0}], "usageMetadata": usage})
