"""Character Studio's core library. Start with ``from core import Studio; studio = Studio.open()``."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.studio import Studio

__all__ = ["Studio"]


def __getattr__(name: str):
    if name == "Studio":
        from core.studio import Studio

        return Studio
    raise AttributeError(name)
