"""The shared queue's account-wide limit counts provider calls in flight: a job whose provider has
answered frees its slot while its image is still being stored, on this server or on another."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from core.engine.spool import DatabaseSpool
from tests.conftest import png_bytes
from tests.engine.conftest import spooled, until

pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"])  # the queue several servers share


@contextmanager
def result_held(url: str, character_id: str) -> Iterator[None]:
    """Hold a character's row: a job's result transaction for it waits, so the job stays `running`
    after its image was spooled (as a slow result write would leave it)."""
    with psycopg.connect(url) as conn:
        conn.execute("SELECT 1 FROM characters WHERE id = %s FOR UPDATE", [character_id])
        try:
            yield
        finally:
            conn.rollback()


def test_a_slot_frees_when_the_provider_answers_not_when_the_image_is_stored(open_studio, server, db_env):
    studio = open_studio()
    studio.models.update_provider("scripted", {"concurrency_limit": 1})
    first = studio.characters.create({"name": "Ada", "description": "An engineer."})
    second = studio.characters.create({"name": "Bo", "description": "A sailor."})
    with result_held(db_env["STUDIO_DATABASE_URL"], first.id):
        [storing] = studio.portraits.generate(first.id)
        until(studio, lambda: spooled(studio, storing.id))
        [nxt] = studio.portraits.generate(second.id)
        server.wait_for(lambda s: nxt.id in s.submissions, timeout=15)  # before the first one is stored
        assert studio.jobs.get(storing.id).status == "running"
    done = studio.jobs.wait([storing.id, nxt.id], timeout=30)
    assert [j.status for j in done] == ["completed", "completed"]
    assert server.max_in_flight == 1 and server.submissions == {storing.id: 1, nxt.id: 1}


def test_another_servers_job_holds_a_slot_until_its_image_is_spooled(open_studio, db_env):
    studio = open_studio(start_runner=False)
    studio.models.update_provider("scripted", {"concurrency_limit": 1})
    character = studio.characters.create({"name": "Ada", "description": "An engineer."})
    theirs, mine = studio.portraits.generate(character.id, n=2)
    store, db = studio.engine.jobs, studio.ctx.db

    def claim(calling: dict[str, int]) -> list[str]:
        jobs, _, _ = store.claim_shared("me", 30, {"scripted": 1}, set(), None, calling)
        return [j.id for j in jobs]

    assert claim({"scripted": 1}) == []  # this server's own call in flight takes the one slot
    # Another server claimed the first job and is calling the provider.
    db.execute("UPDATE jobs SET status = 'running', lease_owner = 'other:1:x', "
               "lease_expires_at = (now() AT TIME ZONE 'UTC') + INTERVAL '1 hour' WHERE id = ?", [theirs.id])
    assert claim({}) == []
    DatabaseSpool(db).write(theirs.id, png_bytes())  # its provider answered: the image is spooled
    assert claim({}) == [mine.id]
    assert db.scalar("SELECT lease_owner FROM jobs WHERE id = ?", [mine.id]) == "me"
    assert db.scalar("SELECT status FROM jobs WHERE id = ?", [theirs.id]) == "running"
