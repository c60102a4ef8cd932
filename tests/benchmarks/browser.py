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


class Variant:
    """One checkout served by `streamlit run` on its own home, driven in its own browser page."""

    def __init__(self, browser, label: str, root: Path, portraits: int):
        self.label = label
        self.home = fresh_home("browser")
        self.hero = populate(self.home, portraits)
        self.total = portraits
        self.server = StudioServer(self.home, self.home.parent / "streamlit.log", root=root)
        self.server.wait_healthy()
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.samples: dict[str, list[float]] = {k: [] for k in ("load", "cpu", "star", "star_cpu", "open", "open_cpu")}

    def close(self) -> None:
        self.context.close()
        self.server.stop()

    def load(self, record: bool = True) -> None:
        from playwright.sync_api import expect

        c0, t0 = _cpu_s(self.server.proc.pid), time.perf_counter()
        self.page.goto(f"{self.server.url}/portraits?character={self.hero}")
        expect(self.page.get_by_role("heading", name=f"Gallery · {self.total} portraits")).to_be_visible(timeout=SLOW)
        _idle(self.page)
        if record:
            self.samples["load"].append((time.perf_counter() - t0) * 1000)
            self.samples["cpu"].append((_cpu_s(self.server.proc.pid) - c0) * 1000)

    def star(self, slot: int) -> None:
        from playwright.sync_api import expect

        tile = self.page.locator(f".st-key-tile-{slot}")
        button = tile.get_by_role("button", name="Set as primary")
        expect(button).to_be_visible()
        c0, t0 = _cpu_s(self.server.proc.pid), time.perf_counter()
        button.click()
        expect(tile.get_by_text(PRIMARY)).to_be_visible(timeout=SLOW)
        self.samples["star"].append((time.perf_counter() - t0) * 1000)
        _idle(self.page)
        self.samples["star_cpu"].append((_cpu_s(self.server.proc.pid) - c0) * 1000)

    def open(self, slot: int) -> None:
        from playwright.sync_api import expect

        c0, t0 = _cpu_s(self.server.proc.pid), time.perf_counter()
        self.page.locator(f".st-key-tile-{slot}").get_by_role("button", name="Open").click()
        dialog = self.page.get_by_role("dialog")
        expect(dialog.get_by_role("button", name="Regenerate")).to_be_visible(timeout=SLOW)
        expect(dialog.locator("img").first).to_be_visible()
        self.samples["open"].append((time.perf_counter() - t0) * 1000)
        _idle(self.page)
        self.samples["open_cpu"].append((_cpu_s(self.server.proc.pid) - c0) * 1000)
        self.page.keyboard.press("Escape")
        expect(self.page.get_by_role("dialog")).to_have_count(0)
        _idle(self.page)

    def figures(self) -> list[Figure]:
        where = f"[{self.label}; {self.total} portraits, 16 a page]"
        return [summarise(SECTION, f"Portraits page load to idle gallery {where}", self.samples["load"],
                          target="median <= 1500 ms"),
                summarise(SECTION, f"server CPU per Portraits page load {where}", self.samples["cpu"]),
                summarise(SECTION, f"'Set as primary' to visible star {where}", self.samples["star"], target="<= 500 ms"),
                summarise(SECTION, f"server CPU per 'Set as primary' {where}", self.samples["star_cpu"]),
                summarise(SECTION, f"open a portrait (lightbox with image) {where}", self.samples["open"]),
                summarise(SECTION, f"server CPU per opened portrait {where}", self.samples["open_cpu"])]


def run(repeat: int = 7, portraits: int = 24, baseline: str = "main") -> list[Figure]:
    """`baseline`: the commit measured as "before" (this checkout is "after")."""
    from playwright.sync_api import sync_playwright

    base = subprocess.run(["git", "rev-parse", "--short", baseline], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    variants = [(f"before: {baseline} {base}", checkout(baseline)), ("after: this checkout", ROOT)]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        running: list[Variant] = []
        try:
            for label, root in variants:
                running.append(Variant(browser, label, root, portraits))
            # Turn by turn, so that both meet the same load on a shared machine.
            for v in running:
                v.load(record=False)  # the first load opens the Studio: left out
            for _ in range(repeat):
                for v in running:
                    v.load()
            for slot in range(1, repeat + 1):
                for v in running:
                    v.star(slot)
            for slot in range(repeat):
                for v in running:
                    v.open(slot)
        finally:
            for v in running:
                v.close()
            browser.close()
    return [f for v in running for f in v.figures()]


if __name__ == "__main__":
    from tests.benchmarks.harness import machine_facts, render_table

    print(render_table(machine_facts(), run(repeat=3)))
