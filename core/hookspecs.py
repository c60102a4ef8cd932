"""The hooks a Character Studio plugin can implement. Documented in docs/plugins.md."""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("character_studio")
hookimpl = pluggy.HookimplMarker("character_studio")


@hookspec
def register_providers(register):
    """Register image providers: call ``register(ProviderClass)`` once per provider class.

    The class subclasses ``core.provider.Provider``; the studio instantiates it with the
    process's secrets and seeds its ``default_models()`` into the catalog.
    """


@hookspec
def register_text_models(register):
    """Register text (chat) providers: call ``register(TextProviderClass)`` once per class.

    The class subclasses ``core.plugin_api.TextProvider``; the studio instantiates it like an image
    provider and seeds its ``default_models()`` (modality ``chat``) into the catalog.
    """
