"""A loopback HTTP server base for provider fakes: routing, a request log, injected faults, holds.

Subclasses implement `dispatch(req) -> Reply` following the provider's public API definition,
cited at the top of each fake. Tests inject faults by operation name (`submit`, `status`,
`result`, `cancel`, ...): the next N requests of that operation answer the given status/body/
headers (a body or headers may be a function of the request, e.g. to echo its Authorization
header), hang until the server closes (a timeout), or drip the body a byte at a time.
Jobs progress one state per status call; `hold = True` keeps them running until released.
"""
from __future__ import annotations

import base64
import io
import json
import zlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image


def png(seed: int = 0, size: tuple[int, int] = (48, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (seed * 37 % 256, seed * 91 % 256, 120)).save(out, "PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def bomb_png(width: int, height: int) -> bytes:
    """A valid greyscale PNG of the given size, all black: a few hundred KB that decode to width*height
    bytes (a decompression bomb). Written row by row, so making it never holds the pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])  # 8-bit grey
    packer = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter byte + pixels
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    op: str = ""
    at: float = 0.0

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"


@dataclass
class Fault:
    status: int = 500
    body: Any = None  # JSON, raw bytes, or a function of the request giving either
    headers: dict[str, str] | Callable[[Req], dict[str, str]] = field(default_factory=dict)
    hang: bool = False
    times: int = 1
    content_type: str = "application/json"
    drip: float | None = None  # send the body one byte every `drip` seconds

    def reply(self, req: Req) -> Reply:
        body = self.body(req) if callable(self.body) else self.body
        headers = self.headers(req) if callable(self.headers) else self.headers
        raw = body if isinstance(body, bytes) else None
        return Reply(self.status, None if raw is not None else body, headers, raw=raw, content_type=self.content_type)


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 with a free port, run in a daemon thread."""

    def __init__(self, key: str):
        self.key = key
        self.lock = threading.Condition()
        self.log: list[Req] = []
        self.faults: dict[str, list[Fault]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.hold = False
        self.fail_with: str | None = None  # the next jobs fail provider-side with this message
        self._closing = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    # -- the conformance kit's Harness (core.testing) -------------------------------------------
    provider_class: type | None = None
    model_key: str | None = None
    takes_seed = True

    def secrets(self) -> dict[str, str]:
        return {**self.env(), "STUDIO_POLL_INTERVAL": "0.01", "STUDIO_PROVIDER_TIMEOUT": "5"}

    def inject(self, status: int) -> None:
        self.fault("submit", **self.error_reply(status))

    def error_reply(self, status: int) -> dict[str, Any]:
        """The service's error for an HTTP status (subclasses shape the body)."""
        return {"status": status, "body": {"detail": f"injected error {status}"},
                "headers": {"Retry-After": "0"} if status == 429 else {}}

    def submissions(self) -> int:
        with self.lock:
            return len(self.jobs)

    def received(self, value: bytes | str) -> bool:
        """Whether any request carried `value` (bytes raw or base64-encoded; text as is) in its body or URL."""
        needles = [value.encode()] if isinstance(value, str) else [value, base64.b64encode(value)]
        with self.lock:
            return any(n in r.body or n in r.path.encode() for r in self.log for n in needles)

    def fail_next(self, message: str | None) -> None:
        with self.lock:
            self.fail_with = message

    def cancellations(self) -> int:
        return self.count("cancel")

    # -- test API --------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """The environment that points the provider at this fake."""
        raise NotImplementedError

    def fault(self, op: str, status: int = 500, body: Any = None,
              headers: dict[str, str] | Callable[[Req], dict[str, str]] | None = None, *,
              hang: bool = False, times: int = 1, content_type: str = "application/json",
              drip: float | None = None) -> None:
        with self.lock:
            self.faults.setdefault(op, []).append(Fault(status, body, headers or {}, hang, times, content_type, drip))

    def release(self) -> None:
        with self.lock:
            self.hold = False
            self.lock.notify_all()

    def requests(self, op: str) -> list[Req]:
        with self.lock:
            return [r for r in self.log if r.op == op]

    def count(self, op: str) -> int:
        return len(self.requests(op))

    def wait_for(self, predicate: Callable[["FakeServer"], bool], timeout: float = 20.0) -> None:
        """Block until `predicate(self)` holds; re-checked on every request the server handles."""
        with self.lock:
            if not self.lock.wait_for(lambda: predicate(self), timeout):
                raise TimeoutError(f"fake {type(self).__name__} never reached the condition; log: "
                                   f"{[(r.method, r.path, r.op) for r in self.log]}")

    def close(self) -> None:
        self._closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- for subclasses ------------------------------------------------------------------------
    def route(self, req: Req) -> str:
        """The operation name of a request ('' for unknown routes)."""
        raise NotImplementedError

    def dispatch(self, req: Req) -> Reply:
        raise NotImplementedError

    def authorized(self, req: Req) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.key}"

    def advance(self, job: dict[str, Any]) -> str:
        """One status call: queued on the first, running on the second, then done (or failed); held jobs stay running."""
        job["polls"] = job.get("polls", 0) + 1
        if job["state"] == "queued" and job["polls"] >= 2:
            job["state"] = "running"
        elif job["state"] == "running" and not self.hold:
            job["state"] = "failed" if job.get("fail") else "done"
        return job["state"]

    # -- plumbing ------------------------------------------------------------------------------
    def _take_fault(self, op: str) -> Fault | None:
        queue = self.faults.get(op)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                if server._closing.is_set():  # closed: drop kept-alive connections without an answer
                    self.close_connection = True
                    return
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Req(self.command, parts.path, parse_qs(parts.query),
                          {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length) if length else b"",
                          at=time.monotonic())
                with server.lock:
                    req.op = server.route(req)
                    server.log.append(req)
                    fault = server._take_fault(req.op)
                    server.lock.notify_all()
                if fault is not None and fault.hang:
                    server._closing.wait(30)
                    return
                if fault is not None:
                    reply = fault.reply(req)
                    if fault.drip:
                        self._drip(reply, fault.drip)
                        return
                else:
                    with server.lock:
                        reply = server.dispatch(req)
                        server.lock.notify_all()
                self._send(reply)

            def _send(self, reply: Reply):
                data = reply.raw if reply.raw is not None else (b"" if reply.body is None else json.dumps(reply.body).encode())
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _drip(self, reply: Reply, interval: float):
                """Headers at once, then the body a byte per interval, until sent or the server closes."""
                data = reply.raw or b""
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    for i in range(len(data)):
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                        if server._closing.wait(interval):
                            break
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler
