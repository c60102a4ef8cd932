"""Sign-in decisions (core/auth.py) and their settings: who a request is, and who is refused."""
from __future__ import annotations

import pytest

from core.auth import (AuthMode, SignInRefused, is_loopback, is_trusted, local_identity, missing_oidc_settings,
                       oidc_identity, parse_networks, proxy_identity)
from core.errors import InvalidSetting
from core.studio import Studio
from tests.conftest import make_settings


class Headers(dict):
    """Header lookup without case, as Streamlit's st.context.headers does it."""

    def get(self, name, default=None):
        return next((v for k, v in self.items() if k.lower() == name.lower()), default)


def test_defaults_are_local_mode_with_loopback_proxies(tmp_path):
    s = make_settings(tmp_path)
    assert s.auth is AuthMode.LOCAL
    assert s.auth_proxy_header == "X-Forwarded-Email"
    assert is_trusted("127.0.0.1", s.auth_trusted_proxies) and is_trusted("::1", s.auth_trusted_proxies)
    assert not is_trusted("10.0.0.2", s.auth_trusted_proxies)


def test_auth_settings_are_read_and_bad_values_name_the_variable(tmp_path):
    s = make_settings(tmp_path, {"STUDIO_AUTH": " Proxy ", "STUDIO_AUTH_PROXY_HEADER": "X-Auth-Request-Email",
                                 "STUDIO_AUTH_TRUSTED_PROXIES": "10.1.2.3, 192.168.0.0/16,fd00::/8"})
    assert s.auth is AuthMode.PROXY and s.auth_proxy_header == "X-Auth-Request-Email"
    assert is_trusted("10.1.2.3", s.auth_trusted_proxies) and is_trusted("192.168.77.1", s.auth_trusted_proxies)
    assert is_trusted("fd00::5", s.auth_trusted_proxies)
    assert not is_trusted("10.1.2.4", s.auth_trusted_proxies) and not is_trusted("127.0.0.1", s.auth_trusted_proxies)
    for env, name in [({"STUDIO_AUTH": "ldap"}, "STUDIO_AUTH"),
                      ({"STUDIO_AUTH_PROXY_HEADER": "X Email:"}, "STUDIO_AUTH_PROXY_HEADER"),
                      ({"STUDIO_AUTH_TRUSTED_PROXIES": "10.0.0.1, proxy.internal"}, "STUDIO_AUTH_TRUSTED_PROXIES"),
                      ({"STUDIO_AUTH_TRUSTED_PROXIES": "10.0.0.0/33"}, "STUDIO_AUTH_TRUSTED_PROXIES")]:
        with pytest.raises(InvalidSetting, match=name) as err:
            make_settings(tmp_path, env)
        assert "proxy.internal" not in err.value.message  # names the variable, not its value


def test_client_addresses():
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.10") and is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1")  # IPv4-mapped, as a dual-stack socket reports it
    for address in ("10.0.0.1", "::ffff:10.0.0.1", "192.168.1.10", "fe80::1%eth0", "", None, "localhost", "garbage"):
        assert not is_loopback(address), address
    assert is_trusted("fe80::1%eth0", parse_networks("fe80::/10"))
    assert parse_networks("") == parse_networks(None) == parse_networks(" , ")  # unset: loopback
    assert not is_trusted("127.0.0.1", parse_networks("127.0.0.2"))


def test_local_mode_serves_loopback_clients_only():
    assert local_identity("127.0.0.1", "local").id == "local"
    assert local_identity("::1", "me").id == "me"
    for address in ("10.0.0.7", "::ffff:192.168.1.3", None):
        with pytest.raises(SignInRefused, match="STUDIO_AUTH=oidc or proxy"):
            local_identity(address, "local")


def test_proxy_mode_believes_the_header_only_from_a_trusted_address():
    trusted = parse_networks("10.0.0.5")
    headers = Headers({"x-forwarded-email": " Alice@Example.COM "})
    who = proxy_identity(headers, "X-Forwarded-Email", "10.0.0.5", trusted, "local")
    assert (who.id, who.email) == ("alice@example.com", "alice@example.com")
    assert proxy_identity(Headers({"X-User": "bob"}), "X-User", "10.0.0.5", trusted, "local").email is None
    with pytest.raises(SignInRefused, match="did not come from"):
        proxy_identity(headers, "X-Forwarded-Email", "10.0.0.6", trusted, "local")
    with pytest.raises(SignInRefused, match="did not come from"):
        proxy_identity(headers, "X-Forwarded-Email", None, trusted, "local")
    with pytest.raises(SignInRefused, match="no X-Forwarded-Email header"):
        proxy_identity(Headers({"X-Other": "a@b"}), "X-Forwarded-Email", "10.0.0.5", trusted, "local")
    for bad in ("  ", "two words@x", "a\x00b@x", "x" * 201, "LOCAL"):
        with pytest.raises(SignInRefused):
            proxy_identity(Headers({"X-Forwarded-Email": bad}), "X-Forwarded-Email", "10.0.0.5", trusted, "local")


def test_oidc_user_is_issuer_and_subject():
    claims = {"iss": "https://idp.example", "sub": "248289761001", "email": "Jane@Example.com",
              "email_verified": True, "name": "Jane Doe"}
    who = oidc_identity(claims)
    assert (who.id, who.display_name, who.email) == ("https://idp.example#248289761001", "Jane Doe", "jane@example.com")
    # Same subject at another issuer is another user.
    assert oidc_identity({**claims, "iss": "https://other.example"}).id != who.id
    # An email the provider says is unverified names nobody (it could make anyone an admin).
    assert oidc_identity({**claims, "email_verified": False}).email is None
    assert oidc_identity({"iss": "https://idp.example", "sub": "7", "preferred_username": "jd"}).display_name == "jd"
    for bad in ({"sub": "1"}, {"iss": "https://idp.example"}, {"iss": "https://idp.example", "sub": ""},
                {"iss": "https://idp.example", "sub": "x" * 200}):
        with pytest.raises(SignInRefused):
            oidc_identity(bad)


def test_missing_oidc_settings():
    complete = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32,
                "client_id": "studio", "client_secret": "x", "server_metadata_url": "https://idp/.well-known/openid-configuration"}
    assert missing_oidc_settings(complete) == []
    assert missing_oidc_settings(None) == list(complete)
    assert missing_oidc_settings({**complete, "client_secret": " ", "cookie_secret": None}) == ["cookie_secret", "client_secret"]


@pytest.mark.parametrize("mode", ["oidc", "proxy"])
def test_with_sign_in_the_local_user_is_no_admin(tmp_path, mode):
    settings = make_settings(tmp_path / "home", {"STUDIO_AUTH": mode, "STUDIO_ADMINS": "boss@example.com"})
    assert not settings.is_admin("local")
    assert settings.is_admin("https://idp#1", "Boss@example.com")
    with Studio.open(settings=settings) as studio:
        assert not studio.actor.is_admin
        assert studio.ctx.db.scalar("SELECT count(*) FROM users") == 0  # the local user is nobody's account
        assert not studio.as_user("local").actor.is_admin
        assert studio.as_user("boss@example.com", email="boss@example.com").actor.is_admin
    assert make_settings(tmp_path / "other").is_admin("local")  # local mode: the local user administers
