"""The `character_studio` plugin manager: built-ins, installed entry points, extra objects."""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Iterable, Mapping

import pluggy

from core import hookspecs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "character_studio"
DEFAULT_PLUGINS = (
    "providers.offline",
    "providers.fal",
    "providers.replicate",
    "providers.openai",
    "providers.runpod",
    "providers.gemini",
)


def make_plugin_manager(load_plugins: str | None = None, extra: Iterable[object] = ()) -> pluggy.PluginManager:
    """Build a plugin manager with the built-ins, the chosen installed plugins and `extra` objects.

    `load_plugins` is STUDIO_LOAD_PLUGINS: None loads every installed plugin; an empty string
    loads none; otherwise a comma-separated list of entry-point (or distribution) names.
    """
    pm = pluggy.PluginManager("character_studio")
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a built-in not written yet is simply absent
                continue
            raise
        pm.register(module, name=name)
    if load_plugins is None:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    elif load_plugins.strip():
        wanted = {n.strip() for n in load_plugins.split(",") if n.strip()}
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else None
            if ep.name in wanted or dist in wanted:
                if pm.get_plugin(ep.name) is None:
                    pm.register(ep.load(), name=ep.name)
    for obj in extra:
        pm.register(obj)
    return pm


def collect_providers(pm: pluggy.PluginManager) -> dict[str, type]:
    """Call every `register_providers` hook and return provider classes by id."""
    from core.provider import Provider

    found: dict[str, type] = {}

    def register(cls) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Provider)):
            raise TypeError(f"register_providers expects Provider subclasses, got {cls!r}")
        if cls.id in found and found[cls.id] is not cls:
            log.warning("provider %r registered twice; keeping %s", cls.id, found[cls.id].__qualname__)
            return
        found[cls.id] = cls

    pm.hook.register_providers(register=register)
    return found


def scoped_env(settings: Mapping[str, str], provider_cls: type) -> dict[str, str]:
    """The part of the settings a provider class declares (`Provider.declared_env`): the only
    mapping it is constructed with, so no plugin is handed another's key or the storage credentials."""
    declared = provider_cls.declared_env()
    return {k: v for k, v in settings.items() if k in declared}


def plugin_names(pm: pluggy.PluginManager) -> list[str]:
    return sorted(name for name, _ in pm.list_name_plugin())
