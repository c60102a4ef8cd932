"""The gallery's lightbox in Chromium while a job completes in the background: a scripted loopback provider
runs in the test process and holds the job running until the test releases it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_helpers import ARTIFACTS, ROOT, StudioServer
from playwright.sync_api import Page, expect

from tests.engine.scripted import ScriptedServer
from tests.plugin_site import install_distribution

pytestmark = pytest.mark.browser
SLOW = 60_000


def idle(page: Page) -> None:
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning", timeout=SLOW)


def seed_of(dialog) -> str:
    return dialog.get_by_text(re.compile(r"^Seed: \d+$"))


@pytest.fixture
def scripted_home(tmp_path: Path):
    """A home with Mia and three offline portraits (seeds 100-102), and the scripted provider installed."""
    from core import Studio
    from core.config import Settings

    home = tmp_path / "home"
    with Studio.open(settings=Settings.from_env(home=home, env={"STUDIO_LOAD_PLUGINS": ""})) as studio:
        mia = studio.characters.create({"name": "Mia", "description": "A cheerful barista"})
        jobs = studio.portraits.generate(mia.id, n=3, seed=100)
        assert all(j.status == "completed" for j in studio.jobs.wait([j.id for j in jobs], timeout=60))
    install_distribution(tmp_path / "site", "studio-scripted-test", "0", {"scripted": "tests.engine.scripted:plugin"})
    provider = ScriptedServer()
    env = {"STUDIO_LOAD_PLUGINS": "scripted", "SCRIPTED_URL": provider.url, "SCRIPTED_KEY": "scripted-test-key",
           "PYTHONPATH": f"{tmp_path / 'site'}:{ROOT}"}
    server = StudioServer(home, tmp_path / "streamlit.log", env=env)
    try:
        server.wait_healthy()
        yield server, provider, mia
    finally:
        provider.release()
        server.stop()
        provider.close()


def test_lightbox_stays_on_its_portrait_while_a_job_completes(browser, scripted_home, request):
    server, provider, mia = scripted_home
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{server.url}/portraits?character={mia.id}")
        expect(page.get_by_role("heading", name="Gallery · 3 portraits")).to_be_visible(timeout=SLOW)
        idle(page)
        # A job on the scripted provider that stays running until released.
        page.get_by_label("Custom prompt").fill("[stall]")
        page.get_by_label("Model", exact=True).click()
        page.get_by_role("option", name="Scripted", exact=True).click()
        idle(page)
        page.get_by_role("button", name="Generate portrait").click()
        provider.wait_for(lambda srv: len(srv.jobs) == 1)
        expect(page.get_by_text("1 running")).to_be_visible()

        # Open the middle portrait and type a new prompt.
        idle(page)
        page.locator(".st-key-tile-1").get_by_role("button", name="Open").click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_text("2 of 3")).to_be_visible()
        shown = seed_of(dialog).inner_text().strip()
        idle(page)
        dialog.get_by_text("New seed").click()
        expect(dialog.get_by_label("New seed")).to_be_checked()
        idle(page)
        prompt = dialog.get_by_label("Prompt for regenerate")
        prompt.fill("")
        prompt.press_sequentially("in the rain")  # typed, not yet sent to the server
        page.keyboard.press("ArrowLeft")  # in the field: moves the caret, not the lightbox

        provider.release()  # the job completes while the lightbox is open
        expect(page.get_by_text("Generation · all done")).to_be_attached(timeout=SLOW)
        prompt.press_sequentially(" at night")  # still typing after the job finished
        expect(seed_of(dialog)).to_have_text(shown)
        expect(prompt).to_have_value("in the rai at nightn")
        expect(dialog.get_by_label("New seed")).to_be_checked()

        # Actions act on the shown portrait.
        prompt.press("Tab")
        idle(page)
        dialog.get_by_role("button", name="Set as primary").click()
        expect(dialog.get_by_text("Primary portrait")).to_be_visible()
        expect(seed_of(dialog)).to_have_text(shown)
        expect(dialog.get_by_text("3 of 4")).to_be_visible()  # the new portrait came first
        expect(prompt).to_have_value("in the rai at nightn")

        # Keys step through the gallery order; Esc closes.
        idle(page)
        dialog.get_by_text("3 of 4").click()  # focus out of the field
        page.keyboard.press("ArrowRight")
        expect(dialog.get_by_text("4 of 4")).to_be_visible()
        last = seed_of(dialog).inner_text().strip()
        idle(page)
        page.keyboard.press("ArrowLeft")
        expect(dialog.get_by_text("3 of 4")).to_be_visible()
        expect(seed_of(dialog)).to_have_text(shown)
        idle(page)
        page.keyboard.press("ArrowLeft")
        expect(dialog.get_by_text("2 of 4")).to_be_visible()
        first = seed_of(dialog).inner_text().strip()
        assert len({shown, last, first}) == 3, (shown, last, first)
        idle(page)
        page.keyboard.press("Escape")
        expect(page.get_by_role("dialog")).to_have_count(0)
        expect(page.get_by_role("heading", name="Gallery · 4 portraits")).to_be_visible(timeout=SLOW)
        expect(page.locator(".st-key-tile-2").get_by_text(re.compile(r"Primary$"))).to_be_visible()
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        raise
    finally:
        context.close()


@pytest.fixture
def three_portraits(tmp_path: Path):
    """A home with Mia and three offline portraits; their stored PNGs by id; the server on it."""
    from core import Studio
    from core.config import Settings

    home = tmp_path / "home"
    with Studio.open(settings=Settings.from_env(home=home, env={"STUDIO_LOAD_PLUGINS": ""})) as studio:
        mia = studio.characters.create({"name": "Mia", "description": "A cheerful barista"})
        jobs = studio.portraits.generate(mia.id, n=3)
        assert all(j.status == "completed" for j in studio.jobs.wait([j.id for j in jobs], timeout=60))
        stored = {p.id: studio.ctx.store.read(p.image_key) for p in studio.portraits.list(mia.id).items}
        order = [p.id for p in studio.portraits.list(mia.id).items]
    server = StudioServer(home, tmp_path / "streamlit.log")
    try:
        server.wait_healthy()
        yield server, mia, stored, order
    finally:
        server.stop()


def test_select_two_download_them_as_a_zip_then_delete_them_with_one_confirmation(browser, three_portraits, request):
    import io
    import zipfile

    server, mia, stored, order = three_portraits
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{server.url}/portraits?character={mia.id}")
        expect(page.get_by_role("heading", name="Gallery · 3 portraits")).to_be_visible(timeout=SLOW)
        idle(page)
        page.get_by_text("Select", exact=True).click()
        idle(page)
        for slot in (0, 2):
            page.locator(f".st-key-tile-{slot}").get_by_role("checkbox").check(force=True)
            idle(page)
        expect(page.get_by_text("2 selected")).to_be_visible()
        with page.expect_download() as download:
            page.get_by_role("button", name="Download selected").click()
        with zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())) as archive:
            got = {n: archive.read(n) for n in archive.namelist()}
        assert got == {f"mia-{pid[:8]}.png": stored[pid] for pid in (order[0], order[2])}
        idle(page)
        page.get_by_role("button", name="Delete selected").click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_text("Delete the 2 selected portraits")).to_be_visible()
        dialog.get_by_role("button", name="Delete 2").click()
        expect(page.get_by_role("heading", name="Gallery · 1 portrait")).to_be_visible(timeout=SLOW)
        expect(page.get_by_text("selected", exact=False)).to_have_count(0)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        raise
    finally:
        context.close()
