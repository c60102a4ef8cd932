"""The runpod SDK's local API server (`--rp_serve_api`) in a child process, for tests that drive a real
RunPod handler over HTTP (a uniquely named module: several test folders have a conftest)."""
from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVE_FLAGS = ["--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", "0"]


@contextmanager
def local_worker(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`python ARGS --rp_serve_api` on a loopback port it picks; yields its URL once uvicorn says where
    it listens (or raises with the process's output when it ends first). Terminated on exit."""
    proc = subprocess.Popen([sys.executable, *args, *SERVE_FLAGS], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    lines: list[str] = []
    for line in proc.stderr:  # blocks until the server reports it is listening (or the process ends)
        lines.append(line)
        if listening := re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line):
            port = int(listening.group(1))
            break
    else:
        proc.wait(10)
        raise RuntimeError("the runpod local worker did not start:\n" + "".join(lines))
    threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining its output
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
