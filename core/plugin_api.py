"""The plugin API: everything a provider plugin imports, from one module (see docs/plugins.md).

    from core.plugin_api import Provider, ModelSpec, Capabilities, hookimpl, ...
    from core.plugin_api import TextProvider, TextRequest, TextResult, TextDelta, ...   # text models

`PLUGIN_API_VERSION` is "MAJOR.MINOR". A plugin states the version it was written for as a
literal in its module (`plugin_api_version = "1.0"`); the studio loads it when the major versions
match and the plugin's minor version is at most the studio's, and refuses it otherwise (logged and
shown by `studio.plugins()`), loading the others. A minor version adds to the API; a major one
changes or removes something.

The conformance kit (`check_*`, `run_all`, `ProviderConformance`, `Harness`) is
imported from here too; it loads on first use, so a plugin importing this module stays light.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from core.assist.textmodel import ChatMessage, TextDelta, TextProvider, TextRequest, TextResult, sse_events
from core.errors import ProviderError, StudioError
from core.hookspecs import hookimpl
from core.images import sha256
from core.models import Capabilities, ModelSpec, ReferenceMapping
from core.provider import (GeneratedImage, GenerationRequest, GenerationResult, Health, Progress, Provider,
                           ReferenceImage, Submission, host_port, image_from_bytes, image_sources)

PLUGIN_API_VERSION = "1.2"

KIT = ("Harness", "ProviderConformance", "run_all", "check_registration", "check_catalog", "check_secrets",
       "check_key_stays_home", "check_generation", "check_image_to_image", "check_seed", "check_failure",
       "check_errors", "check_cancel", "check_resume", "check_health", "TextHarness", "TextModelConformance",
       "run_text_checks", "check_text_registration", "check_text_catalog", "check_text_complete",
       "check_text_stream", "check_text_errors", "check_text_secrets", "check_text_health")

__all__ = ["PLUGIN_API_VERSION", "hookimpl", "Provider", "ModelSpec", "Capabilities", "ReferenceMapping",
           "GenerationRequest", "GenerationResult", "GeneratedImage", "Submission", "Progress", "Health",
           "ReferenceImage", "ProviderError", "StudioError", "image_sources", "image_from_bytes", "host_port",
           "sha256", "TextProvider", "TextRequest", "TextResult", "TextDelta", "ChatMessage", "sse_events", *KIT]

if TYPE_CHECKING:
    from core.testing import *  # noqa: F401,F403


def __getattr__(name: str):
    if name in KIT:
        import core.testing

        return getattr(core.testing, name)
    raise AttributeError(name)
