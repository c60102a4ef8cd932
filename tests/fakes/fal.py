"""A fal.ai queue API fake: URLs as fal returns them, without the app's sub-path.

Follows fal's public queue API: the docs page "Queue" (https://docs.fal.ai/model-endpoints/queue:
POST queue.fal.run/{model_id}[/{subpath}], GET .../requests/{id}/status (?logs=1), GET
.../requests/{id}, PUT .../requests/{id}/cancel; `request_id`, `response_url`, `status_url`,
`cancel_url`; IN_QUEUE/IN_PROGRESS/COMPLETED with `queue_position` and `logs`; the sub-path is not
part of the status and result URLs), and its Python client, github.com/fal-ai/fal
`projects/fal_client/src/fal_client/client.py` (`Authorization: Key <FAL_KEY>`). Error bodies carry
`detail`; the `X-Fal-Error-Type` header names the failure category (docs page "Retries and Error
Handling", https://fal.ai/docs/documentation/serverless/reliability/retries).

Storage: the upload flow of fal's clients (github.com/fal-ai/fal-js `libs/client/src/storage.ts`,
and the fal toolkit's `FalFileRepository`): POST {rest}/storage/upload/initiate?storage_type=...
with `{file_name, content_type}` answers `{upload_url, file_url}`; the bytes are PUT to `upload_url`
with their Content-Type; `file_url` is what a model input takes. A request that fails on fal's side
may end COMPLETED with `error` and `error_type` in its status (docs page "Readiness and liveness",
https://fal.ai/docs/documentation/deployment/readiness-liveness: "the response includes an
error_type field").

Quirks kept: status answers 202 while waiting and 200 when COMPLETED; there is no FAILED status, a
failed job is COMPLETED and its error (422, `detail` list) arrives with the result; seeds beyond
2^53; the request id also in `x-fal-request-id`.

An app id fal does not host (never existed, or taken down) answers the submit with 404 and a `detail`
(the queue's submit is `POST queue.fal.run/{model_id}`, docs page "Queue"; fal-ai/fal pull request #99
"add path to 404 of apps" names the app in that 404). The fake hosts every app except `missing_apps`.
"""
from __future__ import annotations

import re
import uuid

from providers.fal import FalProvider
from tests.fakes.base import FakeServer, Reply, Req, b64, png

BIG_SEED = 2**60 + 12345


class FalFake(FakeServer):
    provider_class = FalProvider

    def env(self) -> dict[str, str]:
        return {"FAL_KEY": self.key, "FAL_QUEUE_URL": self.url}

    def authorized(self, req: Req) -> bool:
        return req.headers.get("authorization") == f"Key {self.key}"

    complete_with_error: str | None = None  # the next jobs end COMPLETED carrying this error

    @property
    def missing_apps(self) -> set[str]:
        """App ids (`owner/app`) fal does not host: their submits answer 404."""
        return self.__dict__.setdefault("_missing_apps", set())

    @property
    def uploads(self) -> dict[str, bytes]:
        return self.__dict__.setdefault("_uploads", {})

    def route(self, req: Req) -> str:
        if req.path.startswith("/files/"):
            return "file"
        if req.path == "/storage/upload/initiate":
            return "initiate"
        if req.path.startswith("/upload/"):
            return "put"
        m = re.match(r"^/[^/]+/[^/]+/requests/[^/]+(/status|/cancel)?$", req.path)
        if m:
            return {"/status": "status", "/cancel": "cancel", None: "result"}[m.group(1)]
        return "submit" if req.method == "POST" else ""

    def dispatch(self, req: Req) -> Reply:
        if req.op == "file":
            return Reply(raw=self.uploads.get(req.path.rsplit("/", 1)[-1]) or png(7), content_type="image/png")
        if req.op == "put":  # a presigned upload URL: no key needed, the URL itself grants the write
            if req.method != "PUT" or not req.headers.get("content-type", "").startswith("image/"):
                return Reply(400, {"detail": "PUT the bytes with their Content-Type"})
            self.uploads[req.path.rsplit("/", 1)[-1]] = req.body
            return Reply(200, raw=b"", content_type="text/plain")
        if not self.authorized(req):
            got = req.headers.get("authorization", "")
            return Reply(401, {"detail": f"Invalid authentication credentials: {got}"})
        if req.op == "submit":
            return self._submit(req)
        if req.op == "initiate":
            body = req.json() or {}
            if req.method != "POST" or not body.get("file_name") or not body.get("content_type"):
                return Reply(422, {"detail": "file_name and content_type are required"})
            fid = f"{uuid.uuid4().hex[:12]}-{body['file_name']}"
            return Reply(200, {"upload_url": f"{self.url}/upload/{fid}", "file_url": f"{self.url}/files/{fid}"})
        m = re.match(r"^/([^/]+)/([^/]+)/requests/([^/]+)", req.path)
        if not req.op or m is None:  # e.g. a status URL built with the sub-path, which fal does not serve
            return Reply(404, {"detail": "Not Found"})
        owner, app, rid = m.groups()
        job = self.jobs.get(rid)
        if job is None or job["app"] != f"{owner}/{app}":
            return Reply(404, {"detail": f"Request {rid} not found"})
        if req.op == "status":
            if req.method != "GET":
                return Reply(405, {"detail": "Method Not Allowed"})
            return self._status(job)
        if req.op == "cancel":
            if req.method != "PUT":
                return Reply(405, {"detail": "Method Not Allowed"})
            if job["state"] in ("done", "failed"):
                return Reply(400, {"status": "ALREADY_COMPLETED"})
            job["state"] = "canceled"
            return Reply(202, {"status": "CANCELLATION_REQUESTED"})
        if job["state"] not in ("done", "failed"):
            return Reply(400, {"detail": "Request is still in progress"})
        if job["state"] == "failed":
            return Reply(422, {"detail": [{"loc": ["body", "prompt"], "msg": job["fail"], "type": "value_error"}]})
        url = f"data:image/png;base64,{b64(png(7))}" if job["input"].get("sync_mode") else f"{self.url}/files/{rid}.png"
        return Reply(200, {"images": [{"url": url, "width": 48, "height": 40,
                                       "content_type": "image/png"}],
                           "seed": BIG_SEED, "has_nsfw_concepts": [False], "timings": {"inference": 0.25},
                           "prompt": job["input"].get("prompt")})

    def _submit(self, req: Req) -> Reply:
        parts = req.path.strip("/").split("/")
        if len(parts) < 2 or "/".join(parts[:2]) in self.missing_apps:
            return Reply(404, {"detail": f"Application '{'/'.join(parts[:2])}' not found"})
        body = req.json() or {}
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return Reply(422, {"detail": [{"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}]})
        rid = str(uuid.uuid4())
        app = "/".join(parts[:2])  # the returned URLs drop the sub-path, as fal's do
        self.jobs[rid] = {"app": app, "path": req.path, "input": body, "state": "queued", "fail": self.fail_with,
                          "completed_error": self.complete_with_error}
        base = f"{self.url}/{app}/requests/{rid}"
        return Reply(200, {"request_id": rid, "response_url": base, "status_url": f"{base}/status",
                           "cancel_url": f"{base}/cancel", "status": "IN_QUEUE", "queue_position": 0},
                     headers={"x-fal-request-id": rid})

    def _status(self, job: dict) -> Reply:
        if job["state"] == "canceled":
            return Reply(400, {"detail": "Request was cancelled"})
        state = self.advance(job)
        if state == "queued":
            return Reply(202, {"status": "IN_QUEUE", "queue_position": 2})
        if state == "running":
            return Reply(202, {"status": "IN_PROGRESS", "logs": [{"message": "step 3/28", "level": "INFO",
                                                                  "timestamp": "2026-01-01T00:00:00"}]})
        if job.get("completed_error"):
            return Reply(200, {"status": "COMPLETED", "logs": [], "error": job["completed_error"],
                               "error_type": "runner_disconnected"})
        return Reply(200, {"status": "COMPLETED", "logs": [], "metrics": {"inference_time": 0.25}})
