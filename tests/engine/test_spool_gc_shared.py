"""`studio gc` on PostgreSQL, where paid-for images wait in the `job_spool` table: rows their jobs
no longer need are reported and removed with `--apply`; a storing job's row is never touched, and the
keys of a job whose image is spooled are never deleted as orphans while the row is there."""
from __future__ import annotations

import os
import time

import pytest

from core.engine.spool import DatabaseSpool
from core.storage import portrait_key, thumbnail_key
from tests.conftest import png_bytes
from tests.engine.conftest import jobs_in_every_end_state

pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"])  # the shared spool is a table


def test_gc_cleans_leftover_spool_rows_keeps_a_storing_jobs_and_protects_spooled_jobs_keys(open_studio, server):
    studio = open_studio()
    store, spool = studio.ctx.store, DatabaseSpool(studio.ctx.db)
    ended = jobs_in_every_end_state(studio)
    completed, failed, canceled, deleted, storing = (ended.completed, ended.failed, ended.canceled, ended.deleted,
                                                     ended.storing)
    blocker = f"{store.root}/local/portraits/{storing.character_id}"
    kept = spool.read(storing.id)

    # What crashes leave behind: spooled rows of jobs that ended or went. The failed job's crash came
    # after its image was written, before its result row: its objects have no row yet.
    leftovers = {completed.id: "completed", failed.id: "failed", canceled.id: "canceled", deleted.id: "deleted"}
    for job_id in leftovers:
        spool.write(job_id, png_bytes())
    failed_key = portrait_key(studio.actor.id, ended.character_id, failed.id)
    failed_keys = {failed_key, thumbnail_key(failed_key)}
    hours_ago = time.time() - 7200
    for key in failed_keys:  # old enough to go (the blocker, young, stays)
        store.write(key, png_bytes())
        os.utime(f"{store.root}/{key}", (hours_ago, hours_ago))

    report = studio.maintenance.gc(grace_seconds=3600)
    assert {f.name: f.job_status for f in report.leftover_spool} == {f"job_spool/{i}": s for i, s in leftovers.items()}
    assert all(f.size == len(png_bytes()) and not f.deleted for f in report.leftover_spool)
    assert not failed_keys & {o.key for o in report.orphans}  # its image is spooled: not an orphan
    assert spool.ids() == {*leftovers, storing.id}  # a dry run deletes nothing

    report = studio.maintenance.gc(apply=True, grace_seconds=3600)
    assert report.deleted_spool_files == len(leftovers) and all(f.deleted for f in report.leftover_spool)
    assert spool.ids() == {storing.id} and spool.read(storing.id) == kept
    assert all(store.exists(key) for key in failed_keys)  # kept while its row was there
    report = studio.maintenance.gc(apply=True, grace_seconds=3600)  # the row is gone: now they are orphans
    assert {o.key for o in report.orphans if o.deleted} == failed_keys and report.leftover_spool == []

    os.remove(blocker)  # the storing job finishes from its untouched row, without asking the provider again
    [done] = studio.jobs.wait([storing.id], timeout=60)
    assert done.status == "completed" and server.submissions[storing.id] == 1
    assert spool.ids() == set()


def test_a_leftover_row_is_kept_when_its_job_works_again_or_spooled_anew(open_studio):
    studio = open_studio(start_runner=False)
    spool = DatabaseSpool(studio.ctx.db)
    character = studio.characters.create({"name": "Ada", "description": "An engineer."})
    [job] = studio.portraits.generate(character.id)
    spool.write(job.id, b"old")
    [(_, _, listed)] = spool.entries()
    assert not spool.remove_leftover(job.id, listed)  # queued: at work again
    studio.ctx.db.execute("UPDATE jobs SET status = 'failed' WHERE id = ?", [job.id])
    spool.write(job.id, b"new")  # spooled anew after gc listed it
    assert not spool.remove_leftover(job.id, listed) and spool.read(job.id) == b"new"
    [(_, _, now)] = spool.entries()
    assert spool.remove_leftover(job.id, now) and spool.ids() == set()
