"""The studio server, the OIDC test provider, Chromium settings and page steps for the browser tests (a uniquely named module: several test
folders have a conftest, so tests import from here, not from `conftest`)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.ports import listening_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
KEY_ENVS = ("FAL_KEY", "REPLICATE_API_TOKEN", "OPENAI_API_KEY", "RUNPOD_API_KEY")
SLOW = 60_000  # ms: generous upper bounds, never fixed waits
PRIMARY = re.compile(r"Primary$")  # the star badge (case-sensitive: not "Set as primary")


def idle(page: Page) -> None:
    """Wait until no script run is in progress (Streamlit can drop input sent in the middle of a run)."""
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning", timeout=SLOW)


def nav(page: Page, title: str) -> None:
    idle(page)
    page.get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    idle(page)


def create_character(page: Page, name: str = "Mia", description: str = "A cheerful barista in a corner cafe") -> None:
    expect(page.get_by_role("button", name="Create character")).to_be_visible()
    idle(page)
    page.get_by_role("textbox", name="Name", exact=True).fill(name)
    page.get_by_role("textbox", name="Description", exact=True).fill(description)
    page.get_by_role("button", name="Create character").click()
    expect(page.get_by_text("Basic info")).to_be_visible()
    expect(page).to_have_url(re.compile(r"\?character=[0-9a-f]{32}"))
    idle(page)


def gallery_heading(page: Page, n: int):
    return page.get_by_role("heading", name=f"Gallery · {n} portrait{'s' if n != 1 else ''}")


class StudioServer:
    """`streamlit run studio_app.py` of the checkout at `root` (another tree: a benchmark's baseline);
    `env` adds variables (STUDIO_AUTH, a test plugin's settings, PYTHONPATH for its distribution);
    `args` more `streamlit run` options (--secrets.files ...)."""

    def __init__(self, home: Path, log: Path, env: dict[str, str] | None = None, args: list[str] | None = None,
                 root: Path = ROOT):
        self.home = home
        self.port: int | None = None  # streamlit picks it (port 0): known once it listens
        env = {**{k: v for k, v in os.environ.items() if k not in KEY_ENVS and not k.startswith("STUDIO_")},
               "STUDIO_HOME": str(home), "STUDIO_LOAD_PLUGINS": "", "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log_file = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "studio_app.py", "--server.headless", "true",
             "--server.port", "0", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             *(args or [])],
            # the shipped .streamlit/config.toml applies (no file watcher, no run-on-save): tests run it as deployed
            cwd=root, env=env, stdout=self.log_file, stderr=subprocess.STDOUT)

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


class OidcProvider:
    """tests/oidc/provider.mjs: a real OpenID Connect provider (oidc-provider) on a loopback port, with one
    confidential client whose redirect URI is a loopback /oauth2callback on any port."""

    DIR = ROOT / "tests" / "oidc"

    def __init__(self, log: Path, client_id: str, client_secret: str):
        node = shutil.which("node")
        if node is None or not (self.DIR / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError("The OIDC test provider is not installed: install Node.js 18+ and npm, then run "
                               "`npm ci --prefix tests/oidc` (.ci/run does both).")
        self.client_id, self.client_secret = client_id, client_secret
        self.log_file = log.open("w")
        self.proc = subprocess.Popen([node, "provider.mjs", client_id, client_secret], cwd=self.DIR,
                                     stdout=self.log_file, stderr=subprocess.STDOUT)
        try:
            self.issuer = f"http://127.0.0.1:{listening_port(self.proc, 30)}"
        except BaseException:
            self.stop()
            raise

    def secrets_toml(self, cookie_secret: str) -> str:
        """The [auth] section of a studio's secrets.toml for this provider (the README's example, on loopback)."""
        return (f'[auth]\nredirect_uri = "http://127.0.0.1:{{port}}/oauth2callback"\n'
                f'cookie_secret = "{cookie_secret}"\nclient_id = "{self.client_id}"\n'
                f'client_secret = "{self.client_secret}"\n'
                f'server_metadata_url = "{self.issuer}/.well-known/openid-configuration"\n'
                # Streamlit asks for prompt=select_account by default, which this provider does not offer.
                '[auth.client_kwargs]\nprompt = "login"\n')

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.log_file.close()
