"""The Portraits page in Chromium against `streamlit run`: page load, "Set as primary" to the visible star,
opening a portrait, and the server's CPU time per page load. The base commit (before) and this checkout
(after) are measured in one run, side by side, on homes populated alike.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
import time
from pathlib import Path

from tests.benchmarks.harness import Figure, fresh_home, open_studio, summarise
from tests.browser.browser_helpers import CHROMIUM, CHROMIUM_ARGS, ROOT, StudioServer

SECTION = "browser"
PRIMARY = re.compile(r"Primary$")  # the tile's star badge, not its "Set as primary" button
SLOW = 60_000


def checkout(ref: str) -> Path:
    """The tree of `ref` (a commit or branch of this repository) in a temporary folder."""
    target = Path(tempfile.mkdtemp(prefix="studio-bench-base-"))
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def populate(home: Path, portraits: int) -> str:
    """A character with `portraits` offline portraits (1024 px PNGs and their thumbnails), made by the runner."""
    with open_studio(home) as studio:
        hero = studio.characters.create({"name": "Hero", "description": "The one with the gallery."})
        ids = [j.id for _ in range(0, portraits, 4) for j in studio.portraits.generate(hero.id, n=4)]
        done = studio.jobs.wait(ids, timeout=300)
        assert all(j.status == "completed" for j in done), [j.last_error for j in done]
        return hero.id


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _idle(page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning", timeout=SLOW)


def measure(browser, label: str, root: Path, home: Path, hero: str, total: int, repeat: int) -> list[Figure]:
    from playwright.sync_api import expect

    server = StudioServer(home, home.parent / f"streamlit-{label.split()[0]}.log", root=root)
    loads, cpu, stars, opens = [], [], [], []
    try:
        server.wait_healthy()
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        heading = page.get_by_role("heading", name=f"Gallery · {total} portraits")
        for i in range(repeat + 1):  # the first load warms the server (opens the Studio): left out
            c0, t0 = _cpu_s(server.proc.pid), time.perf_counter()
            page.goto(f"{server.url}/portraits?character={hero}")
            expect(heading).to_be_visible(timeout=SLOW)
            _idle(page)
            if i:
                loads.append((time.perf_counter() - t0) * 1000)
                cpu.append((_cpu_s(server.proc.pid) - c0) * 1000)
        for i in range(1, repeat + 1):
            tile = page.locator(f".st-key-tile-{i}")
            button = tile.get_by_role("button", name="Set as primary")
            expect(button).to_be_visible()
            t0 = time.perf_counter()
            button.click()
            expect(tile.get_by_text(PRIMARY)).to_be_visible(timeout=SLOW)
            stars.append((time.perf_counter() - t0) * 1000)
            _idle(page)
        for i in range(repeat):
            t0 = time.perf_counter()
            page.locator(f".st-key-tile-{i}").get_by_role("button", name="Open").click()
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_role("button", name="Regenerate")).to_be_visible(timeout=SLOW)
            expect(dialog.locator("img").first).to_be_visible()
            opens.append((time.perf_counter() - t0) * 1000)
            _idle(page)
            page.keyboard.press("Escape")
            expect(page.get_by_role("dialog")).to_have_count(0)
            _idle(page)
        context.close()
    finally:
        server.stop()
    where = f"[{label}; {total} portraits, 16 a page]"
    return [summarise(SECTION, f"Portraits page load to idle gallery {where}", loads, target="median <= 1500 ms"),
            summarise(SECTION, f"server CPU per Portraits page load {where}", cpu),
            summarise(SECTION, f"'Set as primary' to visible star {where}", stars, target="<= 500 ms"),
            summarise(SECTION, f"open a portrait (lightbox with image) {where}", opens)]


def run(repeat: int = 7, portraits: int = 24, baseline: str = "main") -> list[Figure]:
    """`baseline`: the commit measured as "before" (this checkout is "after")."""
    from playwright.sync_api import sync_playwright

    base = subprocess.run(["git", "rev-parse", "--short", baseline], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    variants = [(f"before: {baseline} {base}", checkout(baseline)), ("after: this checkout", ROOT)]
    figures = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            for label, root in variants:
                home = fresh_home("browser")
                hero = populate(home, portraits)
                figures += measure(browser, label, root, home, hero, portraits, repeat)
        finally:
            browser.close()
    return figures


if __name__ == "__main__":
    from tests.benchmarks.harness import machine_facts, render_table

    print(render_table(machine_facts(), run(repeat=3)))
