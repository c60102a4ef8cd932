"""The `character_studio` plugin manager: built-ins, installed entry points, extra objects.

Every plugin object declares the plugin API it was built for (`plugin_api_version = "1.0"`); one
built for another major version, or a newer minor one, is refused (logged, and listed by
`plugin_report`) and the others still load. See docs/plugins.md.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

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
    "providers.offline_text",
    "providers.openai_text",
    "providers.gemini_text",
)


def make_plugin_manager(load_plugins: str | None = None, extra: Iterable[object] = ()) -> pluggy.PluginManager:
    """Build a plugin manager with the built-ins, the chosen installed plugins and `extra` objects.

    `load_plugins` is STUDIO_LOAD_PLUGINS: None loads every installed plugin; an empty string
    loads none; otherwise a comma-separated list of entry-point (or distribution) names.
    """
    pm = pluggy.PluginManager("character_studio")
    pm.add_hookspecs(hookspecs)
    pm.studio_plugins = []  # (PluginInfo, object) of every plugin considered, loaded or refused
    for name in DEFAULT_PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a built-in not written yet is simply absent
                continue
            raise
        _register(pm, module, name, builtin=True)
    wanted = None if load_plugins is None else {n.strip() for n in load_plugins.split(",") if n.strip()}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist else None
        if (wanted is None or ep.name in wanted or dist in wanted) and pm.get_plugin(ep.name) is None:
            _register(pm, ep.load(), ep.name, distribution=dist, version=ep.dist.version if ep.dist else None)
    for obj in extra:
        _register(pm, obj, None)
    return pm


@dataclass
class PluginInfo:
    """One plugin the studio considered: where it came from, the API it declares, and whether it loaded."""

    name: str
    distribution: str | None
    version: str | None
    api_version: str | None
    loaded: bool
    message: str = ""
    builtin: bool = False
    providers: list[str] = field(default_factory=list)


def api_compatible(declared: object) -> str | None:
    """None when a plugin declaring `declared` can load here, else why not."""
    from core.plugin_api import PLUGIN_API_VERSION

    if declared is None:
        return None  # plugins from before the version existed were built for 1.0
    try:
        major, minor = (int(x) for x in str(declared).split("."))
    except ValueError:
        return f"its plugin_api_version {declared!r} is not 'MAJOR.MINOR'"
    have_major, have_minor = (int(x) for x in PLUGIN_API_VERSION.split("."))
    if major != have_major or minor > have_minor:
        return (f"it was built for plugin API {major}.{minor}, and this studio provides {PLUGIN_API_VERSION} "
                f"(a plugin loads when its major version is {have_major} and its minor version at most {have_minor}); "
                "install a version of the plugin made for this studio")
    return None


def _register(pm: pluggy.PluginManager, obj: object, name: str | None, *, builtin: bool = False,
              distribution: str | None = None, version: str | None = None) -> None:
    declared = getattr(obj, "plugin_api_version", None)
    label = name or getattr(obj, "__name__", None) or type(obj).__name__
    problem = api_compatible(declared)
    info = PluginInfo(label, distribution, version, None if declared is None else str(declared),
                      loaded=problem is None, builtin=builtin)
    if problem is not None:
        info.message = f"Plugin {label!r} was not loaded: {problem}."
        log.error("%s", info.message)
    else:
        pm.register(obj, name=name)
        info.message = "loaded"
    pm.studio_plugins.append((info, obj))


def plugin_report(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Every plugin considered (built-ins first), with the providers each registered."""
    out = []
    for info, plugin in getattr(pm, "studio_plugins", []):
        out.append(replace(info, providers=sorted(_providers_of(plugin)) if info.loaded else []))
    return out


def _providers_of(plugin: object) -> set[str]:
    found: set[str] = set()
    for name in ("register_providers", "register_text_models"):
        hook = getattr(plugin, name, None)
        if callable(hook):
            hook(register=lambda cls: found.add(getattr(cls, "id", "?")))
    return found


def collect_providers(pm: pluggy.PluginManager) -> dict[str, type]:
    """Call every `register_providers` and `register_text_models` hook; provider classes by id (image
    and text providers share one id space, the catalog's)."""
    from core.assist.textmodel import TextProvider
    from core.provider import Provider

    found: dict[str, type] = {}

    def registrar(hook: str, base: type):
        def register(cls) -> None:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise TypeError(f"{hook} expects {base.__name__} subclasses, got {cls!r}")
            if cls.id in found and found[cls.id] is not cls:
                log.warning("provider %r registered twice; keeping %s", cls.id, found[cls.id].__qualname__)
                return
            found[cls.id] = cls
        return register

    pm.hook.register_providers(register=registrar("register_providers", Provider))
    pm.hook.register_text_models(register=registrar("register_text_models", TextProvider))
    return found


def scoped_env(settings: Mapping[str, str], provider_cls: type) -> dict[str, str]:
    """The part of the settings a provider class declares (`Provider.declared_env`): the only
    mapping it is constructed with, so no plugin is handed another's key or the storage credentials."""
    declared = provider_cls.declared_env()
    return {k: v for k, v in settings.items() if k in declared}


def plugin_names(pm: pluggy.PluginManager) -> list[str]:
    return sorted(name for name, _ in pm.list_name_plugin())
