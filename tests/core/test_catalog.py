"""Catalog seeding, admin edits and model routing."""
from __future__ import annotations

import pytest

from core.errors import Forbidden, InvalidInput, ModelNotAvailable, NoImageModel, NoImageToImageModel
from core.hookspecs import hookimpl
from core.models import Capabilities, ModelSpec, ReferenceMapping
from core.provider import Provider
from core.studio import Studio
from tests.conftest import make_settings


class Keyed(Provider):
    id = "keyed"
    display_name = "Keyed"
    key_env = ("KEYED_KEY",)

    def default_models(self):
        return [
            ModelSpec(model_key="keyed/txt", display_name="Keyed txt", priority=10),
            ModelSpec(model_key="keyed/edit", display_name="Keyed edit", priority=5,
                      capabilities=Capabilities(supports_i2i=True, max_references=1, reference=ReferenceMapping(field="image_url"))),
        ]


class Plugin:
    @hookimpl
    def register_providers(self, register):
        register(Keyed)


def open_studio(tmp_path, **env):
    return Studio.open(settings=make_settings(tmp_path / "home", env), plugins=[Plugin()], start_runner=False)


def test_only_configured_providers_are_candidates(tmp_path):
    with open_studio(tmp_path) as s:
        assert s.models.route().model_key == "offline/preview"
        assert s.models.route(needs_i2i=True).model_key == "offline/preview-i2i"
        with pytest.raises(ModelNotAvailable, match="not configured"):
            s.models.route("keyed/txt")
    with open_studio(tmp_path, KEYED_KEY="k") as s:
        assert s.models.route().model_key == "keyed/txt"
        assert s.models.route(needs_i2i=True).model_key == "keyed/edit"
        assert s.models.i2i_count() == 2


def test_priority_activation_and_the_three_errors(tmp_path):
    with open_studio(tmp_path, KEYED_KEY="k") as s:
        by_key = {m.model_key: m for m in s.models.list()}
        s.models.update(by_key["keyed/edit"].id, {"priority": 50})
        assert s.models.route().model_key == "keyed/edit"
        s.models.set_active(by_key["keyed/edit"].id, False)
        assert s.models.route().model_key == "keyed/txt"
        with pytest.raises(ModelNotAvailable, match="not found or is inactive"):
            s.models.route(by_key["keyed/edit"].id)
        with pytest.raises(ModelNotAvailable, match="not found"):
            s.models.route("no/such-model")
        with pytest.raises(ModelNotAvailable, match="does not take a reference"):
            s.models.route("keyed/txt", needs_i2i=True)
        s.models.set_active(by_key["offline/preview-i2i"].id, False)
        with pytest.raises(NoImageToImageModel, match="No image-to-image model is available"):
            s.models.route(needs_i2i=True)
        assert s.models.i2i_count() == 0
        for m in s.models.list():
            s.models.set_active(m.id, False)
        with pytest.raises(NoImageModel, match="No image model is available"):
            s.models.route()


def test_seeding_is_idempotent_and_admin_edits_survive_a_restart(tmp_path):
    with open_studio(tmp_path) as s:
        model = s.models.get("offline/preview")
        s.models.update(model.id, {"priority": 99, "notes": "team default", "input_defaults": {"steps": 4}})
        s.models.update_provider("offline", {"concurrency_limit": 3})
        count = len(s.models.list(modality=None))
    with open_studio(tmp_path) as s:
        assert len(s.models.list(modality=None)) == count
        model = s.models.get("offline/preview")
        assert (model.priority, model.notes, model.input_defaults) == (99, "team default", {"steps": 4})
        assert next(p for p in s.models.providers() if p.id == "offline").concurrency_limit == 3


def test_admins_add_models_with_validated_fields_and_others_cannot(tmp_path):
    with open_studio(tmp_path, KEYED_KEY="k") as s:
        added = s.models.add("keyed", {"model_key": "keyed/new", "display_name": "New", "priority": 1,
                                       "capabilities": {"supports_i2i": True, "reference": {"field": "image_urls", "form": "list", "limit": 4}}})
        assert added.supports_i2i and added.capabilities.reference.form == "list"
        with pytest.raises(InvalidInput, match="already has"):
            s.models.add("keyed", {"model_key": "keyed/new", "display_name": "Again"})
        with pytest.raises(InvalidInput, match="reference"):
            s.models.add("keyed", {"model_key": "keyed/bad", "display_name": "Bad", "capabilities": {"reference": {"form": "many"}}})
        with pytest.raises(Forbidden):
            s.as_user("bob").models.set_active(added.id, False)


def test_provider_info_never_holds_the_key(tmp_path):
    with open_studio(tmp_path, KEYED_KEY="super-secret-value") as s:
        info = next(p for p in s.models.providers() if p.id == "keyed")
        assert info.configured and info.key_env == ["KEYED_KEY"]
        assert "super-secret-value" not in info.model_dump_json()
        assert s.models.only_preview() is False
    with open_studio(tmp_path) as s:
        assert s.models.only_preview() is True
