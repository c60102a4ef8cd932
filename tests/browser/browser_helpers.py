"""The studio server and Chromium settings for the browser tests (a uniquely named module: several test
folders have a conftest, so tests import from here, not from `conftest`)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.ports import listening_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
KEY_ENVS = ("FAL_KEY", "REPLICATE_API_TOKEN", "OPENAI_API_KEY", "RUNPOD_API_KEY")
SLOW = 60_000  # ms: generous upper bounds, never fixed waits


def idle(page) -> None:
    """Wait until no script run is in progress (Streamlit can drop input sent in the middle of a run)."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning", timeout=SLOW)


class StudioServer:
    def __init__(self, home: Path, log: Path):
        self.home = home
        self.port: int | None = None  # streamlit picks it (port 0): known once it listens
        env = {k: v for k, v in os.environ.items() if k not in KEY_ENVS and not k.startswith("STUDIO_")}
        env.update(STUDIO_HOME=str(home), STUDIO_LOAD_PLUGINS="", PYTHONUNBUFFERED="1")
        self.log_file = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "studio_app.py", "--server.headless", "true",
             "--server.port", "0", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            # the shipped .streamlit/config.toml applies (no file watcher, no run-on-save): tests run it as deployed
            cwd=ROOT, env=env, stdout=self.log_file, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server's port is known once wait_healthy() has returned")
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        self.port = listening_port(self.proc, timeout)
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}; see {self.log_file.name}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError as exc:
                last = exc
            try:  # poll the health endpoint every 0.2 s while watching the process
                self.proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
        raise TimeoutError(f"streamlit did not become healthy in {timeout} s: {last}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.log_file.close()
