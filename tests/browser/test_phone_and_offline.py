"""The studio on a 390 x 844 phone, and offline: no request leaves the machine (issue 15, findings 7 and 8)."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser_helpers import ARTIFACTS, SLOW, StudioServer, idle
from playwright.sync_api import Page, expect

from core import Studio
from core.config import Settings

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}



@pytest.fixture(scope="module")
def seeded_home(tmp_path_factory) -> tuple[Path, str]:
    """A home with a dozen characters and finished jobs (the offline preview provider), and one character's id."""
    home = tmp_path_factory.mktemp("phone") / "home"
    with Studio.open(settings=Settings.from_env(home=home, env={"STUDIO_LOAD_PLUGINS": ""})) as studio:
        ids = [studio.characters.create({"name": f"Character number {i}", "description": "A long-legged heron",
                                         "appearance_tags": ["grey feathers", "yellow eyes"]}).id for i in range(12)]
        jobs = studio.portraits.generate(ids[0], n=2)
        studio.jobs.wait([j.id for j in jobs], timeout=60)
    return home, ids[0]


@pytest.fixture
def phone_server(seeded_home, tmp_path):
    home, cid = seeded_home
    server = StudioServer(home, tmp_path / "streamlit.log")
    try:
        server.wait_healthy()
        yield server, cid
    finally:
        server.stop()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def no_horizontal_overflow(page: Page, name: str) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    if widths[0] > widths[1]:
        _shot(page, f"overflow-{name}")
    assert widths[0] <= widths[1], f"{name}: the page is {widths[0]} px wide on a {widths[1]} px screen"


def test_phone_layout_characters_portraits_queue(browser, phone_server):
    server, cid = phone_server
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{server.url}/?character={cid}")
        expect(page.get_by_role("heading", name="Characters", level=1)).to_be_visible(timeout=SLOW)
        idle(page)
        # The editor comes before the list of twelve characters: its first field is on the first screen.
        name_box = page.get_by_role("textbox", name="Name", exact=True)
        expect(name_box).to_have_value("Character number 0")
        top = page.evaluate("() => window.scrollY") + name_box.bounding_box()["y"]
        assert top < PHONE["height"], f"the editor's Name field starts at {top} px, below the first screen"
        no_horizontal_overflow(page, "characters")

        page.goto(f"{server.url}/portraits?character={cid}")
        expect(page.get_by_role("heading", name="Portraits", level=1)).to_be_visible(timeout=SLOW)
        idle(page)
        no_horizontal_overflow(page, "portraits")

        page.goto(f"{server.url}/queue")
        expect(page.get_by_role("heading", name="Queue", level=1)).to_be_visible(timeout=SLOW)
        idle(page)
        no_horizontal_overflow(page, "queue")
        _shot(page, "phone-queue-top")
        row = page.locator("[class*='st-key-qrow-']").first
        expect(row).to_be_visible()
        # Stacked cells keep their labels, and the status pill is shown whole.
        for label in ("Status", "Character", "Model", "Stage", "Tries"):
            expect(row.get_by_text(label, exact=True)).to_be_visible()
        pill = row.get_by_text("completed", exact=True)
        expect(pill).to_be_visible()
        clipped = pill.evaluate("""el => { const r = el.getBoundingClientRect();
            for (let p = el.parentElement; p; p = p.parentElement) { const q = p.getBoundingClientRect();
              if (getComputedStyle(p).overflow !== 'visible' && (r.right > q.right + 0.5 || r.left < q.left - 0.5)) return true; }
            return el.scrollWidth > el.clientWidth + 0.5; }""")
        assert not clipped, "the status pill is clipped"
        row.scroll_into_view_if_needed()
        _shot(page, "phone-queue")
    except Exception:
        _shot(page, "test_phone_layout_failure")
        raise
    finally:
        context.close()


def test_no_request_leaves_the_machine_without_providers(browser, phone_server):
    server, cid = phone_server
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    hosts: list[str] = []
    context.on("request", lambda request: hosts.append(urlsplit(request.url).hostname or request.url))
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        for path in ("/", f"/portraits?character={cid}", "/scenes", "/queue", "/models"):
            page.goto(server.url + path)
            expect(page.get_by_test_id("stSidebar").get_by_text("Signed in as")).to_be_visible(timeout=SLOW)
            idle(page)
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
    outside = sorted({h for h in hosts if h not in LOCAL_HOSTS and not h.startswith(("data:", "blob:"))})
    assert hosts, "no request was recorded"
    assert outside == [], f"requests left the machine: {outside}"
