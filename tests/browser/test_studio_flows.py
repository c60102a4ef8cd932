"""Key flows in headless Chromium against `streamlit run studio_app.py` (offline preview provider)."""
from __future__ import annotations

import re

import pytest
from browser_helpers import SLOW, idle
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser
PRIMARY = re.compile(r"Primary$")  # the star badge (case-sensitive: not "Set as primary")


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


def test_create_generate_set_primary_and_reload(page: Page):
    create_character(page)
    # Text typed and then left by clicking straight on another page is saved and shown again on return.
    page.get_by_text("Personality & voice").click()
    idle(page)
    page.get_by_role("textbox", name="Persona", exact=True).fill("Warm, witty, remembers every order")
    page.get_by_role("link", name="Portraits", exact=True).click()  # straight from the field: one click
    expect(page.get_by_role("heading", name="Portraits", level=1)).to_be_visible()
    idle(page)
    nav(page, "Characters")
    page.get_by_text("Personality & voice").click()
    expect(page.get_by_role("textbox", name="Persona", exact=True)).to_have_value("Warm, witty, remembers every order")

    nav(page, "Portraits")
    page.get_by_role("button", name="Generate portrait").click()
    expect(gallery_heading(page, 1)).to_be_visible(timeout=SLOW)
    idle(page)
    page.get_by_role("button", name="Generate portrait").click()
    expect(gallery_heading(page, 2)).to_be_visible(timeout=SLOW)
    idle(page)
    # The first portrait became primary on its own; the newest (first tile) has "Set as primary".
    newest, older = page.locator(".st-key-tile-0"), page.locator(".st-key-tile-1")
    expect(older.get_by_text(PRIMARY)).to_be_visible()
    newest.get_by_role("button", name="Set as primary").click()
    expect(newest.get_by_text(PRIMARY)).to_be_visible()
    expect(older.get_by_role("button", name="Set as primary")).to_be_visible()
    idle(page)

    page.reload()
    expect(gallery_heading(page, 2)).to_be_visible(timeout=SLOW)
    expect(page).to_have_url(re.compile(r"\?character=[0-9a-f]{32}"))
    expect(page.locator(".st-key-tile-0").get_by_text(PRIMARY)).to_be_visible()
    expect(page.locator(".st-key-tile-1").get_by_role("button", name="Set as primary")).to_be_visible()
    expect(page.get_by_text("Primary portrait")).to_be_visible()


def test_three_at_once_tiles_turn_into_images(page: Page):
    create_character(page)
    nav(page, "Portraits")
    images = page.get_by_label("Images")
    images.fill("3")
    images.press("Enter")
    idle(page)
    page.get_by_role("button", name="Generate portrait").click()
    tiles = page.locator("[class*='st-key-jobtile-']")
    expect(tiles).to_have_count(3, timeout=SLOW)  # one tile per job, at once
    done = page.get_by_text(re.compile(r"Done · seed \d+"))
    expect(done).to_have_count(3, timeout=SLOW)
    expect(page.get_by_text("Generation · all done")).to_be_visible()
    expect(gallery_heading(page, 3)).to_be_visible(timeout=SLOW)
    for i in range(3):  # each finished tile shows its image
        expect(tiles.nth(i).locator("img")).to_have_count(1)
        expect(tiles.nth(i)).to_contain_text(re.compile(r"Done · seed \d+"))


def test_scene_create_and_generate_image(page: Page):
    create_character(page)
    nav(page, "Scenes")
    expect(page.get_by_text("No scenes yet")).to_be_visible()
    page.get_by_role("button", name="New scene").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    idle(page)
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("Rainy morning")
    dialog.get_by_role("textbox", name="Image prompt").fill("rain on the cafe window, warm light")
    dialog.get_by_role("button", name="Create scene").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_text("Rainy morning")).to_be_visible()
    expect(page.get_by_text("No image yet")).to_be_visible()
    idle(page)
    page.get_by_role("button", name="Generate scene image").click()
    expect(page.get_by_text(re.compile(r"Scene image · seed \d+"))).to_be_visible(timeout=SLOW)
    # The card's buttons open their dialogs (the cards are a fragment; the dialogs belong to the page).
    idle(page)
    page.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("textbox", name="Name", exact=True)).to_have_value("Rainy morning")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("Rainy evening")
    dialog.get_by_role("button", name="Save scene").click()
    expect(page.get_by_text("Rainy evening")).to_be_visible()
    idle(page)
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_text("No scenes yet")).to_be_visible()


def test_deactivated_model_leaves_the_portrait_selector(page: Page):
    create_character(page)
    nav(page, "Portraits")
    page.get_by_label("Model", exact=True).click()
    expect(page.get_by_role("option", name=re.compile(r"^Offline preview \(reference blend\)"))).to_be_visible()
    page.keyboard.press("Escape")
    nav(page, "Models")
    toggle = page.get_by_label("Offline preview (reference blend) active")
    expect(toggle).to_be_checked()
    toggle.click(force=True)
    idle(page)
    expect(page.get_by_label("Offline preview (reference blend) active")).not_to_be_checked()
    nav(page, "Portraits")
    expect(page.get_by_text("Image match: 0 image-to-image models available")).to_be_visible()
    page.get_by_label("Model", exact=True).click()
    expect(page.get_by_role("option", name=re.compile(r"^Offline preview\s+·"))).to_be_visible()
    expect(page.get_by_role("option", name=re.compile(r"reference blend"))).to_have_count(0)


def test_deep_link_on_a_fresh_server_opens_that_character(browser, tmp_path):
    """The very first request of a new server process is a link to a page and a character."""
    from browser_helpers import StudioServer

    from core import Studio
    from core.config import Settings

    home = tmp_path / "linked"
    with Studio.open(settings=Settings.from_env(home=home, env={"STUDIO_LOAD_PLUGINS": ""})) as studio:
        studio.characters.create({"name": "Mia", "description": "A barista"})
        sam = studio.characters.create({"name": "Sam Calloway", "description": "A detective"})
    server = StudioServer(home, tmp_path / "linked.log")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        server.wait_healthy()
        page.goto(f"{server.url}/scenes?character={sam.id}")
        expect(page.get_by_role("heading", name="Scenes", level=1)).to_be_visible(timeout=SLOW)
        expect(page.get_by_text("Scenes of Sam Calloway")).to_be_visible()
        expect(page.get_by_test_id("stSidebar").get_by_text("Signed in as")).to_be_visible()  # the frame ran
        expect(page.get_by_role("link", name="Portraits", exact=True)).to_be_visible()  # st.navigation titles
    except Exception:
        from browser_helpers import ARTIFACTS

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "test_deep_link_on_a_fresh_server.png"), full_page=True)
        raise
    finally:
        context.close()
        server.stop()
