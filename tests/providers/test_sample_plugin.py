"""The sample third-party plugin (tests/sample_plugin, installed as a distribution): it shows up in
the studio through its entry point, STUDIO_LOAD_PLUGINS can leave it out, and it passes the kit."""
from __future__ import annotations

import pytest

from core.config import Settings
from core.studio import Studio
from core.testing import ProviderConformance
from tests.fakes.sample import AcmeFake
from tests.providers.conftest import BASE_ENV, SENTINEL, assert_no_secret, finish, generate


@pytest.fixture
def acme(sample_plugin):
    server = AcmeFake(SENTINEL)
    yield server
    server.close()


def open_with(tmp_path, env: dict[str, str]) -> Studio:
    return Studio.open(settings=Settings.from_env(home=tmp_path / "home", env=env), retry_base=0.01)


def test_appears_in_the_catalog_and_generates(acme, tmp_path, sentinel_logs):
    studio = open_with(tmp_path, {**acme.env(), **BASE_ENV})  # STUDIO_LOAD_PLUGINS unset: every installed plugin
    try:
        providers = {p.id: p for p in studio.models.providers()}
        assert providers["sample"].display_name == "Acme Images (sample plugin)" and providers["sample"].configured
        assert {"acme-v1", "acme-v1-edit"} <= {m.model_key for m in studio.models.list() if m.provider_id == "sample"}
        assert "sample" in dict(studio.engine.plugin_manager.list_name_plugin())
        job = finish(studio, generate(studio, "sample", "acme-v1"))
        assert job.status == "completed", job.last_error
        assert studio.portraits.get(job.result_id).recipe.provider == "sample"
        assert_no_secret(studio)
    finally:
        studio.close()


@pytest.mark.parametrize("value,loaded", [("", False), ("sample", True), ("studio-sample-provider", True),
                                          ("some-other-plugin", False)])
def test_studio_load_plugins_selects_it(sample_plugin, tmp_path, value, loaded):
    studio = open_with(tmp_path, {"STUDIO_LOAD_PLUGINS": value})
    try:
        ids = {p.id for p in studio.models.providers()}
        assert ("sample" in ids) is loaded
        assert {"offline", "fal", "replicate", "openai", "runpod"} <= ids  # built-ins always load
    finally:
        studio.close()


class TestSamplePluginConformance(ProviderConformance):
    @pytest.fixture
    def harness(self, acme):
        return acme

    @pytest.fixture
    def plugin(self, sample_plugin):
        return sample_plugin.load()
