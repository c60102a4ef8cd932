"""A non-image reference upload (issue 15, finding 4): the error is shown beside the uploader, in plain words,
and the uploader drops the bad file."""
from __future__ import annotations

import pytest
from browser_helpers import SLOW, idle
from playwright.sync_api import Page, expect
from test_studio_flows import create_character, nav

pytestmark = pytest.mark.browser


def test_a_non_image_upload_is_refused_beside_the_uploader_which_drops_it(page: Page, tmp_path):
    create_character(page)
    nav(page, "Portraits")
    notes = tmp_path / "notes.png"  # named like an image, holding text
    notes.write_text("shopping list: milk, eggs")
    uploader = page.get_by_test_id("stFileUploader")
    expect(uploader).to_have_count(1)
    uploader.locator("input[type=file]").set_input_files(str(notes))
    # The message sits in the same block as the uploader (its next element), not at the top of the page.
    error = page.get_by_text("notes.png: The file is not an image the studio can read")
    expect(error).to_be_visible(timeout=SLOW)
    idle(page)
    beside = page.locator("[data-testid='stVerticalBlock']:has(> [data-testid='stElementContainer'] "
                          "[data-testid='stFileUploader'])").last
    expect(beside.get_by_text("The file is not an image the studio can read")).to_be_visible()
    assert "Pillow" not in error.inner_text()
    expect(page.get_by_test_id("stFileUploaderFile")).to_have_count(0)  # the bad file is gone from the uploader
