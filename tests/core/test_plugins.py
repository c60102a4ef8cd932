"""Plugins: built-ins through the hook, an installed entry point, and STUDIO_LOAD_PLUGINS."""
from __future__ import annotations

import textwrap

import pytest

from core.plugins import collect_providers, make_plugin_manager
from core.studio import Studio
from tests.conftest import make_settings
from tests.plugin_site import install_distribution


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A real distribution on sys.path with a `character_studio` entry point."""
    site = tmp_path / "site"
    (site / "ep_sample_provider").mkdir(parents=True)
    (site / "ep_sample_provider" / "__init__.py").write_text(textwrap.dedent('''
        from core.hookspecs import hookimpl
        from core.models import ModelSpec
        from core.provider import Provider

        class SampleProvider(Provider):
            id = "ep-sample"
            display_name = "Entry-point sample"

            def default_models(self):
                return [ModelSpec(model_key="ep-sample/v1", display_name="EP sample v1")]

        @hookimpl
        def register_providers(register):
            register(SampleProvider)
    '''))
    install_distribution(site, "ep-sample-provider", "0.1", {"ep_sample": "ep_sample_provider"})
    monkeypatch.syspath_prepend(str(site))
    return "ep_sample"


def test_built_ins_register_through_the_hook():
    pm = make_plugin_manager("")
    providers = collect_providers(pm)
    assert "offline" in providers and pm.get_plugin("providers.offline") is not None


def test_an_entry_point_plugin_appears_in_the_catalog(tmp_path, installed_plugin):
    settings = make_settings(tmp_path / "home", {"STUDIO_LOAD_PLUGINS": installed_plugin})
    with Studio.open(settings=settings, start_runner=False) as s:
        assert "ep-sample" in {p.id for p in s.models.providers()}
        assert s.models.get("ep-sample/v1").display_name == "EP sample v1"


@pytest.mark.parametrize("load", ["", "some-other-plugin"])
def test_studio_load_plugins_excludes_it(tmp_path, installed_plugin, load):
    settings = make_settings(tmp_path / "home", {"STUDIO_LOAD_PLUGINS": load})
    with Studio.open(settings=settings, start_runner=False) as s:
        assert "ep-sample" not in {p.id for p in s.models.providers()}
        assert "offline" in {p.id for p in s.models.providers()}


def test_unset_load_plugins_loads_every_installed_plugin(installed_plugin):
    assert "ep-sample" in collect_providers(make_plugin_manager(None))


def test_register_refuses_what_is_not_a_provider():
    from core.hookspecs import hookimpl

    class Bad:
        @hookimpl
        def register_providers(self, register):
            register(object)

    with pytest.raises(TypeError, match="Provider subclasses"):
        collect_providers(make_plugin_manager("", [Bad()]))
