"""Fixtures shared by every suite: a studio on a real DuckDB file and a real local folder."""
from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from core.config import Settings
from core.studio import Studio
from tests.ports import refused_port


def png_bytes(size: tuple[int, int] = (64, 64), color: tuple[int, int, int] = (200, 30, 30), fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def make_settings(home: Path, env: dict[str, str] | None = None, **overrides) -> Settings:
    """Settings that ignore the machine's environment (no stray keys, no installed plugins)."""
    return Settings.from_env(home=home, env={"STUDIO_LOAD_PLUGINS": "", **(env or {})}, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


@pytest.fixture
def studio(settings: Settings) -> Iterator[Studio]:
    s = Studio.open(settings=settings, retry_base=0.01)
    yield s
    s.close()


@pytest.fixture
def character(studio: Studio):
    return studio.characters.create({"name": "Mia", "description": "A cheerful barista with red hair.",
                                     "appearance_tags": ["red hair", "freckles"], "clothing_tags": ["apron"]})


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback URL where nothing listens (its port stays bound, so nothing can start listening there)."""
    with refused_port() as port:
        yield f"http://127.0.0.1:{port}"
