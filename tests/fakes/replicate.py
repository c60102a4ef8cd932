"""A Replicate predictions API fake: problem+json errors, output as list or string, `data:` URIs,
failed/canceled/aborted predictions, the files API, tqdm-style progress in logs.

Follows Replicate's HTTP API reference (https://replicate.com/docs/reference/http: POST
/v1/models/{owner}/{name}/predictions and /v1/predictions with `version`, GET /v1/predictions/{id},
POST /v1/predictions/{id}/cancel, POST /v1/files, GET /v1/account; statuses starting, processing,
succeeded, failed, canceled, aborted) and its Python client, github.com/replicate/replicate-python
(`replicate/prediction.py`, `replicate/files.py`; `replicate/exceptions.py` reads errors as RFC 7807
problem details: `type`, `title`, `status`, `detail`). A 422 also lists `invalid_fields`, an
extension member the provider reads when present.

A create for a model Replicate does not serve on the official-model route answers 404 `{"detail": "The
requested resource could not be found.", "status": 404}`, and a create by a version that does not exist
(or the token may not use) answers 422 `{"title": "Invalid version or not permitted", "detail": "The
specified version does not exist (or perhaps you don't have permission to use it?)", "status": 422}`: the
API's answers as public client code records them. The fake serves every model and version except
`missing_models` (`owner/name`) and `missing_versions`.
"""
from __future__ import annotations

import re
import uuid

from providers.replicate import ReplicateProvider
from tests.fakes.base import FakeServer, Reply, Req, b64, png

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra) -> Reply:
    return Reply(status, {"title": title, "detail": detail, "status": status, **extra}, content_type=PROBLEM)


class ReplicateFake(FakeServer):
    provider_class = ReplicateProvider
    output_form = "list"  # "list" of URLs, a single URL "string", or "data" URIs
    end_state = "succeeded"  # or "failed" / "aborted" through fail_with

    def error_reply(self, status: int) -> dict:
        reply = problem(status, "Injected", f"injected error {status}")
        return {"status": status, "body": reply.body, "content_type": PROBLEM,
                "headers": {"ratelimit-reset": "0"} if status == 429 else {}}

    def env(self) -> dict[str, str]:
        return {"REPLICATE_API_TOKEN": self.key, "REPLICATE_BASE_URL": self.url}

    def route(self, req: Req) -> str:
        p = req.path
        if p.startswith("/files/"):
            return "file"
        if re.match(r"^/v1/models/[^/]+/[^/]+/predictions$", p) or p == "/v1/predictions" and req.method == "POST":
            return "submit"
        if re.match(r"^/v1/predictions/[^/]+/cancel$", p):
            return "cancel"
        if re.match(r"^/v1/predictions/[^/]+$", p):
            return "status"
        return {"/v1/account": "account", "/v1/files": "upload"}.get(p, "")

    def dispatch(self, req: Req) -> Reply:
        if req.op == "file":
            return Reply(raw=self.files.get(req.path, png(3)), content_type="image/png")
        if not self.authorized(req):
            return problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        if req.op == "account":
            return Reply(200, {"type": "user", "username": "tester", "name": "Tester"})
        if req.op == "upload":
            return self._upload(req)
        if req.op == "submit":
            return self._create(req)
        pid = req.path.split("/")[3]
        job = self.jobs.get(pid)
        if job is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        if req.op == "cancel":
            if req.method != "POST":
                return problem(405, "Method not allowed", "Use POST")
            if job["state"] not in ("done", "failed"):
                job["state"] = "canceled"
            return Reply(200, self._prediction(pid, job))
        if job["state"] != "canceled":
            self.advance(job)
        return Reply(200, self._prediction(pid, job))

    @property
    def files(self) -> dict[str, bytes]:
        return self.__dict__.setdefault("_files", {})

    def _upload(self, req: Req) -> Reply:
        ctype = req.headers.get("content-type", "")
        if "multipart/form-data" not in ctype or b'name="content"' not in req.body:
            return problem(400, "Bad request", "multipart field 'content' is required")
        fid = uuid.uuid4().hex[:12]
        self.files[f"/files/{fid}"] = req.body
        return Reply(201, {"id": fid, "name": "reference.png", "content_type": "image/png", "size": len(req.body),
                           "urls": {"get": f"{self.url}/files/{fid}"}})

    @property
    def missing_models(self) -> set[str]:
        return self.__dict__.setdefault("_missing_models", set())

    @property
    def missing_versions(self) -> set[str]:
        return self.__dict__.setdefault("_missing_versions", set())

    def _create(self, req: Req) -> Reply:
        body = req.json() or {}
        inp = body.get("input")
        if req.path != "/v1/predictions" and "/".join(req.path.split("/")[3:5]) in self.missing_models:
            return Reply(404, {"detail": "The requested resource could not be found.", "status": 404},
                         content_type=PROBLEM)
        if req.path == "/v1/predictions" and body.get("version") in self.missing_versions:
            return problem(422, "Invalid version or not permitted",
                           "The specified version does not exist (or perhaps you don't have permission to use it?)")
        if req.path == "/v1/predictions" and not body.get("version"):
            return problem(422, "Input validation failed", "- version: version is required",
                           invalid_fields=[{"type": "required", "field": "version", "description": "version is required"}])
        if not isinstance(inp, dict) or not inp.get("prompt"):
            return problem(422, "Input validation failed", "- input: prompt is required",
                           invalid_fields=[{"type": "required", "field": "input.prompt", "description": "prompt is required"}])
        pid = uuid.uuid4().hex[:20]
        model = req.path.split("/")[3] + "/" + req.path.split("/")[4] if req.path != "/v1/predictions" else None
        self.jobs[pid] = {"input": inp, "state": "queued", "fail": self.fail_with, "model": model,
                          "version": body.get("version") or "v" * 8, "end": self.end_state}
        return Reply(201, self._prediction(pid, self.jobs[pid]))

    def _prediction(self, pid: str, job: dict) -> dict:
        status = {"queued": "starting", "running": "processing", "done": "succeeded",
                  "canceled": "canceled", "failed": job["end"] if job["end"] != "succeeded" else "failed"}[job["state"]]
        output = None
        if status == "succeeded":
            url = f"{self.url}/files/{pid}.png"
            output = {"list": [url], "string": url, "data": [f"data:image/png;base64,{b64(png(5))}"]}[self.output_form]
        error = job["fail"] if status == "failed" else None
        logs = "Running predict()...\n 50%|█████     | 2/4 [00:01<00:01]\n" if status != "starting" else ""
        base = f"{self.url}/v1/predictions/{pid}"
        return {"id": pid, "model": job["model"] or "owner/model", "version": job["version"], "status": status,
                "input": job["input"], "output": output, "error": error, "logs": logs,
                "metrics": {"predict_time": 1.5} if status == "succeeded" else {},
                "urls": {"get": base, "cancel": f"{base}/cancel", "stream": f"{self.url}/stream/{pid}",
                         "web": f"https://replicate.com/p/{pid}"},
                "created_at": "2026-01-01T00:00:00Z", "started_at": None, "completed_at": None}
