"""Who is signing in: the decisions of the three sign-in modes that need no web framework.

`STUDIO_AUTH` picks the mode (README, "Deploying for a team"):
- `local`: one local user, an admin, for loopback clients only;
- `oidc`: an OpenID Connect provider signs users in (the UI runs the flow); the user id is the
  issuer + subject of the ID token;
- `proxy`: an authenticating reverse proxy names the user in a header, trusted only from the
  configured proxy addresses.
The UI (ui/auth.py) feeds these functions what the request carries and renders their refusals.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.errors import InvalidSetting, StudioError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
DEFAULT_PROXY_HEADER = "X-Forwarded-Email"
MAX_USER_ID = 200  # as the users table takes it (core/studio.py `_ensure_user`)
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")
# The keys of secrets.toml's [auth] section that Streamlit's sign-in needs for its default provider.
OIDC_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")


class AuthMode(StrEnum):
    LOCAL = "local"
    OIDC = "oidc"
    PROXY = "proxy"


class SignInRefused(StudioError):
    """A request the sign-in mode does not let in; the message says why, fit to show the visitor."""

    code = "sign_in_refused"


@dataclass(frozen=True)
class Identity:
    """A signed-in user as the sign-in mode names them."""

    id: str
    display_name: str
    email: str | None = None


# -- settings --------------------------------------------------------------------------
def parse_mode(value: str | None) -> AuthMode:
    text = (value or "").strip().lower() or AuthMode.LOCAL.value
    try:
        return AuthMode(text)
    except ValueError:
        raise InvalidSetting("STUDIO_AUTH must be one of local, oidc, proxy.") from None


def parse_proxy_header(value: str | None) -> str:
    text = (value or "").strip() or DEFAULT_PROXY_HEADER
    if not _HEADER_NAME.match(text):
        raise InvalidSetting("STUDIO_AUTH_PROXY_HEADER must be an HTTP header name (letters, digits and '-').")
    return text


def parse_networks(value: str | None) -> tuple[Network, ...]:
    """Comma-separated addresses and CIDR blocks; unset or empty: loopback."""
    items = [part.strip() for part in (value or "").split(",") if part.strip()]
    if not items:
        return LOOPBACK
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in items)
    except ValueError:
        raise InvalidSetting("STUDIO_AUTH_TRUSTED_PROXIES must be comma-separated IP addresses or CIDR blocks "
                             "(e.g. 127.0.0.1, 10.0.0.0/8).") from None


# -- client addresses ------------------------------------------------------------------
def client_address(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client's address as a value (an IPv4-mapped IPv6 address as IPv4); None when unreadable."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_trusted(address: str | None, networks: tuple[Network, ...]) -> bool:
    ip = client_address(address)
    return ip is not None and any(ip.version == net.version and ip in net for net in networks)


def is_loopback(address: str | None) -> bool:
    return is_trusted(address, LOOPBACK)


# -- the modes -------------------------------------------------------------------------
def local_identity(address: str | None, local_user: str) -> Identity:
    """`local` mode: the local user, for a loopback client only."""
    if not is_loopback(address):
        raise SignInRefused(
            "This studio runs in local mode: it serves only the machine it runs on, as its one local admin. "
            "To let a team in, enable sign-in (STUDIO_AUTH=oidc or proxy; see the README, \"Deploying for a team\").")
    return Identity(local_user, local_user)


def proxy_identity(headers: Mapping[str, str], header: str, address: str | None, trusted: tuple[Network, ...],
                   local_user: str) -> Identity:
    """`proxy` mode: the user the proxy names in `header`, from a trusted proxy address only.
    `headers` must look names up without case (as HTTP does)."""
    if not is_trusted(address, trusted):
        raise SignInRefused(
            "This studio accepts requests only through its sign-in proxy, and this one did not come from it. "
            "Open the studio at your team's address.")
    value = (headers.get(header) or "").strip()
    if not value:
        raise SignInRefused(f"The sign-in proxy did not say who you are (no {header} header). "
                            "Sign in through your team's address, or ask the administrator to check the proxy.")
    if len(value) > MAX_USER_ID or not value.isprintable() or any(ch.isspace() for ch in value):
        raise SignInRefused(f"The sign-in proxy sent a {header} header the studio cannot use as a user name.")
    if "@" in value:
        value = value.lower()
    if value.lower() == local_user.lower():
        # The local user's data stays its own: a proxy cannot name that account.
        raise SignInRefused(f"The sign-in proxy named a reserved user ({header}).")
    return Identity(value, value, value if "@" in value else None)


def oidc_identity(claims: Mapping[str, Any]) -> Identity:
    """`oidc` mode: the user of an ID token's claims. The id is issuer + subject (an issuer has no '#', so
    `issuer#subject` is unambiguous); an email the provider marks unverified is not used."""
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not isinstance(issuer, str) or not issuer or not isinstance(subject, str) or not subject:
        raise SignInRefused("The sign-in provider's answer has no issuer or subject; sign in again.")
    user_id = f"{issuer}#{subject}"
    if len(user_id) > MAX_USER_ID:
        raise SignInRefused("The sign-in provider's user id is too long for the studio.")
    email = claims.get("email")
    if not isinstance(email, str) or not email.strip() or claims.get("email_verified") is False:
        email = None
    else:
        email = email.strip().lower()
    name = next((v for v in (claims.get("name"), claims.get("preferred_username"), email)
                 if isinstance(v, str) and v.strip()), subject)
    return Identity(user_id, name.strip(), email)


def missing_oidc_settings(section: Mapping[str, Any] | None) -> list[str]:
    """The keys of secrets.toml's [auth] section that sign-in needs and that are missing or empty."""
    section = section or {}
    return [key for key in OIDC_KEYS if not str(section.get(key) or "").strip()]
