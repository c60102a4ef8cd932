"""A fake of the sample plugin's "Acme Images" API (tests/sample_plugin), as its author would write it."""
from __future__ import annotations

import re
import uuid

from tests.fakes.base import FakeServer, Reply, Req, b64, png


class AcmeFake(FakeServer):
    def __init__(self, key: str):
        super().__init__(key)
        import studio_sample_provider

        self.provider_class = studio_sample_provider.AcmeProvider

    def env(self) -> dict[str, str]:
        return {"SAMPLE_API_KEY": self.key, "SAMPLE_BASE_URL": self.url}

    def route(self, req: Req) -> str:
        if req.path == "/v1/jobs" and req.method == "POST":
            return "submit"
        if re.match(r"^/v1/jobs/[^/]+$", req.path):
            return "cancel" if req.method == "DELETE" else "status"
        return "me" if req.path == "/v1/me" else ""

    def dispatch(self, req: Req) -> Reply:
        if not self.authorized(req):
            return Reply(401, {"message": "bad key"})
        if req.op == "me":
            return Reply(200, {"user": "tester"})
        if req.op == "submit":
            body = req.json() or {}
            if not body.get("prompt"):
                return Reply(422, {"message": "prompt is required"})
            jid = uuid.uuid4().hex
            self.jobs[jid] = {"input": body, "state": "queued", "fail": self.fail_with}
            return Reply(202, {"id": jid, "state": "queued"})
        job = self.jobs.get(req.path.rsplit("/", 1)[1])
        if job is None:
            return Reply(404, {"message": "no such job"})
        if req.op == "cancel":
            job["state"] = "canceled"
            return Reply(204)
        state = job["state"]
        if state not in ("done", "failed", "canceled"):
            state = self.advance(job)
        out = {"queued": "queued", "running": "running", "done": "done", "failed": "error", "canceled": "canceled"}[state]
        return Reply(200, {"id": "x", "state": out, "error": job["fail"] if out == "error" else None,
                           "image_b64": b64(png(4)) if out == "done" else None})
