"""Fixtures shared by every suite: a studio on a real database and a real local folder.

The database is the DuckDB file unless a suite asks for both backends: tests/core, tests/engine and
tests/storage override `db_backend` with both `duckdb` and `postgresql` (a real server, see tests/pg.py).
"""
from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from core.config import Settings
from core.studio import Studio
from tests.pg import PostgresServer
from tests.ports import refused_port

DB_BACKENDS = ["duckdb", "postgresql"]


def png_bytes(size: tuple[int, int] = (64, 64), color: tuple[int, int, int] = (200, 30, 30), fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def make_settings(home: Path, env: dict[str, str] | None = None, **overrides) -> Settings:
    """Settings that ignore the machine's environment (no stray keys, no installed plugins)."""
    return Settings.from_env(home=home, env={"STUDIO_LOAD_PLUGINS": "", **(env or {})}, **overrides)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session; it FAILS (never skips) where the package is missing."""
    try:
        server = PostgresServer()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def db_backend() -> str:
    """The database backend: `duckdb` here; the core, engine and storage suites run both."""
    return "duckdb"


@pytest.fixture
def db_env(db_backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment that selects the backend: nothing for DuckDB, a fresh database's URL for PostgreSQL."""
    if db_backend == "duckdb":
        return {}
    server: PostgresServer = request.getfixturevalue("postgres")
    return {"STUDIO_DATABASE_URL": server.fresh()}


@pytest.fixture
def settings(tmp_path: Path, db_env: dict[str, str]) -> Settings:
    return make_settings(tmp_path / "home", db_env)


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
