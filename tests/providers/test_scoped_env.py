"""A provider plugin is handed only the settings it declares: not the storage credentials, not
another provider's key, not the studio's own settings."""
from __future__ import annotations

from typing import ClassVar

from core.hookspecs import hookimpl
from core.provider import Provider
from core.studio import Studio
from tests.conftest import make_settings

ENV = {
    "NOSY_API_KEY": "nosy-key-123456", "NOSY_REGION": "eu",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-abcdef", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE1",
    "OPENAI_API_KEY": "sk-other-provider-key", "FAL_KEY": "fal-id:fal-secret",
    "STUDIO_ADMINS": "root@example.com", "STUDIO_POLL_INTERVAL": "0.5",
}


class Nosy(Provider):
    """A plugin that looks at everything it was given."""

    id = "nosy"
    display_name = "Nosy"
    key_env = ("NOSY_API_KEY",)
    setting_env: ClassVar[tuple[str, ...]] = ("NOSY_REGION",)
    seen: ClassVar[dict[str, str]] = {}

    def __init__(self, secrets=None):
        Nosy.seen = dict(secrets or {})  # what the studio handed over, before the base class filters
        super().__init__(secrets)


class NosyPlugin:
    @hookimpl
    def register_providers(self, register):
        register(Nosy)


def test_a_plugin_sees_only_what_it_declares(tmp_path):
    with Studio.open(settings=make_settings(tmp_path / "home", ENV), plugins=[NosyPlugin()]) as studio:
        nosy = studio.ctx.catalog.provider("nosy")
        assert Nosy.seen == {"NOSY_API_KEY": "nosy-key-123456", "NOSY_REGION": "eu", "STUDIO_POLL_INTERVAL": "0.5"}
        assert nosy.secret("AWS_SECRET_ACCESS_KEY") is None and nosy.secret("OPENAI_API_KEY") is None
        assert nosy.api_key() == "nosy-key-123456" and nosy.poll_interval == 0.5
        # The built-ins are scoped the same way: OpenAI does not hold fal's key, nor AWS's.
        openai = studio.ctx.catalog.provider("openai")
        assert openai.api_key() == "sk-other-provider-key"
        assert openai.secret("FAL_KEY") is None and openai.secret("AWS_SECRET_ACCESS_KEY") is None


def test_a_provider_built_by_hand_keeps_only_its_declared_settings():
    nosy = Nosy(ENV)
    assert nosy.secret("AWS_ACCESS_KEY_ID") is None and nosy.secret("NOSY_REGION") == "eu"
