"""A RunPod serverless cloud fake: `/v2/{endpoint}/run|status|cancel|health`.

Follows RunPod's Python SDK, github.com/runpod/runpod-python: `runpod/endpoint/runner.py` (the cloud
client: POST {endpoint}/run, GET {endpoint}/status/{job_id}, POST {endpoint}/cancel/{job_id}, GET
{endpoint}/health, `Authorization: Bearer <key>`), `runpod/__init__.py` (base
`RUNPOD_ENDPOINT_BASE_URL`, default https://api.runpod.ai/v2); the job states are those of
https://docs.runpod.io/serverless/endpoints/job-states (IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED,
CANCELLED, TIMED_OUT). The SDK's own local server (`runpod/serverless/modules/rp_fastapi.py`) is
tested for real in tests/providers/test_runpod.py, not faked.

The worker shapes follow the runpod-workers repositories: worker-comfyui (`README.md`, API
specification: input `workflow` + `images: [{name, image}]` with base64 images; output since 5.0
`{"images": [{"filename", "type": "base64", "data"}]}`, before 5.0 `{"status": "success", "message":
<base64 or URL>}`), worker-sdxl (`src/schemas.py`: `image_url` for image-to-image; output
`{"images": [...], "seed"}`), worker-a1111 (the A1111 API: `init_images`; output `{"images": [base64],
"parameters", "info"}`). `/run` refuses a body over 10 MB (docs.runpod.io/serverless/endpoints/
operations: "payload limits ... /run 10 MB").

Quirks kept: a failed job answers HTTP 200 with `status: FAILED` and `error` as a JSON-encoded
string; unknown ids answer 404; output in the worker-comfyui, worker-sdxl or worker-a1111 shape. An
endpoint id the account does not have answers every call, `/run` included, with a plain-text 404 (as
runpod-python users report from `run()` on a wrong endpoint id, runpod/runpod-python issue #258); the
fake has the one endpoint ENDPOINT.
"""
from __future__ import annotations

import json
import re
import uuid

from providers.runpod import RunPodProvider
from tests.fakes.base import FakeServer, Reply, Req, b64, png

ENDPOINT = "ep-test123"
RUN_BODY_LIMIT = 10 * 1024 * 1024


def worker_output(shape: str, data: bytes) -> dict:
    """An image in the output shape of a common RunPod image worker."""
    if shape == "comfyui":
        return {"images": [{"filename": "ComfyUI_00001_.png", "type": "base64", "data": b64(data)}]}
    if shape == "sdxl":
        return {"images": [f"data:image/png;base64,{b64(data)}"], "seed": 42}
    if shape == "a1111":
        return {"images": [b64(data)], "parameters": {}, "info": "{}"}
    if shape == "comfyui-4":  # worker-comfyui before 5.0
        return {"status": "success", "message": b64(data)}
    raise ValueError(shape)


class RunPodFake(FakeServer):
    provider_class = RunPodProvider
    shape = "sdxl"
    progress = None  # a running job's `output`: what a worker last sent through the SDK's progress_update

    def env(self) -> dict[str, str]:
        return {"RUNPOD_API_KEY": self.key, "RUNPOD_ENDPOINT_BASE_URL": f"{self.url}/v2", "RUNPOD_ENDPOINT_ID": ENDPOINT}

    def route(self, req: Req) -> str:
        m = re.match(r"^/v2/[^/]+/(run|runsync|status|cancel|health)(/[^/]+)?$", req.path)
        return {"run": "submit", "runsync": "submit"}.get(m.group(1), m.group(1)) if m else ""

    def dispatch(self, req: Req) -> Reply:
        if not self.authorized(req):
            return Reply(401, raw=b"Unauthorized", content_type="text/plain")
        m = re.match(r"^/v2/([^/]+)/(\w+)(?:/([^/]+))?$", req.path)
        if not m or m.group(1) != ENDPOINT:
            return Reply(404, raw=b"404 page not found", content_type="text/plain")
        _, action, jid = m.groups()
        if action == "health":
            if req.method != "GET":
                return Reply(405, raw=b"", content_type="text/plain")
            return Reply(200, {"jobs": {"completed": 1, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0},
                               "workers": {"idle": 1, "running": 0}})
        if action == "run":
            if len(req.body) > RUN_BODY_LIMIT:
                return Reply(413, {"error": "request body too large: the limit is 10 MB"})
            body = req.json() if req.body else None
            if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
                return Reply(400, {"error": "invalid request body: input is required"})
            jid = f"{uuid.uuid4()}-u1"
            self.jobs[jid] = {"input": body["input"], "state": "queued", "fail": self.fail_with}
            return Reply(200, {"id": jid, "status": "IN_QUEUE"})
        job = self.jobs.get(jid or "")
        if job is None:
            return Reply(404, {"error": "request does not exist"})
        if action == "cancel":
            if req.method != "POST":
                return Reply(405, raw=b"", content_type="text/plain")
            if job["state"] not in ("done", "failed"):
                job["state"] = "canceled"
            return Reply(200, {"id": jid, "status": "CANCELLED"})
        if req.method != "GET":
            return Reply(405, raw=b"", content_type="text/plain")
        state = job["state"] if job["state"] == "canceled" else self.advance(job)
        status = {"queued": "IN_QUEUE", "running": "IN_PROGRESS", "done": "COMPLETED", "failed": "FAILED",
                  "canceled": "CANCELLED"}[state]
        reply = {"id": jid, "status": status, "delayTime": 120, "workerId": "w1"}
        if state == "running" and self.progress is not None:
            reply["output"] = self.progress
        if state == "done":
            reply.update(output=worker_output(self.shape, png(9)), executionTime=800)
        if state == "failed":
            reply["error"] = json.dumps({"error_type": "<class 'RuntimeError'>", "error_message": job["fail"],
                                         "error_traceback": "Traceback ..."})
        return Reply(200, reply)
