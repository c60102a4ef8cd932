"""An OpenAI API fake: images generations (JSON) and edits (multipart `image` / `image[]`), models
(chat completions: tests/fakes/chat.py); errors as `{"error": {message, type, param, code}}`.

Follows OpenAI's OpenAPI specification, github.com/openai/openai-openapi `openapi.yaml` (paths
`/images/generations`, `/images/edits`, `/models`; the `Error` schema), and
the client generated from it, github.com/openai/openai-python (`src/openai/resources/images.py`;
`src/openai/_base_client.py` for the `retry-after-ms` and `x-should-retry` headers it obeys).

Models as openai-python's `src/openai/types/image_model.py` and `image_edit_params.py` list them
today: the GPT image models gpt-image-2, gpt-image-1.5 and gpt-image-1-mini. A model that is shut
down (gpt-image-1, dall-e-3: developers.openai.com/api/docs/deprecations) answers 404 with the
`Error` code `model_not_found`. `input_fidelity` is refused with 400 `invalid_input_fidelity_model`
by the models that do not take it (`image_edit_params.py`: "unsupported for gpt-image-1-mini";
gpt-image-2 has it disabled, openai-cookbook `examples/multimodal/image-gen-models-prompting-guide.ipynb`).
`output_format` is png, jpeg or webp and the image comes back in it (`ImagesResponse.output_format`).
"""
from __future__ import annotations

import time
from email.parser import BytesParser
from email.policy import HTTP

from providers.openai import OpenAIProvider
from tests.fakes.base import FakeServer, Reply, Req, b64, png

SIZES = {"1024x1024", "1536x1024", "1024x1536", "auto"}
MODELS = {"gpt-image-2", "gpt-image-2-2026-04-21", "gpt-image-1.5", "gpt-image-1.5-2025-12-16", "gpt-image-1-mini"}
SHUT_DOWN = {"gpt-image-1", "dall-e-3", "dall-e-2"}
NO_INPUT_FIDELITY = {"gpt-image-2", "gpt-image-2-2026-04-21", "gpt-image-1-mini"}
FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def encoded(fmt: str) -> bytes:
    """A small image in an output format."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (48, 40), (200, 30, 60)).save(out, FORMATS[fmt])
    return out.getvalue()


def oai_error(status: int, message: str, type_: str, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"error": {"message": message, "type": type_, "param": param, "code": code}}, headers or {})


def multipart(req: Req) -> tuple[dict[str, str], list[tuple[str, str, bytes]]]:
    """(form fields, [(part name, content type, bytes)] of files) of a multipart/form-data body."""
    msg = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + req.headers["content-type"].encode() + b"\r\n\r\n" + req.body)
    fields, files = {}, []
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename():
            files.append((name, part.get_content_type(), part.get_payload(decode=True)))
        else:
            fields[name] = part.get_payload(decode=True).decode()
    return fields, files


class OpenAIFake(FakeServer):
    takes_seed = False  # the Images API has no seed
    provider_class = OpenAIProvider

    def error_reply(self, status: int) -> dict:
        code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
        return {"status": status, "body": {"error": {"message": f"injected error {status}", "type": "injected",
                                                     "param": None, "code": code}},
                "headers": {"retry-after-ms": "0"} if status == 429 else {}}
    def env(self) -> dict[str, str]:
        return {"OPENAI_API_KEY": self.key, "OPENAI_BASE_URL": f"{self.url}/v1"}

    def route(self, req: Req) -> str:
        return {"/v1/images/generations": "submit", "/v1/images/edits": "submit", "/v1/models": "models"}.get(req.path, "")

    def dispatch(self, req: Req) -> Reply:
        if not self.authorized(req):
            got = req.headers.get("authorization", "").removeprefix("Bearer ")
            return oai_error(401, f"Incorrect API key provided: {got}. You can find your API key at "
                                  "https://platform.openai.com/account/api-keys.", "invalid_request_error",
                             "invalid_api_key")
        if req.op == "models":
            return Reply(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in sorted(MODELS)]})
        if req.path.endswith("/edits"):
            if "multipart/form-data" not in req.headers.get("content-type", ""):
                return oai_error(400, "Edits take multipart/form-data", "invalid_request_error")
            fields, files = multipart(req)
            images = [f for f in files if f[0] in ("image", "image[]")]
            if not images:
                return oai_error(400, "Missing required parameter: 'image'.", "invalid_request_error",
                                 "missing_required_parameter", "image")
            body = {**fields, "_images": images}
        else:
            body = req.json() or {}
        req.parsed = body  # type: ignore[attr-defined]
        if not body.get("prompt"):
            return oai_error(400, "Missing required parameter: 'prompt'.", "invalid_request_error",
                             "missing_required_parameter", "prompt")
        model = body.get("model") or "gpt-image-1.5"
        if model in SHUT_DOWN or model not in MODELS:
            return oai_error(404, f"The model `{model}` does not exist or you do not have access to it.",
                             "invalid_request_error", "model_not_found")
        if "input_fidelity" in body and model in NO_INPUT_FIDELITY:
            return oai_error(400, f"The model '{model}' does not support the 'input_fidelity' parameter.",
                             "image_generation_user_error", "invalid_input_fidelity_model", "input_fidelity")
        output_format = body.get("output_format", "png")
        if output_format not in FORMATS:
            return oai_error(400, f"Invalid value: '{output_format}'. Supported values are: 'png', 'jpeg' and 'webp'.",
                             "invalid_request_error", "invalid_value", "output_format")
        if body.get("size", "auto") not in SIZES:
            return oai_error(400, f"Invalid value: '{body['size']}'. Supported values are: '1024x1024', '1024x1536', "
                                  "'1536x1024', and 'auto'.", "invalid_request_error", "invalid_value", "size")
        if self.fail_with:
            return oai_error(400, self.fail_with, "image_generation_user_error", "moderation_blocked")
        self.jobs[f"gen-{len(self.jobs) + 1}"] = {"input": {k: v for k, v in body.items() if k != "_images"}}
        image = png(11) if output_format == "png" else encoded(output_format)
        return Reply(200, {"created": int(time.time()), "data": [{"b64_json": b64(image)}],
                           "usage": {"input_tokens": 20, "output_tokens": 272, "total_tokens": 292},
                           "size": body.get("size"), "quality": body.get("quality"), "output_format": output_format})
