"""The Compare page in Chromium: a 2 x 2 comparison (two prompt variants by Prompt S/R, two seeds) fills
in live; one cell kept from the lightbox shows in the gallery with its recipe."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_helpers import SLOW, StudioServer, gallery_heading, idle
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture
def mia_home(tmp_path: Path):
    from core import Studio
    from core.config import Settings

    home = tmp_path / "home"
    with Studio.open(settings=Settings.from_env(home=home, env={"STUDIO_LOAD_PLUGINS": ""})) as studio:
        mia = studio.characters.create({"name": "Mia", "description": "A cheerful barista"})
    server = StudioServer(home, tmp_path / "streamlit.log")
    try:
        server.wait_healthy()
        yield server, mia
    finally:
        server.stop()


def test_a_two_by_two_comparison_and_a_kept_cell_in_the_gallery(browser, mia_home):
    server, mia = mia_home
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{server.url}/compare?character={mia.id}")
        expect(page.get_by_role("heading", name="Compare: Mia")).to_be_visible(timeout=SLOW)
        idle(page)
        page.get_by_role("textbox", name="Prompt 1").fill("wearing a red coat")
        page.get_by_role("textbox", name="Prompt S/R (optional)").fill("red coat, blue scarf")
        page.get_by_role("textbox", name="Prompt S/R (optional)").press("Enter")
        expect(page.get_by_text(re.compile(r"4 cells \(2 prompts × 1 model × 2 seeds"))).to_be_visible(timeout=SLOW)
        idle(page)
        page.get_by_role("button", name="Run comparison").click()
        expect(page.get_by_text("4 of 4 done")).to_be_visible(timeout=SLOW)  # filled in by the polling grid
        idle(page)
        expect(page.get_by_text("Prompt 2:")).to_be_visible()
        page.get_by_text("Prompt 2:").scroll_into_view_if_needed()
        page.locator("[class*='st-key-cmp-open-']").get_by_role("button").nth(2).click()  # prompt 2, seed 1
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_text("Prompt: wearing a blue scarf")).to_be_visible()
        dialog.get_by_role("button", name="Keep", exact=True).click()
        expect(page.get_by_role("button", name="Kept in the gallery")).to_be_visible(timeout=SLOW)
        idle(page)
        page.goto(f"{server.url}/portraits?character={mia.id}")
        expect(gallery_heading(page, 1)).to_be_visible(timeout=SLOW)
        idle(page)
        page.locator("[class*='st-key-view-']").get_by_role("button", name="Open", exact=True).first.click()
        portrait = page.get_by_role("dialog")
        expect(portrait.get_by_text("Prompt: wearing a blue scarf")).to_be_visible()
        expect(portrait.get_by_text("Seed: 1", exact=True)).to_be_visible()
    finally:
        context.close()
