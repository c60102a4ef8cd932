"""Autosave tells the truth (issue 15, finding 2): typed text reaches the server without leaving the field,
the status never says "Saved" while the server lacks the text, and a new character's draft survives a reload."""
from __future__ import annotations

import pytest
from browser_helpers import SLOW, idle
from playwright.sync_api import Page, expect

from core import Studio
from core.config import Settings

pytestmark = pytest.mark.browser
TYPED = " She remembers every regular's order: café crème ☕ 🙂."  # beyond ASCII: the page's fingerprints



def warns_before_unload(page: Page) -> bool:
    return page.evaluate("() => { const ev = new Event('beforeunload', {cancelable: true}); "
                         "window.dispatchEvent(ev); return ev.defaultPrevented; }")


def server_text(browser, url: str) -> str:
    """The description as the server has it: read in a new browser session (nothing of this one's state)."""
    context = browser.new_context()
    try:
        other = context.new_page()
        other.goto(url)
        box = other.get_by_role("textbox", name="Description", exact=True)
        expect(box).to_be_visible(timeout=SLOW)
        idle(other)
        return box.input_value()
    finally:
        context.close()


def test_typed_text_is_saved_without_leaving_the_field_and_status_is_truthful(browser, tmp_path):
    from browser_helpers import StudioServer

    home = tmp_path / "home"
    with Studio.open(settings=Settings.from_env(home=home, env={"STUDIO_LOAD_PLUGINS": ""})) as studio:
        mia = studio.characters.create({"name": "Mia", "description": "A barista."})
    server = StudioServer(home, tmp_path / "streamlit.log")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        server.wait_healthy()
        url = f"{server.url}/?character={mia.id}"
        page.goto(url)
        box = page.get_by_role("textbox", name="Description", exact=True)
        expect(box).to_have_value("A barista.", timeout=SLOW)
        idle(page)
        saved = page.locator(".st-key-autosave-status").get_by_text("Saved")
        expect(saved).to_be_visible()
        box.click()
        page.keyboard.press("End")
        page.keyboard.type(TYPED, delay=20)
        # Typed, not yet on the server: the status does not say "Saved", and leaving would warn.
        expect(saved).to_be_hidden()
        assert warns_before_unload(page)
        # Without leaving the field, the text reaches the server; only then does the status say "Saved".
        expect(saved).to_be_visible(timeout=SLOW)
        assert page.evaluate("() => document.activeElement && document.activeElement.tagName") == "TEXTAREA"
        assert server_text(browser, url) == "A barista." + TYPED
        assert not warns_before_unload(page)
        page.reload()
        expect(page.get_by_role("textbox", name="Description", exact=True)).to_have_value("A barista." + TYPED,
                                                                                          timeout=SLOW)
    except Exception:
        from browser_helpers import ARTIFACTS

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "test_typed_text_is_saved.png"), full_page=True)
        raise
    finally:
        context.close()
        server.stop()


def test_an_unsubmitted_new_character_survives_a_reload(page: Page):
    expect(page.get_by_role("button", name="Create character")).to_be_visible(timeout=SLOW)
    idle(page)
    page.get_by_role("textbox", name="Name", exact=True).click()
    page.keyboard.type("Noor", delay=20)
    page.get_by_role("textbox", name="Description", exact=True).click()  # the name is committed on leaving it
    page.keyboard.type("A lighthouse keeper who paints storms", delay=20)
    # No click elsewhere: the description is sent while typing; the page says when the draft is kept.
    expect(page.get_by_text("Draft kept")).to_be_visible(timeout=SLOW)
    expect(page.get_by_text("Draft kept")).to_be_visible()
    idle(page)
    page.wait_for_function("() => !document.body.hasAttribute('data-cs-unsaved')", timeout=SLOW)
    page.reload()
    expect(page.get_by_role("textbox", name="Name", exact=True)).to_have_value("Noor", timeout=SLOW)
    expect(page.get_by_role("textbox", name="Description", exact=True)).to_have_value(
        "A lighthouse keeper who paints storms")
    page.get_by_role("button", name="Create character").click()
    expect(page.get_by_text("Basic info")).to_be_visible(timeout=SLOW)
    idle(page)
    page.reload()  # created: the draft is gone
    expect(page.get_by_role("textbox", name="Description", exact=True)).to_have_value(
        "A lighthouse keeper who paints storms", timeout=SLOW)  # now the editor's field, of the new character
    expect(page.get_by_text("Basic info")).to_be_visible()
