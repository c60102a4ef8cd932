"""Sign-in and role-aware navigation through the whole app (AppTest): who gets in, what others see instead."""
from __future__ import annotations

import pytest

from tests.ui.ui_helpers import app_test, texts

AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "a-long-random-cookie-secret-0123",
        "client_id": "studio", "client_secret": "client-secret-value",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
JANE = {"is_logged_in": True, "iss": "http://127.0.0.1:9", "sub": "jane", "email": "jane@example.com", "name": "Jane"}


@pytest.fixture
def oidc(home, monkeypatch):
    monkeypatch.setenv("STUDIO_AUTH", "oidc")
    return home


def oidc_app(user: dict, secrets: dict | None = None):
    at = app_test()
    for key, value in (secrets or {"auth": AUTH}).items():
        at.secrets[key] = value
    at.user = user
    return at


def nothing_of_the_studio_ran(at) -> None:
    assert not at.exception
    assert not at.sidebar.selectbox  # no character picker
    assert not [b for b in at.button if b.label == "Create character"]


def test_the_local_user_is_the_admin_and_sees_models(at):
    at.run()
    assert not at.exception
    assert "Signed in as **local**" in texts(at)
    at.switch_page("pages/models.py").run()
    assert "Not available" not in texts(at) and not at.exception
    assert not [b for b in at.button if b.label == "Sign out"]  # local mode has no sign-out


def test_proxy_mode_without_the_header_is_refused(home, monkeypatch):
    monkeypatch.setenv("STUDIO_AUTH", "proxy")
    at = app_test().run()
    assert "no X-Forwarded-Email header" in texts(at)
    nothing_of_the_studio_ran(at)


def test_oidc_without_secrets_says_what_is_missing(oidc):
    at = oidc_app({"is_logged_in": False}, secrets={"OTHER": "x"})
    at.run()
    text = texts(at)
    assert "Sign-in is not configured" in text
    assert "redirect_uri, cookie_secret, client_id, client_secret, server_metadata_url" in text
    nothing_of_the_studio_ran(at)
    # Incomplete: only what is missing is named, and no secret value is shown.
    at = oidc_app({"is_logged_in": False}, secrets={"auth": {**AUTH, "client_id": ""}}).run()
    assert "lacks client_id." in texts(at) and AUTH["client_secret"] not in texts(at)


def test_oidc_signed_out_visitor_gets_the_sign_in_page(oidc):
    at = oidc_app({"is_logged_in": False}).run()
    assert [b.label for b in at.button] == ["Sign in"]
    assert "Sign in with your team's account" in texts(at)
    nothing_of_the_studio_ran(at)


def test_oidc_user_is_signed_in_and_a_non_admin_cannot_open_models(oidc, studio):
    at = oidc_app(JANE).run()
    assert not at.exception
    assert "Signed in as **Jane**" in texts(at)
    assert [b for b in at.sidebar.button if b.label == "Sign out"]
    assert studio.ctx.db.scalar("SELECT email FROM users WHERE id = ?", ["http://127.0.0.1:9#jane"]) == "jane@example.com"
    assert_models_closed(at)


def assert_models_closed(at) -> None:
    """The Models page file is no page of this user's navigation (its address shows "Not available" instead:
    tests/browser/test_sign_in.py opens it by URL; AppTest switches pages by file only)."""
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/models.py")


def test_oidc_admin_named_by_email_opens_models(oidc, monkeypatch):
    monkeypatch.setenv("STUDIO_ADMINS", "jane@example.com")
    at = oidc_app(JANE).run()
    at.switch_page("pages/models.py").run()
    assert not at.exception and "Not available" not in texts(at)
    # The same email unverified by the provider makes nobody an admin.
    assert_models_closed(oidc_app({**JANE, "email_verified": False}).run())


def test_another_users_public_character_has_no_generate_form_for_a_non_admin(oidc, studio):
    alice = studio.as_user("alice")
    olga = alice.characters.create({"name": "Olga", "description": "A baker.", "is_public": True})
    at = oidc_app(JANE)
    at.query_params["character"] = olga.id
    at.switch_page("pages/portraits.py").run()
    assert not at.exception
    assert "only its owner generates them" in texts(at)
    assert not [b for b in at.button if b.label.startswith("Generate")]
