"""A minimal third-party provider plugin for Character Studio: "Acme Images", a resumable job API.

    POST   {base}/v1/jobs        {"prompt", "width", "height", "seed", "image"?} -> 202 {"id", "state"}
    GET    {base}/v1/jobs/{id}   -> {"id", "state": queued|running|done|error, "error", "image_b64"}
    DELETE {base}/v1/jobs/{id}   -> 204
    GET    {base}/v1/me          -> 200 (key accepted) | 401
"""
from __future__ import annotations

from core.plugin_api import (Capabilities, GenerationRequest, GenerationResult, Health, ModelSpec, Progress, Provider,
                             ProviderError, ReferenceMapping, Submission, hookimpl)

plugin_api_version = "1.1"  # the plugin API this was written for (a literal, not the imported constant)

STATES = {"queued": "queued", "running": "running", "done": "completed", "error": "failed", "canceled": "canceled"}


class AcmeProvider(Provider):
    id = "sample"
    display_name = "Acme Images (sample plugin)"
    key_env = ("SAMPLE_API_KEY",)
    base_url_env = "SAMPLE_BASE_URL"
    default_base_url = "https://api.acme-images.example"
    resumable = True

    def default_models(self) -> list[ModelSpec]:
        return [
            ModelSpec(model_key="acme-v1", display_name="Acme v1", priority=10),
            ModelSpec(model_key="acme-v1-edit", display_name="Acme v1 edit", priority=10,
                      capabilities=Capabilities(supports_i2i=True, max_references=1,
                                                reference=ReferenceMapping(field="image"))),
        ]

    async def submit(self, request: GenerationRequest) -> Submission:
        payload = {**request.input_defaults, "model": request.model_key, "prompt": request.prompt,
                   "width": request.width, "height": request.height, "seed": request.seed}
        payload = await self.place_references(payload, request)
        body = (await self.request("POST", "v1/jobs", json=payload, retry_safe=False)).json()
        return Submission(request_id=body["id"], inputs=self.recorded_inputs(payload, request))

    async def poll(self, request_id: str, request: GenerationRequest) -> Progress:
        body = (await self.request("GET", f"v1/jobs/{request_id}")).json()
        return Progress(state=STATES.get(body["state"], "running"), error=body.get("error"))

    async def result(self, request_id: str, request: GenerationRequest) -> GenerationResult:
        body = (await self.request("GET", f"v1/jobs/{request_id}")).json()
        if not body.get("image_b64"):
            raise ProviderError("Acme returned no image", retryable=False)
        return GenerationResult(images=[await self.download(body["image_b64"])], seed=request.seed)

    async def cancel(self, request_id: str) -> None:
        await self.request("DELETE", f"v1/jobs/{request_id}")

    async def health(self) -> Health:
        return await self.probe("GET", "v1/me")


@hookimpl
def register_providers(register):
    register(AcmeProvider)
