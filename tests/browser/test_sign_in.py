"""Sign-in in headless Chromium: `proxy` mode (two browser contexts sending different X-Forwarded-Email
headers) and `oidc` mode (a real OpenID Connect provider on loopback, tests/oidc, signing in two users through
its login form). In both, one user's private character, portraits and jobs never reach the other; a public
character is read-only to others and can be duplicated; only admins see and reach the admin pages.
One studio server per mode (module-scoped), several users per server."""
from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import pytest
from browser_helpers import ARTIFACTS, SLOW, OidcProvider, StudioServer, create_character, gallery_heading, idle, nav
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.browser
ALICE, BOB = "alice@example.test", "bob@example.test"  # the OIDC provider makes these emails from the logins


@contextmanager
def started(server: StudioServer) -> Iterator[StudioServer]:
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def proxy_server(tmp_path_factory) -> Iterator[StudioServer]:
    tmp = tmp_path_factory.mktemp("proxy")
    env = {"STUDIO_AUTH": "proxy", "STUDIO_AUTH_TRUSTED_PROXIES": "127.0.0.1", "STUDIO_ADMINS": ALICE}
    with started(StudioServer(tmp / "home", tmp / "streamlit.log", env=env)) as server:
        yield server


@pytest.fixture(scope="module")
def oidc_server(tmp_path_factory) -> Iterator[StudioServer]:
    tmp = tmp_path_factory.mktemp("oidc")
    try:
        provider = OidcProvider(tmp / "oidc-provider.log", "character-studio", secrets.token_urlsafe(24))
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        secrets_file = tmp / "secrets.toml"
        secrets_file.write_text(provider.secrets_toml(cookie_secret=secrets.token_urlsafe(32)))
        env = {"STUDIO_AUTH": "oidc", "STUDIO_ADMINS": ALICE}
        with started(StudioServer(tmp / "home", tmp / "streamlit.log", env=env,
                                  args=["--secrets.files", str(secrets_file)])) as server:
            yield server
    finally:
        provider.stop()


@contextmanager
def browser_page(browser: Browser, url: str, name: str, headers: dict[str, str] | None = None) -> Iterator[Page]:
    """A page in its own browser context (its own cookies), opened at `url`. Requests to anything but loopback
    are refused (the OIDC provider's form links a web font). A failure leaves a screenshot in test-artifacts/."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, extra_http_headers=headers)
    context.route(lambda u: not u.startswith("http://127.0.0.1:"), lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(url)
        yield page
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"sign_in-{name}.png"), full_page=True)
        raise
    finally:
        context.close()


def oidc_sign_in(page: Page, login: str) -> None:
    """The studio's sign-in page, then the provider's own login and consent forms, then back in the studio."""
    page.get_by_role("button", name="Sign in").click()
    page.get_by_placeholder("Enter any login").fill(login)
    page.get_by_placeholder("and password").fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # consent to the studio's scopes
    expect(page.get_by_text(f"Signed in as {login.capitalize()}")).to_be_visible(timeout=SLOW)
    idle(page)


def selected_id(page: Page) -> str:
    return parse_qs(urlsplit(page.url).query)["character"][0]


def make_public(page: Page) -> None:
    page.get_by_text("Advanced").click()
    page.get_by_text("Public (other users can see and use this character)").click()
    idle(page)
    nav(page, "Characters")  # leaving the editor saves it
    expect(page.get_by_text("public", exact=True).first).to_be_visible()


def picker_options(page: Page) -> list[str]:
    """The sidebar's character picker, opened: its option labels (closed again afterwards)."""
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible()
    labels = options.all_inner_texts()
    page.keyboard.press("Escape")
    return labels


def check_isolation_and_roles(url: str, alice: Page, bob: Page) -> None:
    """Alice (an admin by STUDIO_ADMINS) makes a private character with a portrait and a public one; Bob (no
    admin) finds nothing of the private one anywhere, sees the public one read-only, and no admin page."""
    create_character(alice, "Secret Sam", "A spy who keeps to the shadows")
    sam = selected_id(alice)
    nav(alice, "Portraits")
    alice.get_by_role("button", name="Generate portrait").click()
    expect(gallery_heading(alice, 1)).to_be_visible(timeout=SLOW)
    nav(alice, "Characters")
    alice.get_by_role("button", name="New character").click()
    create_character(alice, "Open Olga", "A friendly guide at the city gate")
    olga = selected_id(alice)
    make_public(alice)
    expect(alice.get_by_role("link", name="Models", exact=True)).to_be_visible()  # the admin's navigation

    bob.reload()
    expect(bob.get_by_role("heading", name="Characters", level=1)).to_be_visible()
    idle(bob)
    # Picker and list: the public character only.
    assert picker_options(bob) == ["Open Olga (public)"]
    expect(bob.get_by_text("Open Olga")).to_be_visible()
    expect(bob.get_by_text("Secret Sam")).to_have_count(0)
    # Search.
    bob.get_by_role("textbox", name="Search").fill("Secret")
    bob.get_by_role("textbox", name="Search").press("Enter")
    expect(bob.get_by_text("No characters match")).to_be_visible()
    idle(bob)
    # Direct links to the private character, on the editor and the gallery.
    for path in ("/", "/portraits"):
        bob.goto(f"{url}{path}?character={sam}")
        expect(bob.get_by_text("The character in the link was not found")).to_be_visible()
        idle(bob)
        expect(bob.get_by_text("Secret Sam")).to_have_count(0)
        expect(bob.get_by_role("heading", name=re.compile(r"Gallery · "))).to_have_count(0)
    # Queue: none of Alice's jobs.
    nav(bob, "Queue")
    expect(bob.get_by_role("heading", name="Jobs · 0")).to_be_visible()
    expect(bob.get_by_text("Secret Sam")).to_have_count(0)
    # The public character: read-only.
    bob.goto(f"{url}/?character={olga}")
    expect(bob.get_by_text("This is another user's public character")).to_be_visible()
    expect(bob.get_by_role("button", name="Delete")).to_have_count(0)
    # No admin page in the navigation, and none by its address.
    idle(bob)
    expect(bob.get_by_role("link", name="Queue", exact=True)).to_be_visible()
    expect(bob.get_by_role("link", name="Models", exact=True)).to_have_count(0)
    expect(bob.get_by_role("link", name="Users", exact=True)).to_have_count(0)
    not_available(bob, f"{url}/models")
    # Alice still has her private character and its portrait.
    alice.goto(f"{url}/portraits?character={sam}")
    expect(gallery_heading(alice, 1)).to_be_visible(timeout=SLOW)


def not_available(page: Page, address: str) -> None:
    page.goto(address)
    expect(page.get_by_role("heading", name="Not available", level=1)).to_be_visible()
    expect(page.get_by_text("for the studio's administrators")).to_be_visible()


def check_duplicate_and_users_page(url: str, alice: Page, bob: Page) -> None:
    """What lands with the `teams` work (pages/users.py, "Duplicate to my characters"): Alice (admin) has the
    Users page, Bob neither sees nor reaches it; Bob duplicates Alice's public character: the copy is his own,
    hers stays hers."""
    expect(alice.get_by_role("link", name="Users", exact=True)).to_be_visible()
    expect(bob.get_by_role("link", name="Users", exact=True)).to_have_count(0)
    not_available(bob, f"{url}/users")
    create_character(alice, "Shared Shay", "A bard who sings for everyone")
    shay = selected_id(alice)
    make_public(alice)
    bob.goto(f"{url}/?character={shay}")
    expect(bob.get_by_text("This is another user's public character")).to_be_visible()
    idle(bob)
    bob.get_by_role("button", name="Duplicate to my characters").click()
    # The copy opens in the editor as his own.
    expect(bob.get_by_role("textbox", name="Name", exact=True)).to_have_value("Shared Shay (copy)", timeout=SLOW)
    idle(bob)
    # His own copy (the picker marks others' characters "(public)"), beside her public original.
    options = picker_options(bob)
    assert "Shared Shay (public)" in options
    assert "Shared Shay (copy)" in options, options
    alice.goto(f"{url}/?character={shay}")
    expect(alice.get_by_role("button", name="Delete")).to_be_visible()


# -- proxy mode -------------------------------------------------------------------------
def test_proxy_users_are_isolated_and_only_admins_reach_admin_pages(browser, proxy_server):
    url = proxy_server.url
    with browser_page(browser, url, "proxy-alice", {"X-Forwarded-Email": ALICE}) as alice, \
            browser_page(browser, url, "proxy-bob", {"X-Forwarded-Email": BOB}) as bob:
        expect(alice.get_by_text(f"Signed in as {ALICE}")).to_be_visible(timeout=SLOW)
        expect(bob.get_by_text(f"Signed in as {BOB}")).to_be_visible(timeout=SLOW)
        check_isolation_and_roles(url, alice, bob)


def test_proxy_refuses_requests_from_elsewhere_and_without_the_header(browser, proxy_server):
    url = proxy_server.url
    # Through a loopback hop that names another client address (X-Forwarded-For), the request comes from that
    # address, which is no trusted proxy: the header it carries is not believed.
    elsewhere = {"X-Forwarded-Email": ALICE, "X-Forwarded-For": "203.0.113.9"}
    with browser_page(browser, url, "proxy-elsewhere", elsewhere) as page:
        expect(page.get_by_text("accepts requests only through its sign-in proxy")).to_be_visible(timeout=SLOW)
        expect(page.get_by_text("Signed in as")).to_have_count(0)
        expect(page.get_by_role("link", name="Characters")).to_have_count(0)
    with browser_page(browser, url, "proxy-no-header") as page:
        expect(page.get_by_text("no X-Forwarded-Email header")).to_be_visible(timeout=SLOW)
        expect(page.get_by_text("Signed in as")).to_have_count(0)
        page.goto(f"{url}/models")
        expect(page.get_by_text("no X-Forwarded-Email header")).to_be_visible(timeout=SLOW)
        expect(page.get_by_role("heading", name="Models")).to_have_count(0)


def test_proxy_users_page_is_admin_only_and_a_public_character_is_duplicated(browser, proxy_server):
    url = proxy_server.url
    with browser_page(browser, url, "proxy-dup-alice", {"X-Forwarded-Email": ALICE}) as alice, \
            browser_page(browser, url, "proxy-dup-bob", {"X-Forwarded-Email": BOB}) as bob:
        nav(alice, "Characters")
        alice.get_by_role("button", name="New character").click()
        check_duplicate_and_users_page(url, alice, bob)


# -- oidc mode --------------------------------------------------------------------------
def test_oidc_users_sign_in_are_isolated_and_only_admins_reach_admin_pages(browser, oidc_server):
    url = oidc_server.url
    with browser_page(browser, url, "oidc-alice") as alice, browser_page(browser, url, "oidc-bob") as bob:
        for page in (alice, bob):  # signed out: the sign-in page and nothing of the studio
            expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=SLOW)
            expect(page.get_by_role("link", name="Characters")).to_have_count(0)
        oidc_sign_in(alice, "alice")
        oidc_sign_in(bob, "bob")
        check_isolation_and_roles(url, alice, bob)
        # Sign-out in the sidebar ends the session, at the provider too (its confirmation): the sign-in page again.
        bob.get_by_role("button", name="Sign out").click()
        bob.get_by_role("button", name="Yes, sign me out").click()
        expect(bob.get_by_role("button", name="Sign in")).to_be_visible(timeout=SLOW)
        expect(bob.get_by_text("Signed in as")).to_have_count(0)


def test_oidc_users_page_is_admin_only_and_a_public_character_is_duplicated(browser, oidc_server):
    url = oidc_server.url
    with browser_page(browser, url, "oidc-dup-alice") as alice, browser_page(browser, url, "oidc-dup-bob") as bob:
        oidc_sign_in(alice, "alice")
        oidc_sign_in(bob, "bob")
        nav(alice, "Characters")
        alice.get_by_role("button", name="New character").click()
        check_duplicate_and_users_page(url, alice, bob)
