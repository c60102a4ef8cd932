"""Sign-in for the app: who the request is, in the mode `STUDIO_AUTH` chooses (the decisions are core/auth.py's),
and the pages a visitor gets instead of the studio: refused, not configured, signed out, not available."""
from __future__ import annotations

import importlib.util
from typing import Any

import streamlit as st

from core.auth import (AuthMode, Identity, SignInRefused, local_identity, missing_oidc_settings, oidc_identity,
                       proxy_identity)
from core.config import Settings

# Pages only admins see in the navigation and may open (their url paths); others get `not_available`.
ADMIN_PAGES = ("models", "users")


class NotSignedIn(SignInRefused):
    """An `oidc` visitor who has not signed in yet."""


class SignInNotConfigured(SignInRefused):
    """`oidc` mode without a complete [auth] section in .streamlit/secrets.toml."""


def _client_address() -> str:
    # Streamlit reports a loopback client as None (st.context.ip_address); a run without a browser connection
    # (bare mode, AppTest's stand-in client) has no address string: neither is a network client.
    address = st.context.ip_address
    return address if isinstance(address, str) else "127.0.0.1"


def _auth_section() -> dict[str, Any]:
    try:
        section = st.secrets.to_dict().get("auth")
    except Exception:  # noqa: BLE001 - a missing or unreadable secrets file holds no [auth] section
        return {}
    return section if isinstance(section, dict) else {}


def identify(settings: Settings) -> Identity:
    """The signed-in user of this request; `SignInRefused` (or a subclass) when there is none."""
    if settings.auth is AuthMode.PROXY:
        return proxy_identity(st.context.headers, settings.auth_proxy_header, _client_address(),
                              settings.auth_trusted_proxies, settings.local_user)
    if settings.auth is AuthMode.OIDC:
        if importlib.util.find_spec("authlib") is None:
            raise SignInNotConfigured("Sign-in needs the Authlib package, which is missing here: reinstall the "
                                      "studio (`pip install -e .` installs `streamlit[auth]`) and restart it.")
        missing = missing_oidc_settings(_auth_section())
        if missing:
            raise SignInNotConfigured(
                "Sign-in is not configured: the [auth] section of .streamlit/secrets.toml lacks "
                + ", ".join(missing) + ". The administrator adds them (see the README, \"Deploying for a team\") "
                "and restarts the studio.")
        if not st.user.is_logged_in:
            raise NotSignedIn("Sign in to use the studio.")
        return oidc_identity(st.user.to_dict())
    return local_identity(_client_address(), settings.local_user)


def gate(settings: Settings, pages: list[Any]) -> Identity:
    """The signed-in user; otherwise the page that says why not (or offers sign-in), and the run stops there.
    The app's pages are registered with the menu hidden and none of them runs: without st.navigation Streamlit
    would list the pages/ folder, and an address such as /models would find no page."""
    try:
        return identify(settings)
    except SignInRefused as exc:
        refusal = exc
    st.navigation(pages, position="hidden")
    st.title("Character Studio")
    if isinstance(refusal, NotSignedIn):
        st.write("Sign in with your team's account to create characters and portraits.")
        st.button("Sign in", type="primary", icon=":material/login:", on_click=st.login)
    else:
        st.error(refusal.message, icon=":material/block:")
    st.stop()
    raise AssertionError("st.stop() ends the run")  # pragma: no cover


def sign_out_button(settings: Settings) -> None:
    """Sign-out in the sidebar (oidc; a proxy signs out at the proxy)."""
    if settings.auth is AuthMode.OIDC:
        st.sidebar.button("Sign out", icon=":material/logout:", on_click=st.logout)


def not_available() -> None:
    st.title("Not available")
    st.info("This page is for the studio's administrators. Ask one if you need something here.",
            icon=":material/lock:")


def pages_for(pages: list[Any], is_admin: bool) -> list[Any]:
    """The navigation for a role: an admin page stays at its address for everyone, but for others it is
    hidden from the menu and shows `not_available` (the facade refuses them in any case)."""
    if is_admin:
        return pages
    return [st.Page(not_available, title=p.title, icon=p.icon, url_path=p.url_path, visibility="hidden")
            if p.url_path in ADMIN_PAGES else p for p in pages]
