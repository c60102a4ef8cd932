"""Shipped content from data/: presets (pose, expression, outfit, camera, appearance chips)."""
from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

from core.config import DATA_DIR
from core.errors import InvalidInput
from core.models import Presets

PRESET_KINDS = ("pose", "expression", "outfit", "camera")


class PresetCatalog:
    """The preset lists in data/presets.json, looked up by key."""

    def __init__(self, path: Path = DATA_DIR / "presets.json"):
        self.path = path

    @cached_property
    def data(self) -> dict[str, list[dict[str, Any]]]:
        return json.loads(self.path.read_text())

    def options(self, kind: str) -> list[dict[str, Any]]:
        """The presets of one kind (`pose`, `expression`, `outfit`, `camera`, `appearance_chips`)."""
        return list(self.data.get(kind, []))

    def resolve(self, presets: Presets) -> dict[str, str]:
        """Prompt text per chosen preset; an unknown key is an error that lists the allowed ones."""
        out: dict[str, str] = {}
        errors: dict[str, str] = {}
        for kind in PRESET_KINDS:
            key = getattr(presets, kind)
            if not key:
                continue
            by_key = {p["key"]: p for p in self.data.get(kind, [])}
            by_label = {p["label"].lower(): p for p in self.data.get(kind, [])}
            found = by_key.get(key) or by_label.get(key.lower())
            if found is None:
                errors[f"presets.{kind}"] = f"unknown {kind} {key!r}; choose one of: {', '.join(by_key)}"
            else:
                out[kind] = found["prompt"]
        if errors:
            raise InvalidInput(errors)
        return out
