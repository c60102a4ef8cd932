"""Cold start: Studio.open() on a new and a populated home; `streamlit run` to health check and first page."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.benchmarks.gallery import populate
from tests.benchmarks.harness import Figure, fresh_home, summarise
from tests.ports import listening_port

ROOT = Path(__file__).resolve().parents[2]
OPEN = ("import sys, time; t = time.perf_counter(); from core.studio import Studio; from tests.conftest import make_settings; "
        "s = Studio.open(settings=make_settings(sys.argv[1])); print((time.perf_counter() - t) * 1000); s.close()")


def _open_in_fresh_process(home: Path) -> float:
    """Imports included: what a user waits for in a new notebook kernel."""
    out = subprocess.run([sys.executable, "-c", OPEN, str(home)], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return float(out.stdout.strip().splitlines()[0])


def studio_open(repeat: int = 5, characters: int = 10_000, portraits: int = 2_000) -> list[Figure]:
    new = [_open_in_fresh_process(fresh_home("cold-new")) for _ in range(repeat)]
    populated = fresh_home("cold-populated")
    from tests.benchmarks.harness import open_studio

    with open_studio(populated, start_runner=False) as studio:
        populate(studio, characters, portraits)
    again = [_open_in_fresh_process(populated) for _ in range(repeat)]
    return [summarise("cold start", "Studio.open() on a new home (new process, imports included)", new),
            summarise("cold start", f"Studio.open() on a populated home ({characters:,} characters)", again)], populated


def streamlit_first_page(home: Path, repeat: int = 3) -> list[Figure]:
    from playwright.sync_api import sync_playwright

    health, first = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            for _ in range(repeat):
                t0 = time.perf_counter()
                proc = subprocess.Popen(
                    [sys.executable, "-m", "streamlit", "run", "studio_app.py", "--server.headless", "true",
                     "--server.port", "0", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
                    cwd=ROOT, env={**os.environ, "STUDIO_HOME": str(home), "STUDIO_LOAD_PLUGINS": ""},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    port = listening_port(proc)
                    while True:
                        try:
                            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                                if r.status == 200:
                                    break
                        except OSError:
                            if proc.poll() is not None:
                                raise RuntimeError("streamlit exited during start-up") from None
                            time.sleep(0.05)  # polling a server that is starting: nothing to wait on
                    health.append((time.perf_counter() - t0) * 1000)
                    page = browser.new_page()
                    page.goto(f"http://127.0.0.1:{port}/")
                    page.get_by_role("heading", name="Characters").first.wait_for(timeout=60_000)
                    first.append((time.perf_counter() - t0) * 1000)
                    page.close()
                finally:
                    proc.terminate()
                    proc.wait(20)
        finally:
            browser.close()
    return [summarise("cold start", "`streamlit run` until the health check answers", health),
            summarise("cold start", "`streamlit run` until the Characters page has rendered (Chromium)", first,
                      note="populated home")]


def run(repeat: int = 5) -> list[Figure]:
    figures, populated = studio_open(repeat)
    return figures + streamlit_first_page(populated)


if __name__ == "__main__":
    from tests.benchmarks.harness import machine_facts, render_table

    print(render_table(machine_facts(), studio_open(3)[0]))
