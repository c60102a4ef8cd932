"""Catalog sync on a plugin upgrade: a second version of the sample plugin, installed in the test,
changes a model's capabilities, retires a model it dropped (not deleted, not routed to) and keeps
an admin's priority edit."""
from __future__ import annotations

import sys

import pytest

from core.errors import ModelNotAvailable
from core.studio import Studio
from tests.conftest import make_settings
from tests.providers.conftest import SAMPLE_PLUGIN_DIR
from tests.plugin_site import install_distribution

SOURCE = (SAMPLE_PLUGIN_DIR / "studio_sample_provider.py").read_text()
V1_EDIT = "capabilities=Capabilities(supports_i2i=True, max_references=1,"
V1_PLAIN = '            ModelSpec(model_key="acme-v1", display_name="Acme v1", priority=10),\n'


def install(site, module: str, source: str, version: str) -> None:
    """The sample plugin under another module name, as distribution `studio-sample-upgrade` `version`."""
    site.mkdir(parents=True)
    (site / f"{module}.py").write_text(source)
    install_distribution(site, "studio-sample-upgrade", version, {"sample-upgrade": module})


@pytest.fixture
def versions(tmp_path, monkeypatch):
    assert V1_EDIT in SOURCE and V1_PLAIN in SOURCE  # the sample's models, as version 2 changes them
    v2 = SOURCE.replace(V1_EDIT, "capabilities=Capabilities(supports_i2i=True, max_references=2,").replace(V1_PLAIN, "")
    install(tmp_path / "v1", "sample_upgrade_v1", SOURCE, "0.1.0")
    install(tmp_path / "v2", "sample_upgrade_v2", v2, "0.2.0")

    def use(version: str) -> None:
        for other in ("v1", "v2"):
            if str(tmp_path / other) in sys.path:
                sys.path.remove(str(tmp_path / other))
        monkeypatch.syspath_prepend(str(tmp_path / version))

    return use


def open_home(tmp_path) -> Studio:
    env = {"STUDIO_LOAD_PLUGINS": "sample-upgrade", "SAMPLE_API_KEY": "k-123456"}
    return Studio.open(settings=make_settings(tmp_path / "home", env), start_runner=False)


def models(studio):
    return {m.model_key: m for m in studio.models.list() if m.provider_id == "sample"}


def test_upgrading_the_plugin_syncs_its_models_and_keeps_admin_edits(versions, tmp_path):
    versions("v1")
    with open_home(tmp_path) as studio:
        before = models(studio)
        assert before["acme-v1-edit"].capabilities.max_references == 1
        studio.models.update(before["acme-v1-edit"].id, {"priority": 7})
        studio.models.update(before["acme-v1"].id, {"notes": "our house model"})
        assert studio.plugins()[-1].version == "0.1.0"

    versions("v2")
    with open_home(tmp_path) as studio:
        after = models(studio)
        assert studio.plugins()[-1].version == "0.2.0"
        edit, dropped = after["acme-v1-edit"], after["acme-v1"]
        assert edit.capabilities.max_references == 2  # the plugin's new capabilities
        assert edit.priority == 7 and edit.admin_fields == ["priority"]  # the admin's edit wins
        assert not edit.retired
        assert dropped.id == before["acme-v1"].id and dropped.retired and dropped.retired_by == "plugin"
        assert "no longer declares" in dropped.retired_reason and dropped.notes == "our house model"
        with pytest.raises(ModelNotAvailable, match="retired"):
            studio.models.route(dropped.id)
        assert studio.models.route(None).id != dropped.id

    versions("v1")  # a downgrade declares it again: the sync's retirement ends
    with open_home(tmp_path) as studio:
        again = models(studio)
        assert not again["acme-v1"].retired and again["acme-v1-edit"].capabilities.max_references == 1
        assert again["acme-v1-edit"].priority == 7


def test_a_model_an_admin_added_is_never_retired_by_a_sync(versions, tmp_path):
    versions("v1")
    with open_home(tmp_path) as studio:
        studio.models.add("sample", {"model_key": "acme-custom", "display_name": "Our tuned Acme"})
    with open_home(tmp_path) as studio:
        assert not models(studio)["acme-custom"].retired
