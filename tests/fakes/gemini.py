"""A Gemini API fake: `models/{model}:generateContent` with image output, `models` (list), Google's errors.

Follows Google's published Gemini API reference (https://ai.google.dev/api/generate-content:
POST /v1beta/models/{model}:generateContent; `contents[].parts[]` with `text` and
`inlineData {mimeType, data}`; `generationConfig.responseModalities` and `imageConfig.aspectRatio`;
`safetySettings[] {category, threshold}`; the answer's `candidates[].content.parts[]`,
`candidates[].finishReason` (STOP, SAFETY, IMAGE_SAFETY, PROHIBITED_CONTENT, ...),
`promptFeedback.blockReason` and `usageMetadata`; https://ai.google.dev/api/models for GET
/v1beta/models), its image-generation guide (https://ai.google.dev/gemini-api/docs/image-generation:
the aspect ratios; several reference images per request), its troubleshooting page
(https://ai.google.dev/gemini-api/docs/troubleshooting: 400 INVALID_ARGUMENT, 403
PERMISSION_DENIED, 404 NOT_FOUND, 429 RESOURCE_EXHAUSTED, 500 INTERNAL, 503 UNAVAILABLE), and the
client, github.com/googleapis/python-genai (`google/genai/_api_client.py`: the key in the
`x-goog-api-key` header; `google/genai/errors.py`: errors as `{"error": {code, message, status,
details}}`). Google's standard error details (google.rpc `ErrorInfo` with reason API_KEY_INVALID,
`RetryInfo` with `retryDelay` such as "37s") are those of https://cloud.google.com/apis/design/errors.

Quirks kept: an invalid key answers 400 (not 401); a suspended key's 403 message quotes the key.
"""
from __future__ import annotations

import base64
import re

from providers.gemini import GeminiProvider
from tests.fakes.base import FakeServer, Reply, Req, b64, png

MODELS = {"gemini-2.5-flash-image", "gemini-3.1-flash-image", "gemini-3-pro-image"}
RATIOS = {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"}
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          422: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def google_error(code: int, message: str, *details: dict) -> Reply:
    return Reply(code, {"error": {"code": code, "message": message, "status": STATUS.get(code, "UNKNOWN"),
                                  "details": list(details)}})


def retry_info(delay: str) -> dict:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


class GeminiFake(FakeServer):
    takes_seed = False  # the provider sends no seed (generateContent images take none)
    provider_class = GeminiProvider
    suspended = False  # the key is known but suspended
    block_prompt: str | None = None  # answer promptFeedback.blockReason
    finish_reason: str | None = None  # answer a candidate without image, with this finishReason

    def env(self) -> dict[str, str]:
        return {"GEMINI_API_KEY": self.key, "GEMINI_BASE_URL": f"{self.url}/v1beta"}

    def error_reply(self, status: int) -> dict:
        reply = google_error(status, f"injected error {status}", *([retry_info("0s")] if status == 429 else []))
        return {"status": status, "body": reply.body}

    def authorized(self, req: Req) -> bool:
        return req.headers.get("x-goog-api-key") == self.key or req.query.get("key") == [self.key]

    def route(self, req: Req) -> str:
        if re.match(r"^/v1beta/models/[^/:]+:generateContent$", req.path):
            return "submit"
        return "models" if req.path == "/v1beta/models" else ""

    def dispatch(self, req: Req) -> Reply:
        if not req.op:
            return google_error(404, "Method not found.")
        if self.suspended:
            got = req.headers.get("x-goog-api-key", "")
            return google_error(403, f"Permission denied: Consumer 'api_key:{got}' has been suspended.",
                                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "CONSUMER_SUSPENDED"})
        if not self.authorized(req):
            return google_error(400, "API key not valid. Please pass a valid API key.",
                                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                                 "domain": "googleapis.com"})
        if req.op == "models":
            return Reply(200, {"models": [{"name": f"models/{m}", "supportedGenerationMethods": ["generateContent"]}
                                          for m in sorted(MODELS)]})
        model = req.path.split("/")[-1].split(":")[0]
        if model not in MODELS:
            return google_error(404, f"models/{model} is not found for API version v1beta, or is not supported for "
                                     "generateContent. Call ListModels to see the list of available models.")
        body = req.json() or {}
        parts = ((body.get("contents") or [{}])[0] or {}).get("parts") or []
        if not any(isinstance(p.get("text"), str) and p["text"] for p in parts):
            return google_error(400, "* GenerateContentRequest.contents: contents is not specified")
        config = body.get("generationConfig") or {}
        ratio = (config.get("imageConfig") or {}).get("aspectRatio", "1:1")
        if ratio not in RATIOS:
            return google_error(400, f"Unsupported aspect ratio: {ratio}")
        if "IMAGE" not in (config.get("responseModalities") or []):
            return Reply(200, {"candidates": [{"content": {"role": "model", "parts": [{"text": "A portrait."}]},
                                               "finishReason": "STOP"}]})
        for p in parts:
            if "inlineData" in p:
                base64.b64decode(p["inlineData"]["data"], validate=True)
        self.jobs[f"gen-{len(self.jobs) + 1}"] = {"input": body, "model": model}
        usage = {"promptTokenCount": 12, "candidatesTokenCount": 1290, "totalTokenCount": 1302}
        if self.block_prompt:
            return Reply(200, {"promptFeedback": {"blockReason": self.block_prompt}, "usageMetadata": usage})
        if self.finish_reason or self.fail_with:
            return Reply(200, {"candidates": [{"content": {"role": "model", "parts": []},
                                               "finishReason": self.finish_reason or "IMAGE_SAFETY",
                                               "finishMessage": self.fail_with}], "usageMetadata": usage})
        image = png(13)
        refs = [p for p in parts if "inlineData" in p]
        if refs:  # echo the first reference, so a test can see it arrived
            image = base64.b64decode(refs[0]["inlineData"]["data"])
        return Reply(200, {"candidates": [{"content": {"role": "model", "parts": [
            {"text": "Here is the portrait."}, {"inlineData": {"mimeType": "image/png", "data": b64(image)}}]},
            "finishReason": "STOP", "index": 0}], "usageMetadata": usage, "modelVersion": model})
