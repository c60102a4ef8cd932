"""fal.ai through its queue API: submit, status (queue position and logs), result, cancel.

The stored request id is the `response_url` fal returns, so a restarted studio (or a cancel
from another thread) follows fal's own URLs: status is `{response_url}/status`, cancel
`{response_url}/cancel`, exactly as fal returns them.

References above `max_inline_reference_bytes` go through fal's storage (POST
`{FAL_REST_URL}/storage/upload/initiate` for an upload URL, PUT the bytes there, send the file URL),
smaller ones inline as data URIs. The Kontext models take `safety_tolerance` ("1" strictest to
"6") instead of `enable_safety_checker`. A COMPLETED status that carries `error` is a failure.
"""
from __future__ import annotations

from typing import Any

import httpx

from core.errors import ProviderError
from core.hookspecs import hookimpl
from core.models import Capabilities, ModelSpec, ReferenceMapping
from core.provider import (GenerationRequest, GenerationResult, Health, Progress, Provider, ReferenceImage,
                           Submission, host_port, image_sources)

plugin_api_version = "1.2"  # the plugin API the built-ins are written for, declared as a third party does

_STATES = {"IN_QUEUE": "queued", "IN_PROGRESS": "running", "COMPLETED": "completed"}
SAFETY_TOLERANCE = {"sfw": "2", "nsfw": "6"}  # fal's Kontext scale: "1" strictest, "2" its default, "6" most permissive
DEFAULT_REST_URL = "https://rest.alpha.fal.ai"  # fal_client's REST_URL


def _i2i(field: str, form: str = "single", limit: int = 1, txt2img: bool = False) -> Capabilities:
    return Capabilities(supports_txt2img=txt2img, supports_i2i=True, max_references=limit,
                        reference=ReferenceMapping(field=field, form=form, limit=limit), formats=["png", "jpeg"])


class FalProvider(Provider):
    """fal.ai queue API; resumable."""

    id = "fal"
    display_name = "fal.ai"
    key_env = ("FAL_KEY",)
    secret_env = ("FAL_KEY_ID", "FAL_KEY_SECRET")
    base_url_env = "FAL_QUEUE_URL"
    setting_env = ("FAL_REST_URL",)
    default_base_url = "https://queue.fal.run"
    resumable = True
    poll_interval = 1.0

    def __init__(self, secrets=None):
        super().__init__(secrets)
        self._urls: dict[str, tuple[str, str]] = {}  # response URL -> (status URL, cancel URL) as fal returned

    def default_models(self) -> list[ModelSpec]:
        return [
            ModelSpec(model_key="fal-ai/flux/dev", display_name="FLUX.1 [dev] (fal)", priority=50,
                      capabilities=Capabilities(formats=["png", "jpeg"]),
                      input_defaults={"num_inference_steps": 28, "guidance_scale": 3.5}),
            ModelSpec(model_key="fal-ai/flux/dev/image-to-image", display_name="FLUX.1 [dev] image-to-image (fal)",
                      priority=40, capabilities=_i2i("image_url"), input_defaults={"strength": 0.85}),
            ModelSpec(model_key="fal-ai/flux-pro/kontext", display_name="FLUX.1 Kontext [pro] (fal)", priority=60,
                      capabilities=_i2i("image_url"), input_defaults={"safety_tolerance": SAFETY_TOLERANCE["sfw"]},
                      notes="Edits keep the reference's identity."),
            ModelSpec(model_key="fal-ai/bytedance/seedream/v4/edit", display_name="Seedream 4 edit (fal)",
                      priority=45, capabilities=_i2i("image_urls", "list", 4)),
        ]

    def api_key(self) -> str | None:
        if key := self.secret("FAL_KEY"):
            return key
        key_id, secret = self.secret("FAL_KEY_ID"), self.secret("FAL_KEY_SECRET")
        return f"{key_id}:{secret}" if key_id and secret else None

    def auth_headers(self) -> dict[str, str]:
        key = self.api_key()
        return {"Authorization": f"Key {key}"} if key else {}

    @property
    def rest_url(self) -> str:
        """fal's REST API (storage uploads): `FAL_REST_URL`, else fal_client's."""
        return (self.secret("FAL_REST_URL") or DEFAULT_REST_URL).rstrip("/")

    def auth_headers_for(self, url: str) -> dict[str, str]:
        """The key goes to the queue and to the REST API, never to an upload or result URL elsewhere."""
        if httpx.URL(url).netloc == httpx.URL(self.rest_url).netloc:
            return self.auth_headers()
        return super().auth_headers_for(url)

    def configured_hosts(self) -> set[tuple[str, int]]:
        return super().configured_hosts() | {host_port(self.rest_url)}

    def is_submit(self, request: httpx.Request) -> bool:
        """Whether `request` is a queue submit: a POST under the queue URL that is not a request's URL."""
        return (request.method == "POST" and self.base_url is not None and str(request.url).startswith(f"{self.base_url}/")
                and "/requests/" not in request.url.path)

    def model_id(self, request: httpx.Request) -> str:
        return str(request.url)[len(f"{self.base_url}/"):].split("?", 1)[0]

    def classify(self, response: httpx.Response) -> ProviderError:
        """fal's infrastructure errors: a 504 the caller's own timeout caused is permanent. A 404 to a
        submit (POST `{queue}/{model_id}`) is fal saying it has no such app: the model is gone."""
        error = super().classify(response)
        if response.status_code == 404 and self.is_submit(response.request):
            error.kind, error.retryable = "model_retired", False
            error.message = (f"{error.message}: fal has no model {self.model_id(response.request)}; it is marked "
                             "retired (pick another model, or correct its id on the Models page)")
        error_type = response.headers.get("x-fal-error-type")
        if error_type:
            error.message = f"{error.message} ({error_type})"  # redacted when set, like every message
        if response.status_code == 504 and response.headers.get("x-fal-request-timeout-type") == "user":
            error.retryable = False
            error.kind = "timeout"
        return error

    # -- the work ----------------------------------------------------------------------
    async def submit(self, request: GenerationRequest) -> Submission:
        inputs: dict[str, Any] = {
            **request.input_defaults, "prompt": request.prompt,
            "image_size": {"width": request.width, "height": request.height},
            "seed": request.seed, "num_images": 1, "output_format": "png",
        }
        if "safety_tolerance" in inputs:  # Kontext: its own scale, the admin's value only ever stricter for SFW
            rating = "sfw" if request.safety_checker else "nsfw"
            inputs["safety_tolerance"] = min(str(inputs["safety_tolerance"]), SAFETY_TOLERANCE[rating]) \
                if rating == "sfw" else SAFETY_TOLERANCE[rating]
        else:
            inputs["enable_safety_checker"] = request.safety_checker
        sent = await self.place_references(dict(inputs), request)
        response = await self.request("POST", request.model_key, json=sent, retry_safe=False)
        body = response.json()
        url = body.get("response_url")
        if not url:
            raise ProviderError(f"{self.display_name} answered without a response_url", retryable=False)
        self._urls[url] = (body.get("status_url") or f"{url}/status", body.get("cancel_url") or f"{url}/cancel")
        return Submission(request_id=url, inputs=self.recorded_inputs(sent, request))

    async def poll(self, request_id: str, request: GenerationRequest) -> Progress:
        status_url = self._urls.get(request_id, (f"{request_id}/status", ""))[0]
        body = (await self.request("GET", status_url, params={"logs": "1"})).json()
        state = _STATES.get(body.get("status", ""), "running")
        logs = body.get("logs") or []
        message = logs[-1].get("message") if logs and isinstance(logs[-1], dict) else None
        if state == "completed" and body.get("error"):  # COMPLETED is the end, not necessarily a success
            error_type = f" ({body['error_type']})" if body.get("error_type") else ""
            return Progress(state="failed", error=f"{self.display_name}: {body['error']}{error_type}")
        return Progress(state=state, queue_position=body.get("queue_position"), message=message)

    async def result(self, request_id: str, request: GenerationRequest) -> GenerationResult:
        body = (await self.request("GET", request_id)).json()
        sources = image_sources(body.get("images") or [])
        if not sources:
            raise ProviderError(f"{self.display_name} returned no image", retryable=False)
        image = await self.download(sources[0])
        seed = body.get("seed")
        return GenerationResult(
            images=[image], seed=seed if isinstance(seed, int) else None,
            provider_ms=_ms((body.get("timings") or {}).get("inference")),
            metadata={"has_nsfw_concepts": body.get("has_nsfw_concepts"), "request_id": request_id.rsplit("/", 1)[-1]})

    async def cancel(self, request_id: str) -> None:
        cancel_url = self._urls.pop(request_id, ("", f"{request_id}/cancel"))[1]
        await self.request("PUT", cancel_url)

    async def upload_reference(self, ref: ReferenceImage) -> str:
        """fal's storage upload (fal_client / fal-js `storage`): initiate for an upload URL, PUT the bytes."""
        ext = ref.content_type.split("/")[-1]
        answer = (await self.request("POST", f"{self.rest_url}/storage/upload/initiate",
                                     params={"storage_type": "fal-cdn-v3"},
                                     json={"file_name": f"reference-{ref.sha256[:12]}.{ext}",
                                           "content_type": ref.content_type})).json()
        upload_url, file_url = answer.get("upload_url"), answer.get("file_url")
        if not upload_url or not file_url:
            raise ProviderError(f"{self.display_name} storage answered without an upload URL", retryable=True)
        await self.request("PUT", upload_url, content=ref.data, headers={"Content-Type": ref.content_type})
        return file_url

    async def health(self) -> Health:
        return await self.probe("GET", "fal-ai/flux/requests/00000000-0000-0000-0000-000000000000/status")


def _ms(seconds: Any) -> float | None:
    return float(seconds) * 1000 if isinstance(seconds, (int, float)) else None


@hookimpl
def register_providers(register):
    register(FalProvider)
