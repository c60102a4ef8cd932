"""A test provider plugin and the loopback HTTP server behind it, scripted through the prompt.

Tokens in the prompt choose the behaviour per job:
  [fail-submit-N]  the first N submissions answer 503 (Retry-After: 0)
  [throttle-N@S]   the first N submissions answer 429 with Retry-After: S (seconds)
  [permanent]      submission answers 422 with a message
  [fail-remote]    the job is accepted, then reported failed
  [fail-poll-N]    the first N status polls answer 503 (Retry-After: 0): a retry must resume, not resubmit
  [stall]          the job stays running until the test calls `release()`
  [hold-submit]    a submission (or one-shot generation: [hold-generate]) is held unanswered until `release()`
  [no-image]       the job completes without an image
  [malformed]      status polls answer a body without its `status` field
The server records submissions (accepted jobs) and the arrival times of every submission or
generation call per job id, and the most jobs in flight at once.
"""
from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

from core.hookspecs import hookimpl
from core.models import Capabilities, ModelSpec, ReferenceMapping
from core.provider import GenerationRequest, GenerationResult, Progress, Provider, Submission


def _png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 96), (seed * 37 % 256, seed * 91 % 256, 120)).save(out, "PNG")
    return out.getvalue()


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # socketserver's default of 5 drops bursts of connects (1 s SYN retries)

    def handle_error(self, request, client_address):
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a held answer to a killed studio
            super().handle_error(request, client_address)


class ScriptedServer:
    """Loopback server speaking a small submit/status/result/cancel API."""

    def __init__(self, latency: float = 0.0, image: bytes | None = None):
        self.latency = latency
        # A prepared result, encoded once as a real service would have it ready; else a small PNG per seed.
        self.image_b64 = base64.b64encode(image).decode() if image else None
        self.lock = threading.Condition()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.submissions: dict[str, int] = {}
        self.attempts: dict[str, int] = {}
        self.arrivals: dict[str, list[float]] = {}  # time.monotonic() of each submit/generate call per job
        self.canceled: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.released = False
        self.references: list[Any] = []
        self.httpd = _Server(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def release(self) -> None:
        with self.lock:
            self.released = True
            self.lock.notify_all()

    def wait_for(self, predicate, timeout: float = 20.0) -> None:
        """Block until `predicate(self)` holds (checked whenever the server's state changes)."""
        with self.lock:
            if not self.lock.wait_for(lambda: predicate(self), timeout):
                raise TimeoutError("scripted server condition not reached")

    def _finish(self, rid: str) -> None:
        job = self.jobs[rid]
        if not job.get("finished"):
            job["finished"] = True
            self.in_flight -= 1

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real provider APIs do
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, *args):
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                self.started = time.perf_counter()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path == "/generate":
                    return self._generate(body)
                if self.path == "/submit":
                    return self._submit(body)
                m = re.match(r"^/cancel/(\w+)$", self.path)
                if m:
                    with server.lock:
                        server.canceled.append(m.group(1))
                        if m.group(1) in server.jobs:
                            server.jobs[m.group(1)]["state"] = "canceled"
                            server._finish(m.group(1))
                        server.lock.notify_all()
                    return self._send(200, {"status": "canceled"})
                self._send(404, {"detail": "no such route"})

            def _script(self, body) -> tuple[str, str]:
                inp = body["input"]
                return inp["prompt"], inp["job_id"]

            def _arrived(self, job_id: str, prompt: str, hold: str) -> None:
                """Record the call; a held one waits (lock released) until the test releases the server."""
                server.arrivals.setdefault(job_id, []).append(time.monotonic())
                server.lock.notify_all()
                if hold in prompt:
                    server.lock.wait_for(lambda: server.released)

            def _submit(self, body):
                prompt, job_id = self._script(body)
                with server.lock:
                    self._arrived(job_id, prompt, "[hold-submit]")
                    n = server.attempts[job_id] = server.attempts.get(job_id, 0) + 1
                    if m := re.search(r"\[fail-submit-(\d+)\]", prompt):
                        if n <= int(m.group(1)):
                            server.lock.notify_all()
                            return self._send(503, {"detail": "temporarily overloaded"}, {"Retry-After": "0"})
                    if m := re.search(r"\[throttle-(\d+)@([\d.]+)\]", prompt):
                        if n <= int(m.group(1)):
                            server.lock.notify_all()
                            return self._send(429, {"detail": "slow down"}, {"Retry-After": m.group(2)})
                    if "[permanent]" in prompt:
                        server.lock.notify_all()
                        return self._send(422, {"detail": [{"loc": ["body", "prompt"], "msg": "prompt is not allowed", "type": "value_error"}]})
                    rid = f"r{len(server.jobs) + 1}"
                    server.jobs[rid] = {"job_id": job_id, "prompt": prompt, "seed": body["input"].get("seed", 0),
                                        "state": "running", "polls": 0}
                    if body["input"].get("image") is not None:
                        server.references.append(body["input"]["image"])
                    server.submissions[job_id] = server.submissions.get(job_id, 0) + 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.lock.notify_all()
                self._send(201, {"id": rid, "status": "queued"})

            def _generate(self, body):
                prompt, job_id = self._script(body)
                with server.lock:
                    self._arrived(job_id, prompt, "[hold-generate]")
                    server.submissions[job_id] = server.submissions.get(job_id, 0) + 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                if server.latency:
                    time.sleep(server.latency)  # the provider's own latency being simulated
                with server.lock:
                    server.in_flight -= 1
                    server.lock.notify_all()
                image = server.image_b64 or base64.b64encode(_png(body["input"].get("seed", 0))).decode()
                if "[no-image]" in prompt:
                    image = None
                # The provider's own time: from the request's arrival until its answer is ready.
                self._send(200, {"image": image, "server_ms": (time.perf_counter() - self.started) * 1000})

            def do_GET(self):
                m = re.match(r"^/(status|result)/(\w+)$", self.path)
                if not m or m.group(2) not in server.jobs:
                    return self._send(404, {"detail": "unknown request id"})
                kind, rid = m.groups()
                with server.lock:
                    job = server.jobs[rid]
                    job["polls"] += 1
                    server.lock.notify_all()
                    if kind == "status":
                        if (m := re.search(r"\[fail-poll-(\d+)\]", job["prompt"])) and job["polls"] <= int(m.group(1)):
                            return self._send(503, {"detail": "status temporarily unavailable"}, {"Retry-After": "0"})
                        if job["state"] == "canceled":
                            return self._send(200, {"status": "canceled"})
                        if "[malformed]" in job["prompt"]:
                            return self._send(200, {"state": "done"})
                        if "[fail-remote]" in job["prompt"]:
                            server._finish(rid)
                            server.lock.notify_all()
                            return self._send(200, {"status": "failed", "error": "the model crashed"})
                        if "[stall]" in job["prompt"] and not server.released:
                            return self._send(200, {"status": "running", "progress": 40})
                        return self._send(200, {"status": "done"})
                    server._finish(rid)
                    server.lock.notify_all()
                image = None if "[no-image]" in job["prompt"] else base64.b64encode(_png(job["seed"])).decode()
                self._send(200, {"image": image, "seed": job["seed"]})

        return Handler


def _payload(request: GenerationRequest) -> dict[str, Any]:
    return {"prompt": request.prompt, "seed": request.seed, "job_id": request.job_id,
            "width": request.width, "height": request.height}


class ScriptedProvider(Provider):
    id = "scripted"
    display_name = "Scripted test provider"
    base_url_env = "SCRIPTED_URL"
    key_env = ("SCRIPTED_KEY",)
    resumable = True
    default_concurrency = 4
    poll_interval = 0.01

    def default_models(self):
        return [
            ModelSpec(model_key="scripted/txt", display_name="Scripted", priority=50),
            ModelSpec(model_key="scripted/i2i", display_name="Scripted i2i", priority=40,
                      capabilities=Capabilities(supports_i2i=True, max_references=1,
                                                reference=ReferenceMapping(field="image", form="single"))),
        ]

    async def submit(self, request: GenerationRequest) -> Submission:
        payload = await self.place_references(_payload(request), request)
        response = await self.request("POST", "/submit", json={"input": payload})
        return Submission(response.json()["id"], payload)

    async def poll(self, request_id: str, request: GenerationRequest) -> Progress:
        body = (await self.request("GET", f"/status/{request_id}")).json()
        state = {"running": "running", "done": "completed", "failed": "failed", "canceled": "canceled"}[body["status"]]
        return Progress(state=state, percent=body.get("progress"), error=body.get("error"))

    async def result(self, request_id: str, request: GenerationRequest) -> GenerationResult:
        body = (await self.request("GET", f"/result/{request_id}")).json()
        images = [await self.download(body["image"])] if body["image"] else []
        return GenerationResult(images=images, seed=body.get("seed"))

    async def cancel(self, request_id: str) -> None:
        await self.request("POST", f"/cancel/{request_id}")


class ScriptedOneShot(ScriptedProvider):
    id = "scripted-oneshot"
    display_name = "Scripted one-shot provider"
    resumable = False

    def default_models(self):
        return [ModelSpec(model_key="scripted/oneshot", display_name="Scripted one-shot", priority=10)]

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        payload = _payload(request)
        t0 = time.perf_counter()
        body = (await self.request("POST", "/generate", json={"input": payload})).json()
        t1 = time.perf_counter()
        images = [await self.download(body["image"])] if body["image"] else []
        timings = {"http_ms": (t1 - t0) * 1000, "download_ms": (time.perf_counter() - t1) * 1000}
        return GenerationResult(images=images, inputs=payload, provider_ms=body["server_ms"], metadata=timings)


class ScriptedPlugin:
    @hookimpl
    def register_providers(self, register):
        register(ScriptedProvider)
        register(ScriptedOneShot)


plugin = ScriptedPlugin()


class ServerProcess:
    """The scripted server in its own process (for benchmarks: the provider must not share our GIL)."""

    def __init__(self, latency: float = 0.0, image_path: str | None = None):
        import subprocess
        import sys
        from pathlib import Path

        args = [sys.executable, "-m", "tests.engine.scripted", "--latency", str(latency)]
        if image_path:
            args += ["--image", image_path]
        self.proc = subprocess.Popen(args, cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.proc.kill()
            raise RuntimeError(f"scripted server did not start: {self.url!r}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


if __name__ == "__main__":
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description="Serve the scripted provider API on 127.0.0.1 until killed.")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--image", help="a prepared image file to return")
    opts = parser.parse_args()
    srv = ScriptedServer(latency=opts.latency, image=Path(opts.image).read_bytes() if opts.image else None)
    print(srv.url, flush=True)
    srv.thread.join()
