"""A tiny loopback HTTP proxy in front of moto that injects S3 faults at the HTTP level.

Rules match by method (and optionally a path fragment) and fire a given number of times:
- ``status``: answer with an S3 error (e.g. 503 SlowDown, 500 InternalError) without forwarding;
- ``reset``: read the request, then reset the connection (TCP RST) without forwarding;
- ``drop_response``: forward the request (the object is written), then reset instead of answering.
"""
from __future__ import annotations

import http.client
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer", "upgrade"}


@dataclass
class Fault:
    method: str
    action: str  # status | reset | drop_response
    count: int = 1
    status: int = 503
    code: str = "SlowDown"
    path_contains: str = ""
    fired: int = 0


@dataclass
class Record:
    method: str
    path: str
    outcome: str


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.faults: list[Fault] = []
        self.log: list[Record] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _any(self):
                proxy._handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def outcomes(self, method: str | None = None, path_contains: str = "") -> list[str]:
        with self._lock:
            return [r.outcome for r in self.log if (method is None or r.method == method) and path_contains in r.path]

    # -- per request ---------------------------------------------------------------------
    def _pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.method == method and f.path_contains in path and f.fired < f.count:
                    f.fired += 1
                    return f
        return None

    def _record(self, method: str, path: str, outcome: str) -> None:
        with self._lock:
            self.log.append(Record(method, path, outcome))

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = _read_body(h)
        method, path = h.command, h.path
        fault = self._pick(method, path)
        if fault is not None and fault.action == "status":
            payload = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault.code}</Code>'
                       f"<Message>injected {fault.code}</Message><RequestId>fault</RequestId></Error>").encode()
            h.send_response(fault.status)
            h.send_header("Content-Type", "application/xml")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            if method != "HEAD":
                h.wfile.write(payload)
            self._record(method, path, f"{fault.status} {fault.code}")
            return
        if fault is not None and fault.action == "reset":
            self._record(method, path, "reset")
            _reset(h)
            return
        status, headers, data = self._forward(h, body)
        if fault is not None and fault.action == "drop_response":
            self._record(method, path, f"forwarded {status}, response dropped")
            _reset(h)
            return
        h.send_response(status)
        for k, v in headers:
            if k.lower() not in _HOP and k.lower() != "content-length":
                h.send_header(k, v)
        length = next((v for k, v in headers if k.lower() == "content-length"), None)
        h.send_header("Content-Length", length if method == "HEAD" and length is not None else str(len(data)))
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(data)
        self._record(method, path, str(status))

    def _forward(self, h: BaseHTTPRequestHandler, body: bytes):
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            conn.putrequest(h.command, h.path, skip_host=True, skip_accept_encoding=True)
            for k, v in h.headers.items():
                if k.lower() not in _HOP and k.lower() != "content-length":
                    conn.putheader(k, v)
            if body or h.command in ("PUT", "POST"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        finally:
            conn.close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # resets are on purpose
        pass


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
        out = bytearray()
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            out += h.rfile.read(size)
            h.rfile.readline()
    length = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(length) if length else b""


def _reset(h: BaseHTTPRequestHandler) -> None:
    """Abort the connection with a TCP RST (what a dropped load balancer connection looks like)."""
    h.close_connection = True
    try:
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()
    except OSError:
        pass
