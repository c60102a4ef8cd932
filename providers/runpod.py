"""RunPod serverless: a cloud endpoint (`/v2/{endpoint_id}`) or a self-hosted worker URL; resumable.

A model key is either an endpoint id (cloud: `RUNPOD_API_KEY`, base `RUNPOD_ENDPOINT_BASE_URL`)
or the full URL of a worker on a team's own machine (the runpod SDK's `--rp_serve_api` server or
anything speaking the same API). The stored request id is `{model_key}/{job id}`, so status and
cancel find their endpoint after a restart.

The worker's input is built from the model's `input_defaults`: every string in it may use
`{prompt}`, `{seed}`, `{width}`, `{height}` (a string that is exactly a placeholder becomes the
value itself); `prompt`, `seed`, `width` and `height` are added at the top level unless
`input_defaults["$map"]` renames them (`{"prompt": "positive_prompt"}`) or drops them (`null`).
"""
from __future__ import annotations

import json
from typing import Any

from core import redaction
from core.errors import ProviderError
from core.hookspecs import hookimpl
from core.models import Capabilities, ModelSpec, ReferenceMapping
from core.provider import (GenerationRequest, GenerationResult, Health, Progress, Provider, Submission, host_port,
                           image_sources)

_STATES = {"IN_QUEUE": "queued", "IN_PROGRESS": "running", "COMPLETED": "completed", "FAILED": "failed",
           "CANCELLED": "canceled", "TIMED_OUT": "failed"}


class RunPodProvider(Provider):
    """RunPod serverless jobs: run, status, cancel (where the server has it), health."""

    id = "runpod"
    display_name = "RunPod"
    key_env = ("RUNPOD_API_KEY",)
    secret_env = ("RUNPOD_WORKER_KEY",)
    base_url_env = "RUNPOD_ENDPOINT_BASE_URL"
    default_base_url = "https://api.runpod.ai/v2"
    resumable = True
    poll_interval = 2.0
    max_inline_reference_bytes = 10 * 1024 * 1024  # /run takes up to 10 MB of input

    def __init__(self, secrets=None):
        super().__init__(secrets)
        self._outputs: dict[str, Any] = {}  # request id -> output of a COMPLETED status

    def is_configured(self) -> bool:  # a self-hosted worker needs no cloud key
        return self.api_key() is not None or bool(self.secret("RUNPOD_WORKER_URL"))

    def default_models(self) -> list[ModelSpec]:
        """One model per configured endpoint id (`RUNPOD_ENDPOINT_ID`, comma-separated) and worker URL."""
        caps = Capabilities(supports_txt2img=True, supports_i2i=True, max_references=1,
                            reference=ReferenceMapping(field="image", form="single", limit=1))
        models = [ModelSpec(model_key=e, display_name=f"RunPod endpoint {e}", capabilities=caps, priority=20)
                  for e in (self.secret("RUNPOD_ENDPOINT_ID") or "").split(",") if e.strip()]
        if url := self.secret("RUNPOD_WORKER_URL"):
            models.append(ModelSpec(model_key=url.rstrip("/"), display_name="Self-hosted RunPod worker",
                                    capabilities=caps, priority=20))
        return models

    def configured_hosts(self) -> set[tuple[str, int]]:
        """The cloud's host and the configured worker's (a model key's worker is passed as `origin`)."""
        hosts = super().configured_hosts()
        if worker := self.secret("RUNPOD_WORKER_URL"):
            hosts.add(host_port(worker))
        return hosts

    def auth_headers_for(self, url: str) -> dict[str, str]:
        """The cloud key only goes to the cloud; a self-hosted worker gets `RUNPOD_WORKER_KEY` if set."""
        if self.base_url and url.startswith(f"{self.base_url}/"):
            return self.auth_headers()
        worker_key = self.secret("RUNPOD_WORKER_KEY")
        return {"Authorization": f"Bearer {worker_key}"} if worker_key else {}

    # -- addressing --------------------------------------------------------------------------
    def target(self, model_key: str) -> str:
        """The endpoint URL for a model key: a worker URL as is, an endpoint id under the base URL."""
        if model_key.startswith(("http://", "https://")):
            return model_key.rstrip("/")
        return f"{self.base_url}/{model_key.strip('/')}"

    @staticmethod
    def split(request_id: str) -> tuple[str, str]:
        model_key, _, job_id = request_id.rpartition("/")
        if not model_key or not job_id:
            raise ProviderError(f"not a RunPod request id: {request_id!r}", retryable=False)
        return model_key, job_id

    @staticmethod
    def self_hosted(model_key: str) -> bool:
        return model_key.startswith(("http://", "https://"))

    # -- the work ----------------------------------------------------------------------------
    def build_input(self, request: GenerationRequest) -> dict[str, Any]:
        values = {"prompt": request.prompt, "seed": request.seed, "width": request.width, "height": request.height}
        defaults = dict(request.input_defaults)
        renames = defaults.pop("$map", {}) or {}
        inputs = _fill(defaults, values)
        for name, value in values.items():
            field = renames.get(name, name)
            if field and field not in inputs:
                inputs[field] = value
        return inputs

    async def submit(self, request: GenerationRequest) -> Submission:
        sent = await self.place_references(self.build_input(request), request)
        body = (await self.request("POST", f"{self.target(request.model_key)}/run", json={"input": sent},
                                   retry_safe=False)).json()
        if not body.get("id"):
            raise ProviderError(f"RunPod answered /run without a job id: {redaction.clip(json.dumps(body), 200)}",
                                retryable=False)
        return Submission(request_id=f"{request.model_key.rstrip('/')}/{body['id']}",
                          inputs=self.recorded_inputs(sent, request))

    async def poll(self, request_id: str, request: GenerationRequest) -> Progress:
        model_key, job_id = self.split(request_id)
        url = f"{self.target(model_key)}/status/{job_id}"
        # The SDK's local server only answers POST /status; the cloud answers GET.
        method = "POST" if self.self_hosted(model_key) else "GET"
        try:
            response = await self.request(method, url)
        except ProviderError as exc:
            if exc.status == 405:
                response = await self.request("GET" if method == "POST" else "POST", url)
            elif exc.status == 404:
                raise ProviderError("RunPod does not know this job (unknown id, or its result expired)",
                                    retryable=False, status=404, kind="not_found") from None
            else:
                raise
        body = response.json()
        state = _STATES.get(body.get("status", ""), "running")
        if state == "completed":
            self._outputs[request_id] = body.get("output")
        error = None
        if state == "failed":
            error = _error_text(body.get("error")) or f"RunPod job {body.get('status', 'FAILED').lower()}"
        return Progress(state=state, error=error)

    async def result(self, request_id: str, request: GenerationRequest) -> GenerationResult:
        if request_id not in self._outputs:
            progress = await self.poll(request_id, request)
            if progress.state != "completed":
                raise ProviderError(progress.error or "RunPod job is not completed", retryable=progress.state != "failed")
        output = self._outputs.pop(request_id)
        sources = image_sources(output)
        if not sources:
            raise ProviderError("RunPod worker returned no image (expected worker-comfyui, worker-sdxl or "
                                "worker-a1111 output)", retryable=False)
        model_key = self.split(request_id)[0]
        image = await self.download(sources[0], origin=self.target(model_key) if self.self_hosted(model_key) else None)
        seed = output.get("seed") if isinstance(output, dict) else None
        return GenerationResult(images=[image], seed=seed if isinstance(seed, int) else None,
                                metadata={"job_id": self.split(request_id)[1]})

    async def cancel(self, request_id: str) -> None:
        model_key, job_id = self.split(request_id)
        try:
            await self.request("POST", f"{self.target(model_key)}/cancel/{job_id}")
        except ProviderError as exc:
            if not (self.self_hosted(model_key) and exc.status in (404, 405)):
                raise  # a self-hosted worker may have no /cancel

    async def health(self) -> Health:
        endpoint = next((e.strip() for e in (self.secret("RUNPOD_ENDPOINT_ID") or "").split(",") if e.strip()), None)
        if endpoint is None and (url := self.secret("RUNPOD_WORKER_URL")):
            endpoint = url
        if endpoint is None:
            if not self.is_configured():
                return await super().health()
            return Health("unknown", "Set RUNPOD_ENDPOINT_ID or RUNPOD_WORKER_URL to check an endpoint.")
        if self.self_hosted(endpoint):
            try:
                await self.request("GET", f"{self.target(endpoint)}/health")
            except ProviderError as exc:
                if exc.status in (404, 405):  # the SDK's local server has no /health
                    return Health("ok", "The self-hosted worker answers (it has no health endpoint).")
                state = "rejected" if exc.kind == "auth" else "unreachable"
                return Health(state, exc.message)
            return Health("ok", "The self-hosted worker answers.")
        return await self.probe("GET", f"{self.target(endpoint)}/health")


def _fill(value: Any, values: dict[str, Any]) -> Any:
    """Substitute `{prompt}`-style placeholders in every string of `value`."""
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, str):
        for name, v in values.items():
            if value == f"{{{name}}}":
                return v
        for name, v in values.items():
            value = value.replace(f"{{{name}}}", str(v))
    return value


def _error_text(error: Any) -> str | None:
    """A RunPod error: a string, sometimes a JSON-encoded object with `error_message`."""
    if isinstance(error, str):
        try:
            error = json.loads(error)
        except ValueError:
            return error
    if isinstance(error, dict):
        return str(error.get("error_message") or error.get("message") or error.get("error") or json.dumps(error))
    return None if error is None else str(error)


@hookimpl
def register_providers(register):
    register(RunPodProvider)
