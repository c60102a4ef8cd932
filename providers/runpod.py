"""RunPod serverless: a cloud endpoint (`/v2/{endpoint_id}`) or a self-hosted worker URL; resumable.

A model key is either an endpoint id (cloud: `RUNPOD_API_KEY`, base `RUNPOD_ENDPOINT_BASE_URL`)
or the full URL of a worker on a team's own machine (the runpod SDK's `--rp_serve_api` server or
anything speaking the same API). The stored request id is `{model_key}/{job id}`, so status and
cancel find their endpoint after a restart.

The worker's input is built from the model's `input_defaults`: every string in it may use
`{prompt}`, `{seed}`, `{width}`, `{height}` (a string that is exactly a placeholder becomes the
value itself); `prompt`, `seed`, `width` and `height` are added at the top level unless
`input_defaults["$map"]` renames them (`{"prompt": "positive_prompt"}`) or drops them (`null`).

`input_defaults["$worker"]` names the worker the endpoint runs, which decides where the reference
goes (WORKERS): `sdxl` (runpod-workers/worker-sdxl: `image_url`, an http URL it downloads),
`comfyui` (runpod-workers/worker-comfyui: `images: [{name, image}]`, base64, which the workflow's
LoadImage node names), `a1111` (the A1111 API's `init_images: [base64]`); without it, the model's
reference mapping (default `image`, inline). `/run` takes at most 10 MB of body and base64 adds a
third, so a larger reference goes as a presigned URL where the store signs them (S3) and is refused
with a clear message otherwise. A self-hosted worker (the SDK's local API) runs the handler inside
`/status`, so that call waits `self_hosted_timeout` seconds: a client timeout would lose the result.

Progress is a real percent where the worker reports one: RunPod's `/status` answers IN_PROGRESS with
the `output` a worker sent through the SDK's `progress_update` (the project's worker sends
`{"percent", "step", "steps"}`). On a self-hosted SDK server that `/status` call is the one running
the job, so it is kept open in the background while `GET /progress/{job id}` (the project's worker,
worker/handler.py) answers in the same shape; a worker without that route is simply waited for.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

from core import redaction
from core.errors import ProviderError
from core.hookspecs import hookimpl
from core.models import Capabilities, ModelSpec, ReferenceMapping
from core.provider import (GenerationRequest, GenerationResult, Health, Progress, Provider, ReferenceImage,
                           Submission, host_port, image_sources)

plugin_api_version = "1.2"  # the plugin API the built-ins are written for, declared as a third party does

_STATES = {"IN_QUEUE": "queued", "IN_PROGRESS": "running", "COMPLETED": "completed", "FAILED": "failed",
           "CANCELLED": "canceled", "TIMED_OUT": "failed"}


RUN_BODY_LIMIT = 10 * 1024 * 1024  # RunPod's /run request body limit
COMFYUI_REFERENCE_NAME = "reference.png"  # the file name a LoadImage node of the workflow refers to


@dataclass(frozen=True)
class Worker:
    """Where a common worker takes the reference: field, list form, and whether it must be a URL."""

    field: str
    form: str  # "single", "list" or "comfyui" ({name, image} objects)
    url_only: bool = False
    raw_base64: bool = False  # base64 without the data: prefix


WORKERS = {
    "sdxl": Worker("image_url", "single", url_only=True),
    "comfyui": Worker("images", "comfyui"),
    "a1111": Worker("init_images", "list", raw_base64=True),
}


class RunPodProvider(Provider):
    """RunPod serverless jobs: run, status, cancel (where the server has it), health."""

    id = "runpod"
    display_name = "RunPod"
    key_env = ("RUNPOD_API_KEY",)
    secret_env = ("RUNPOD_WORKER_KEY",)
    base_url_env = "RUNPOD_ENDPOINT_BASE_URL"
    setting_env = ("RUNPOD_ENDPOINT_ID", "RUNPOD_WORKER_URL")
    default_base_url = "https://api.runpod.ai/v2"
    resumable = True
    poll_interval = 2.0
    # /run takes 10 MB of body and base64 grows bytes by a third; 256 KB is left for the rest of the input.
    max_inline_reference_bytes = (RUN_BODY_LIMIT - 256 * 1024) * 3 // 4
    self_hosted_timeout = 900.0  # seconds a self-hosted worker's /status (which runs the job) may take

    def __init__(self, secrets=None):
        super().__init__(secrets)
        self._outputs: dict[str, Any] = {}  # request id -> output of a COMPLETED status
        self._running: dict[str, asyncio.Task] = {}  # request id -> a self-hosted worker's open /status call

    def is_configured(self) -> bool:  # a self-hosted worker needs no cloud key
        return self.api_key() is not None or bool(self.secret("RUNPOD_WORKER_URL"))

    def default_models(self) -> list[ModelSpec]:
        """One model per configured endpoint id (`RUNPOD_ENDPOINT_ID`, comma-separated) and worker URL."""
        caps = Capabilities(supports_txt2img=True, supports_i2i=True, max_references=1,
                            reference=ReferenceMapping(field="image", form="single", limit=1))
        models = [ModelSpec(model_key=e, display_name=f"RunPod endpoint {e}", capabilities=caps, priority=20)
                  for e in (self.secret("RUNPOD_ENDPOINT_ID") or "").split(",") if e.strip()]
        if url := self.secret("RUNPOD_WORKER_URL"):
            # The project's worker (worker/): prompt, seed, width and height at the top level (multiples of
            # 8, up to 2048), the reference inline as `image`; negative prompt, steps, guidance and
            # strength from these defaults (empty: the worker's own, WORKER_STEPS and friends).
            worker_caps = caps.model_copy(update={"supports_seed": True, "max_resolution": "2048x2048"})
            models.append(ModelSpec(model_key=url.rstrip("/"), display_name="Self-hosted RunPod worker",
                                    capabilities=worker_caps, priority=20, input_defaults={"negative_prompt": ""},
                                    notes="The project's GPU worker (worker/ in the repository) or any worker "
                                          "taking prompt, seed, width, height and image."))
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

    def classify(self, response: httpx.Response) -> ProviderError:
        """A cloud `/run` answered 404: RunPod has no such endpoint (deleted, or another account's). A
        self-hosted worker's 404 is a wrong URL, not a retired model, and stays a plain not-found."""
        error = super().classify(response)
        request = response.request
        if (response.status_code == 404 and request.method == "POST" and request.url.path.endswith("/run")
                and self.base_url and str(request.url).startswith(f"{self.base_url}/")):
            endpoint = str(request.url)[len(f"{self.base_url}/"):].rsplit("/run", 1)[0]
            error.kind, error.retryable = "model_retired", False
            error.message = (f"{error.message}: RunPod has no endpoint {endpoint} (deleted, or not this API key's); "
                             "it is marked retired (set RUNPOD_ENDPOINT_ID to a live endpoint, or add it on the "
                             "Models page)")
        return error

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
    async def place_references(self, payload: dict[str, Any], request: GenerationRequest) -> dict[str, Any]:
        """The reference where the model's worker takes it (see WORKERS), else where its mapping says."""
        worker = WORKERS.get(str(request.input_defaults.get("$worker", "")))
        if worker is None or not request.references:
            return await super().place_references(payload, request)
        ref = request.references[0]
        value = await self._reference(ref, url_only=worker.url_only)
        if worker.raw_base64 and value.startswith("data:"):
            value = value.split(",", 1)[1]
        if worker.form == "comfyui":
            payload.setdefault("images", []).append({"name": COMFYUI_REFERENCE_NAME, "image": value})
        else:
            payload[worker.field] = [value] if worker.form == "list" else value
        return payload

    async def reference_value(self, ref: ReferenceImage) -> str:
        return await self._reference(ref, url_only=False)

    async def _reference(self, ref: ReferenceImage, *, url_only: bool) -> str:
        """Inline when it fits /run's body (workers read base64), else the store's presigned URL; a
        worker that only downloads URLs always gets the URL. Refused when there is no URL to give."""
        if not url_only and len(ref.data) <= self.max_inline_reference_bytes:
            return ref.data_uri()
        if ref.url:
            return ref.url
        if url_only:
            reason = "this model's worker (worker-sdxl) downloads the reference from an http URL"
        else:
            reason = (f"the reference ({len(ref.data) / 1e6:.1f} MB) does not fit RunPod's 10 MB request body "
                      "once base64-encoded")
        raise ProviderError(f"RunPod cannot take this reference: {reason}, and the image store cannot sign URLs "
                            "(a local store). Use an S3 store, or a smaller reference.", retryable=False,
                            kind="validation")

    def recorded_inputs(self, sent: dict[str, Any], request: GenerationRequest) -> dict[str, Any]:
        out = super().recorded_inputs(sent, request)
        worker = WORKERS.get(str(request.input_defaults.get("$worker", "")))
        if worker is not None and request.references and worker.field in out:
            named = f"sha256:{request.references[0].sha256}"
            out[worker.field] = ([{"name": COMFYUI_REFERENCE_NAME, "image": named}] if worker.form == "comfyui"
                                 else [named] if worker.form == "list" else named)
        return out

    def build_input(self, request: GenerationRequest) -> dict[str, Any]:
        values = {"prompt": request.prompt, "seed": request.seed, "width": request.width, "height": request.height}
        defaults = dict(request.input_defaults)
        defaults.pop("$worker", None)
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
        if self.self_hosted(model_key):
            body = await self._self_hosted_status(request_id)
        else:
            body = await self._status(f"{self.target(model_key)}/status/{job_id}", "GET", httpx.USE_CLIENT_DEFAULT)
        state = _STATES.get(body.get("status", ""), "running")
        if state == "completed":
            self._outputs[request_id] = body.get("output")
        error = None
        if state == "failed":
            error = _error_text(body.get("error")) or f"RunPod job {body.get('status', 'FAILED').lower()}"
        return Progress(state=state, error=error, percent=_percent(body.get("output")) if state == "running" else None)

    async def _status(self, url: str, method: str, timeout: Any) -> dict[str, Any]:
        try:
            response = await self.request(method, url, timeout=timeout)
        except ProviderError as exc:
            if exc.status == 405:
                response = await self.request("GET" if method == "POST" else "POST", url, timeout=timeout)
            elif exc.status == 404:
                raise ProviderError("RunPod does not know this job (unknown id, or its result expired)",
                                    retryable=False, status=404, kind="not_found") from None
            else:
                raise
        return response.json()

    async def _self_hosted_status(self, request_id: str) -> dict[str, Any]:
        """The SDK's local server answers only POST /status, and runs the job inside that call: it is
        kept open across polls (waiting `self_hosted_timeout`: a client timeout would lose the result)
        while GET /progress answers; a worker without that route is waited for."""
        model_key, job_id = self.split(request_id)
        task = self._running.get(request_id)
        if task is None:
            timeout = httpx.Timeout(max(self.self_hosted_timeout, self.timeout), connect=10.0)
            task = self._running[request_id] = asyncio.ensure_future(
                self._status(f"{self.target(model_key)}/status/{job_id}", "POST", timeout))
        done, _ = await asyncio.wait({task}, timeout=self.poll_interval)
        if not done:
            body = await self._worker_progress(f"{self.target(model_key)}/progress/{job_id}")
            if body is not None:
                return body
            await asyncio.wait({task})
        del self._running[request_id]
        return task.result()

    async def _worker_progress(self, url: str) -> dict[str, Any] | None:
        """The worker's progress of a running job, shaped like RunPod's /status; None where the worker
        has no such route or does not know the job (finished, or not ours)."""
        try:
            body = (await self.request("GET", url)).json()
        except (ProviderError, ValueError):
            return None
        return body if isinstance(body, dict) and body.get("status") in ("IN_QUEUE", "IN_PROGRESS") else None

    async def result(self, request_id: str, request: GenerationRequest) -> GenerationResult:
        if request_id not in self._outputs:
            progress = await self.poll(request_id, request)
            if progress.state != "completed":
                raise ProviderError(progress.error or "RunPod job is not completed", retryable=progress.state != "failed")
        output = self._outputs.pop(request_id)
        if isinstance(output, dict) and output.get("status") in ("success", "error") and "message" in output:
            # worker-comfyui before 5.0: {"status": "success", "message": <base64 or URL>}
            if output["status"] == "error":
                raise ProviderError(f"RunPod worker failed: {redaction.clip(str(output['message']), 300)}",
                                    retryable=False)
            output = {"images": [output["message"]]}
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
        if running := self._running.pop(request_id, None):
            running.cancel()
        try:
            await self.request("POST", f"{self.target(model_key)}/cancel/{job_id}")
        except ProviderError as exc:
            if not (self.self_hosted(model_key) and exc.status in (404, 405)):
                raise  # a self-hosted worker may have no /cancel

    async def aclose(self) -> None:
        running, self._running = self._running, {}
        for task in running.values():
            task.cancel()
        await super().aclose()

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


def _percent(output: Any) -> float | None:
    """The percent of an in-progress output (`{"percent": 40.0, ...}`, as the project's worker sends it)."""
    value = output.get("percent") if isinstance(output, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100:
        return float(value)
    return None


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
