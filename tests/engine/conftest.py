from __future__ import annotations

from dataclasses import dataclass

import pytest

from core.data import open_database
from core.models import Job
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


@dataclass
class Ended:
    """Jobs in every end state for gc tests, and one `storing` whose image store keeps failing."""

    character_id: str
    completed: Job
    failed: Job
    canceled: Job
    deleted: Job  # its character was deleted
    storing: Job


def jobs_in_every_end_state(studio: Studio) -> Ended:
    character = studio.characters.create({"name": "Ada", "description": "An engineer."})
    doomed = studio.characters.create({"name": "Bo", "description": "A sailor."})
    [completed] = studio.portraits.generate(character.id)
    [failed] = studio.portraits.generate(character.id, prompt="[permanent]")
    studio.engine.runner.stop()
    [canceled] = studio.portraits.generate(character.id)
    studio.jobs.cancel(canceled.id)
    [deleted] = studio.portraits.generate(doomed.id)
    studio.engine.runner.start()
    studio.characters.delete(doomed.id)
    assert [j.status for j in studio.jobs.wait([completed.id, failed.id, canceled.id], timeout=30)] == \
        ["completed", "failed", "canceled"]
    # A job whose store keeps failing: its spool is all there is of the paid-for image.
    waiting = studio.characters.create({"name": "Cy", "description": "A pilot."})
    blocker = f"{studio.ctx.store.root}/local/portraits/{waiting.id}"
    open(blocker, "w").close()  # a file where its folder must go: every write of its images fails
    [storing] = studio.portraits.generate(waiting.id)
    until(studio, lambda: (j := studio.jobs.get(storing.id)).status == "storing" and j.last_error)
    assert spooled(studio, storing.id)
    return Ended(character.id, completed, failed, canceled, deleted, storing)
