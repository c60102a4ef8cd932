"""`studio gc` reports spool files their jobs no longer need and `--apply` removes them; the spool
of a job still storing is never touched (issue 11, from finding 11)."""
from __future__ import annotations

import json
import os

import pytest

from core import cli
from tests.conftest import png_bytes
from tests.engine.conftest import jobs_in_every_end_state


@pytest.mark.parametrize("db_backend", ["duckdb"])  # spool files: on PostgreSQL the spool is a table
def test_gc_reports_and_cleans_leftover_spool_files_but_never_a_storing_jobs(open_studio, server, tmp_path, db_env,
                                                                            monkeypatch, capsys):
    studio = open_studio()
    ended = jobs_in_every_end_state(studio)
    completed, failed, canceled, deleted, storing = (ended.completed, ended.failed, ended.canceled, ended.deleted,
                                                     ended.storing)
    blocker = f"{studio.ctx.store.root}/local/portraits/{storing.character_id}"

    spool = studio.ctx.settings.spool_dir
    storing_spool = spool / f"{storing.id}.img"
    kept = storing_spool.read_bytes()
    # What crashes leave behind: spool files of jobs that ended or went, and a half-written one.
    leftovers = {f"{completed.id}.img": "completed", f"{failed.id}.img": "failed", f"{canceled.id}.img": "canceled",
                 f"{deleted.id}.img": "deleted", f"{completed.id}.tmp": "completed"}
    for name in leftovers:
        (spool / name).write_bytes(png_bytes())

    report = studio.maintenance.gc()
    assert {f.name: f.job_status for f in report.leftover_spool} == leftovers
    assert all(f.size == len(png_bytes()) and not f.deleted for f in report.leftover_spool)
    assert "Leftover spool files" in report.summary() and f"{deleted.id}.img" in report.summary()
    assert all((spool / name).exists() for name in leftovers)  # a dry run deletes nothing

    report = studio.maintenance.gc(apply=True)
    assert report.deleted_spool_files == len(leftovers) and all(f.deleted for f in report.leftover_spool)
    assert sorted(p.name for p in spool.iterdir()) == [storing_spool.name]
    assert storing_spool.read_bytes() == kept

    os.remove(blocker)  # the storing job finishes from its untouched spool, without asking the provider again
    [done] = studio.jobs.wait([storing.id], timeout=60)
    assert done.status == "completed" and server.submissions[storing.id] == 1
    assert list(spool.iterdir()) == []

    # Through the command line: report, then clean.
    (spool / f"{failed.id}.img").write_bytes(b"left over")
    studio.close()
    monkeypatch.setenv("STUDIO_LOAD_PLUGINS", "")
    for name, value in db_env.items():  # the command line finds the same database
        monkeypatch.setenv(name, value)
    home = str(studio.ctx.settings.home)
    assert cli.main(["--home", home, "gc", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(f["name"], f["job_status"]) for f in out["leftover_spool"]] == [(f"{failed.id}.img", "failed")]
    assert cli.main(["--home", home, "gc", "--apply"]) == 0
    assert "deleted 1 spool files" in capsys.readouterr().out and list(spool.iterdir()) == []
