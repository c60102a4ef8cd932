from __future__ import annotations

import pytest

from core.data import open_database
from core.studio import Studio
from tests.conftest import DB_BACKENDS, make_settings
from tests.engine.scripted import ScriptedServer, plugin

SENTINEL_KEY = "sentinel-scripted-key-8f3a9c"


@pytest.fixture
def server():
    s = ScriptedServer()
    yield s
    s.release()
    s.close()


@pytest.fixture
def open_studio(tmp_path, server, db_env):
    """Open (and reopen) a studio on one home with the scripted provider pointed at the server."""
    opened: list[Studio] = []

    def _open(start_runner: bool = True, retry_base: float = 0.01, **env) -> Studio:
        settings = make_settings(tmp_path / "home", {"SCRIPTED_URL": server.url, "SCRIPTED_KEY": SENTINEL_KEY,
                                                           **db_env, **env})
        s = Studio.open(settings=settings, plugins=[plugin], retry_base=retry_base, start_runner=start_runner)
        opened.append(s)
        return s

    yield _open
    for s in opened:
        if not s.ctx.db._closed:
            s.close()


@pytest.fixture
def estudio(open_studio):
    return open_studio()


@pytest.fixture
def echaracter(estudio):
    return estudio.characters.create({"name": "Ada", "description": "An engineer with short black hair.",
                                      "appearance_tags": ["short black hair"]})


def until(studio: Studio, predicate, timeout: float = 20.0):
    """Block until `predicate()` is truthy, re-checking whenever the runner reports a change."""
    import time

    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        studio.engine.runner.wait_for_change(0.5)
    return value


@pytest.fixture(params=DB_BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    """Every test here that touches the database runs on DuckDB and on PostgreSQL."""
    return request.param


def spooled(studio: Studio, job_id: str) -> bool:
    """Whether a paid-for image waits in the spool: a file of the home (DuckDB), a row of the shared database (PostgreSQL)."""
    if studio.ctx.db.shared:
        return studio.ctx.db.scalar("SELECT count(*) FROM job_spool WHERE job_id = ?", [job_id]) == 1
    return (studio.ctx.settings.spool_dir / f"{job_id}.img").exists()


def lose_spool(studio: Studio, job_id: str) -> None:
    """What a cleaned temp folder (or a dropped row) does to a spooled image."""
    if studio.ctx.db.shared:
        db = open_database(studio.ctx.settings)  # the studio may be closed
        try:
            assert db.execute("DELETE FROM job_spool WHERE job_id = ?", [job_id]) == 1
        finally:
            db.close()
    else:
        (studio.ctx.settings.spool_dir / f"{job_id}.img").unlink()
