"""The plugin API's front door: one module to import from, and its version checked at load."""
from __future__ import annotations

import base64
import logging
import textwrap

import pytest

import core.plugin_api
from core.studio import Studio
from tests.conftest import make_settings
from tests.plugin_site import install_distribution

PLUGIN = '''
from core.plugin_api import ModelSpec, Provider, hookimpl

plugin_api_version = {version!r}

class P(Provider):
    id = {pid!r}
    display_name = "Plugin " + {pid!r}

    def default_models(self):
        return [ModelSpec(model_key={pid!r} + "/v1", display_name={pid!r} + " v1")]

@hookimpl
def register_providers(register):
    register(P)
'''


def install(site, dist: str, module: str, version: str, pid: str) -> None:
    """A real distribution on sys.path with a `character_studio` entry point."""
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(textwrap.dedent(PLUGIN.format(version=version, pid=pid)))
    install_distribution(site, dist, "0.3", {pid: module})


@pytest.fixture
def two_plugins(tmp_path, monkeypatch):
    site = tmp_path / "site"
    install(site, "future-plugin", "future_plugin", "9.0", "future")
    install(site, "current-plugin", "current_plugin", core.plugin_api.PLUGIN_API_VERSION, "current")
    monkeypatch.syspath_prepend(str(site))


def test_a_plugin_for_another_api_version_is_refused_and_the_others_load(two_plugins, tmp_path, caplog):
    caplog.set_level(logging.ERROR)
    with Studio.open(settings=make_settings(tmp_path / "home", {"STUDIO_LOAD_PLUGINS": "future,current"})) as studio:
        ids = {p.id for p in studio.models.providers()}
        assert "current" in ids and "future" not in ids
        assert "offline" in ids  # the built-ins load as ever
        plugins = {p.name: p for p in studio.plugins()}
        future, current = plugins["future"], plugins["current"]
        assert not future.loaded and future.api_version == "9.0" and future.providers == []
        assert "plugin API 9.0" in future.message and core.plugin_api.PLUGIN_API_VERSION in future.message
        assert current.loaded and current.distribution == "current-plugin" and current.version == "0.3"
        assert current.providers == ["current"]
        assert plugins["providers.offline"].builtin and plugins["providers.offline"].providers == ["offline"]
    assert any("'future' was not loaded" in r.getMessage() for r in caplog.records)


def test_the_built_ins_declare_the_api_version_as_a_third_party_does(studio):
    built_ins = [p for p in studio.plugins() if p.builtin]
    assert {p.name for p in built_ins} >= {"providers.offline", "providers.fal", "providers.gemini"}
    assert all(p.loaded and p.api_version == core.plugin_api.PLUGIN_API_VERSION for p in built_ins), built_ins


@pytest.mark.parametrize("declared,loads", [("1.0", True), (core.plugin_api.PLUGIN_API_VERSION, True), (None, True),
                                            ("1.99", False), ("2.0", False), ("0.9", False), ("one", False)])
def test_the_version_rule(declared, loads):
    from core.plugins import api_compatible

    assert (api_compatible(declared) is None) is loads


def test_the_front_door_exports_what_the_docs_use():
    for name in core.plugin_api.__all__:
        assert getattr(core.plugin_api, name) is not None, name


def test_generate_takes_a_model_key_and_the_job_shows_the_providers_progress_message(sample_plugin, tmp_path):
    import studio_sample_provider

    from core.plugin_api import hookimpl
    from tests.fakes.sample import AcmeFake
    from tests.providers.conftest import SENTINEL

    class Talkative(studio_sample_provider.AcmeProvider):
        async def poll(self, request_id, request):
            progress = await super().poll(request_id, request)
            progress.message = f"warming up the GPU for {request_id[:4]}"
            return progress

    class Plugin:
        @hookimpl
        def register_providers(self, register):
            register(Talkative)

    server = AcmeFake(SENTINEL)
    server.hold = True  # the job stays running until released
    try:
        from core.config import Settings
        from tests.providers.conftest import BASE_ENV

        studio = Studio.open(settings=Settings.from_env(home=tmp_path / "home", env={
            **server.env(), **BASE_ENV, "STUDIO_LOAD_PLUGINS": ""}), plugins=[Plugin()], retry_base=0.01)
        try:
            character = studio.characters.create({"name": "Ada", "description": "An engineer."})
            [job] = studio.portraits.generate(character.id, model="acme-v1")
            assert job.model_key == "acme-v1" and job.provider_id == "sample"
            server.wait_for(lambda s: any(j.get("polls", 0) >= 3 for j in s.jobs.values()))
            seen = studio.engine.runner.generation
            current = studio.jobs.get(job.id)
            for _ in range(100):  # each round waits for the runner's next job change (bounded)
                if current.progress_message:
                    break
                seen = studio.engine.runner.wait_for_change(0.2, seen)
                current = studio.jobs.get(job.id)
            assert current.progress_message and current.progress_message.startswith("warming up the GPU")
            server.release()
            done = studio.jobs.wait(job.id, timeout=20)[0]
            assert done.status == "completed" and done.progress_message is None
        finally:
            studio.close()
    finally:
        server.close()


def test_bare_base64_helper():
    from core.plugin_api import ReferenceImage

    ref = ReferenceImage(b"\x89PNG-bytes", "image/png", "abc")
    assert base64.b64decode(ref.base64()) == b"\x89PNG-bytes" and not ref.base64().startswith("data:")
