"""Load: N scripted designers (headless Chromium sessions) against one `streamlit run` server.

Each session repeats: open the Portraits page (a direct page load), Generate one portrait and wait for its
done tile, open a portrait (the lightbox with its image). Per action, p50 and p95 over all sessions and
rounds; the server's CPU (user + system, from /proc of its process) per session, and the browser's CPU
(Chromium and Playwright's driver, the benchmark's own child processes) apart, since on a small machine
they compete with the server. The same home (copied) and script can be run against other checkouts (say,
the commit before a change, from a second `git worktree`) in the same run, for figures side by side.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.benchmarks.harness import Figure, fresh_home, open_studio
from tests.ports import listening_port

ROOT = Path(__file__).resolve().parents[2]
SECTION = "load"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SLOW_MS = 120_000
GALLERY = re.compile(r"Gallery · (\d+) portrait")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def seed(characters: int, portraits: int) -> tuple[Path, list[str]]:
    """A home with `characters` characters of `portraits` portraits each (offline preview provider)."""
    home = fresh_home("load")
    with open_studio(home) as studio:
        ids = []
        for i in range(characters):
            c = studio.characters.create({"name": f"Designer's character {i}", "description": "A lighthouse keeper",
                                          "appearance_tags": ["grey beard", "wool cap"]})
            ids.append(c.id)
            jobs = []
            for _ in range(0, portraits, 4):
                jobs += studio.portraits.generate(c.id, n=min(4, portraits - len(jobs)))
            studio.jobs.wait([j.id for j in jobs], timeout=600)
    return home, ids


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (of the process, its threads included)
    return total / CLK_TCK


def _descendants(root: int, exclude: int | None = None) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child != exclude:
                found.append(child)
                frontier.append(child)
    return found


class Server:
    def __init__(self, app_root: Path, home: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_") and not k.endswith(("_KEY", "_TOKEN"))}
        env.update(STUDIO_HOME=str(home), STUDIO_LOAD_PLUGINS="", PYTHONPATH=str(app_root))
        # The checkout's own .streamlit/config.toml applies (that is part of what is compared).
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "studio_app.py", "--server.headless", "true",
             "--server.port", "0", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=app_root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = listening_port(self.proc, 60)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("streamlit did not start") from None
                try:
                    self.proc.wait(timeout=0.1)  # watch the process while the server starts
                except subprocess.TimeoutExpired:
                    pass

    def cpu(self) -> float:
        return _cpu_seconds([self.proc.pid])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


async def _idle(page) -> None:
    await page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=SLOW_MS)


async def _gallery_count(page) -> int:
    heading = page.get_by_role("heading", name=GALLERY)
    await heading.wait_for(timeout=SLOW_MS)
    return int(GALLERY.search(await heading.inner_text()).group(1))


async def _session(browser, url: str, character_id: str, rounds: int, times: dict[str, list[float]]) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(SLOW_MS)
    try:
        for _ in range(rounds):
            t0 = time.perf_counter()
            await page.goto(f"{url}/portraits?character={character_id}")
            count = await _gallery_count(page)
            await page.locator(".st-key-tile-0 img").first.wait_for()
            await _idle(page)
            times["open the Portraits page"].append((time.perf_counter() - t0) * 1000)

            t0 = time.perf_counter()
            await page.get_by_role("button", name="Generate portrait").click()
            await page.get_by_role("heading", name=re.compile(rf"Gallery · {count + 1} portrait")).wait_for()
            await _idle(page)
            times["Generate to a done tile"].append((time.perf_counter() - t0) * 1000)

            t0 = time.perf_counter()
            await page.locator(".st-key-tile-0").get_by_role("button", name="Open").click()
            dialog = page.get_by_role("dialog")
            await dialog.locator("img").first.wait_for()
            await page.wait_for_function(
                "() => [...document.querySelectorAll('[role=dialog] img')].every(i => i.complete && i.naturalWidth > 0)",
                timeout=SLOW_MS)
            await _idle(page)
            times["open a portrait"].append((time.perf_counter() - t0) * 1000)
            await page.keyboard.press("Escape")
            await _idle(page)
    finally:
        await context.close()


async def _drive(url: str, ids: list[str], sessions: int, rounds: int, server_pid: int) -> tuple[dict, float, float]:
    from playwright.async_api import async_playwright

    times: dict[str, list[float]] = {"open the Portraits page": [], "Generate to a done tile": [], "open a portrait": []}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            own = [p for p in _descendants(os.getpid(), exclude=server_pid)]
            before = _cpu_seconds(own)
            t0 = time.perf_counter()
            await asyncio.gather(*(_session(browser, url, ids[i % len(ids)], rounds, times) for i in range(sessions)))
            wall = time.perf_counter() - t0
            browser_cpu = _cpu_seconds([p for p in _descendants(os.getpid(), exclude=server_pid)]) - before
        finally:
            await browser.close()
    return times, browser_cpu, wall


def _pct(samples: list[float], q: int) -> float:
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[q - 1]


def run_against(label: str, app_root: Path, seeded: Path, ids: list[str], sessions: int, rounds: int) -> list[Figure]:
    home = fresh_home("load-run")
    shutil.copytree(seeded, home)
    server = Server(app_root, home)
    try:
        warm = asyncio.run(_drive(server.url, ids, 1, 1, server.proc.pid))  # first compile and caches: not counted
        del warm
        cpu0 = server.cpu()
        times, browser_cpu, wall = asyncio.run(_drive(server.url, ids, sessions, rounds, server.proc.pid))
        server_cpu = server.cpu() - cpu0
    finally:
        server.stop()
    figures = []
    for action, samples in times.items():
        figures.append(Figure(SECTION, f"{action} [{label}]", _pct(samples, 50), f"p95 {_pct(samples, 95):.0f}", "ms",
                              len(samples), note=f"{sessions} sessions x {rounds} rounds", samples=sorted(samples)))
    figures.append(Figure(SECTION, f"server CPU per session [{label}]", server_cpu / sessions * 1000, "single run",
                          "ms", 1, note=f"{server_cpu / wall * 100:.0f}% of a core for {sessions} sessions over {wall:.0f} s"))
    figures.append(Figure(SECTION, f"browser CPU per session, apart [{label}]", browser_cpu / sessions * 1000,
                          "single run", "ms", 1, note="Chromium and Playwright's driver"))
    return figures


def run(sessions: int = 3, rounds: int = 4, characters: int = 20, portraits: int = 12,
        compare: dict[str, Path] | None = None) -> list[Figure]:
    """The load run on this checkout and on each checkout in `compare` (label -> path), on copies of one home."""
    seeded, ids = seed(characters, portraits)
    figures = []
    for label, root in {**(compare or {}), "this checkout": ROOT}.items():
        figures += run_against(label, Path(root), seeded, ids, sessions, rounds)
    return figures
