"""Browser fixtures: `streamlit run studio_app.py` on a free loopback port with a temporary STUDIO_HOME,
driven by Playwright in Debian's headless Chromium (/usr/bin/chromium)."""
from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, StudioServer
from playwright.sync_api import expect

# Expectations wait up to 30 s (not Playwright's 5 s): on a busy 2-core machine a first page render can take longer.
expect.set_options(timeout=30_000)


@pytest.fixture
def server(tmp_path: Path):
    srv = StudioServer(tmp_path / "home", tmp_path / "streamlit.log")
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")  # not session: Playwright's sync API keeps an event loop running in the
def browser():                     # main thread while open, which breaks later tests that call asyncio.run()
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: install it with `apt-get install chromium` (Debian's package provides "
                    "/usr/bin/chromium, which these tests drive through Playwright).", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def page(browser, server, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    pg.goto(server.url)
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is None or rep.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        log = Path(server.log_file.name)
        if log.exists():
            (ARTIFACTS / f"{request.node.name}.streamlit.log").write_text(log.read_text())
    context.close()
