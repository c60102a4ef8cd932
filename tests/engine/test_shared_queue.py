"""Several studio servers on one PostgreSQL queue: leases, hand-over after a SIGKILL, account-wide
limits, and a new job reaching a server with a free slot (NOTIFY)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from core.data import utcnow
from core.studio import Studio
from core.storage import portrait_key, thumbnail_key
from tests.conftest import make_settings
from tests.engine.conftest import SENTINEL_KEY, until
from tests.engine.scripted import ScriptedServer, plugin
from tests.storage.conftest import MotoServer, aws_env

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"])  # the queue several servers share


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.close()


def lease_owner(studio: Studio, job_id: str) -> str | None:
    return studio.ctx.db.scalar("SELECT lease_owner FROM jobs WHERE id = ?", [job_id])


def test_a_job_created_on_a_full_server_is_picked_up_by_another(tmp_path, server, db_env):
    # Two servers in one process: each its own engine (the URLs differ only in application_name).
    url = db_env["STUDIO_DATABASE_URL"]
    env = {"SCRIPTED_URL": server.url, "SCRIPTED_KEY": SENTINEL_KEY}
    a = Studio.open(settings=make_settings(tmp_path / "a", {**env, "STUDIO_DATABASE_URL": f"{url}&application_name=a",
                                                            "STUDIO_RUNNER_SLOTS": "1"}), plugins=[plugin], retry_base=0.01)
    b = None
    try:
        character = a.characters.create({"name": "Ada", "description": "An engineer."})
        [busy] = a.portraits.generate(character.id, prompt="[stall]")
        a_runner = a.engine.runner
        server.wait_for(lambda s: busy.id in s.submissions)
        assert lease_owner(a, busy.id) == a_runner.server_id  # A's one slot is taken
        b = Studio.open(settings=make_settings(tmp_path / "b", {**env, "STUDIO_DATABASE_URL": f"{url}&application_name=b"}),
                        plugins=[plugin], retry_base=0.01)
        assert b.engine is not a.engine and b.engine.runner.server_id != a_runner.server_id
        seen = b.engine.runner.generation
        [job] = a.portraits.generate(character.id)  # through A's facade
        created = time.monotonic()
        while b.jobs.get(job.id).status != "completed":
            if time.monotonic() - created > 20:
                raise AssertionError(f"B never ran the job: {b.jobs.get(job.id)}")
            seen = b.engine.runner.wait_for_change(0.5, seen)
        started_after = (b.jobs.get(job.id).started_at - a.jobs.get(job.id).created_at).total_seconds()
        # B's claim loop polls every 5 s; the NOTIFY starts the job well before that.
        assert started_after < 2.5, started_after
        assert job.id in b.engine.runner.in_flight or b.jobs.get(job.id).result_id
        assert server.submissions[job.id] == 1 and a.jobs.get(busy.id).status == "running"
        assert a.portraits.list(character.id).total == 1
    finally:
        server.release()
        for s in (a, b):
            if s is not None:
                s.close()


def test_two_servers_one_killed_mid_batch_every_job_completes_exactly_once(tmp_path, server, db_env, moto,
                                                                           monkeypatch):
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    bucket = moto.new_bucket()
    env = {"SCRIPTED_URL": server.url, "SCRIPTED_KEY": "k", "STUDIO_STORAGE_URL": f"s3://{bucket}/studio",
           "STUDIO_LEASE_SECONDS": "5", **aws_env(moto.endpoint), **db_env,
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    facade = Studio.open(settings=make_settings(tmp_path / "facade", env), plugins=[plugin], start_runner=False)
    character = facade.characters.create({"name": "Bo", "description": "A sailor."})
    jobs = []
    for i in range(10):  # 40 jobs: the first 8 finish at once, the rest stay at the provider until released
        jobs += facade.portraits.generate(character.id, n=4, prompt="quick" if i < 2 else "[stall]")
    ids = [j.id for j in jobs]

    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STUDIO_", "SCRIPTED_"))}
    procs = {}
    for name in ("a", "b"):
        procs[name] = subprocess.Popen([sys.executable, "-m", "tests.engine.studio_proc", str(tmp_path / name)],
                                       cwd=ROOT, env={**base, **env, "PYTHONPATH": str(ROOT)},
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def stalled_in_flight(s):
            return sum(1 for j in s.jobs.values() if "[stall]" in j["prompt"] and not j.get("finished")) == 4
        server.wait_for(stalled_in_flight, timeout=60)
        # ... and their request ids stored: a submission whose id no row holds yet would be sent again
        # after the kill (allowed, nothing recorded it), and its first copy would stay at the provider.
        deadline = time.monotonic() + 30
        while facade.ctx.db.scalar("SELECT count(*) FROM jobs WHERE status = 'running' AND "
                                   "provider_request_id IS NOT NULL") != 4:
            assert time.monotonic() < deadline, "the running jobs never stored their request ids"
            server.wait_for(lambda s: True, timeout=0.05)
        assert all(facade.jobs.get(i).status == "completed" for i in ids[:8])
        owners = {r["lease_owner"] for r in facade.ctx.db.fetchall(
            "SELECT lease_owner FROM jobs WHERE status = 'running' AND provider_request_id IS NOT NULL")}
        had_request_id = {r["id"] for r in facade.ctx.db.fetchall(
            "SELECT id FROM jobs WHERE provider_request_id IS NOT NULL")}
        victim = next(n for n, p in procs.items() if any(o and o.split(":")[1] == str(p.pid) for o in owners))
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait(10)
        server.release()
        survivor = procs["b" if victim == "a" else "a"]
        out, _ = survivor.communicate(timeout=120)
        assert survivor.returncode == 0, out
    finally:
        server.release()
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(10)

    done = facade.jobs.wait(ids, timeout=10)
    assert [j.status for j in done] == ["completed"] * 40, [(j.status, j.last_error) for j in done]
    assert all(server.submissions[i] == 1 for i in had_request_id)  # resumed by request id, never paid twice
    assert all(server.submissions.get(i, 0) >= 1 for i in ids)
    assert server.max_in_flight <= 4  # the provider's limit held across both servers
    rows = facade.ctx.db.fetchall("SELECT job_id, image_key, thumbnail_key FROM character_portraits")
    assert sorted(r["job_id"] for r in rows) == sorted(ids)  # one portrait per job, no duplicates
    listed = moto.client().list_objects_v2(Bucket=bucket, Prefix="studio/").get("Contents", [])
    expected = {k for j in done for k in (portrait_key(j.owner, j.character_id, j.id),
                                          thumbnail_key(portrait_key(j.owner, j.character_id, j.id)))}
    assert {o["Key"][len("studio/"):] for o in listed} == expected  # no orphaned objects
    assert facade.ctx.db.scalar("SELECT count(*) FROM job_spool") == 0
    facade.close()


def test_a_server_that_lost_its_lease_stops_and_its_late_writes_change_nothing(tmp_path, server, db_env):
    url = db_env["STUDIO_DATABASE_URL"]
    env = {"SCRIPTED_URL": server.url, "SCRIPTED_KEY": SENTINEL_KEY}
    # A renews its leases only every 100 s (once its lease is expired below, it stays expired) and
    # runs one job at a time (it does not claim the job back while it still works on it).
    a = Studio.open(settings=make_settings(tmp_path / "a", {**env, "STUDIO_DATABASE_URL": f"{url}&application_name=a",
                                                            "STUDIO_LEASE_SECONDS": "300", "STUDIO_RUNNER_SLOTS": "1"}),
                    plugins=[plugin], retry_base=0.01)
    b = None
    try:
        character = a.characters.create({"name": "Ada", "description": "An engineer."})
        [job] = a.portraits.generate(character.id, prompt="[stall]")
        server.wait_for(lambda s: job.id in s.submissions)
        until(a, lambda: a.jobs.get(job.id).stage == "generating")  # A polls, under its lease
        assert lease_owner(a, job.id) == a.engine.runner.server_id
        b = Studio.open(settings=make_settings(tmp_path / "b", {**env, "STUDIO_DATABASE_URL": f"{url}&application_name=b"}),
                        plugins=[plugin], retry_base=0.01)
        # A pauses past its lease (as a stopped process would): the lease expires and B takes the job over.
        a.ctx.db.execute("UPDATE jobs SET lease_expires_at = ? WHERE id = ?", [utcnow() - timedelta(minutes=1), job.id])
        b.engine.runner.wake()
        until(b, lambda: lease_owner(b, job.id) == b.engine.runner.server_id)
        # A's next write (a poll's progress) finds the job leased to B: it changes nothing and A stops,
        # without asking the provider to cancel the request B now polls.
        until(a, lambda: job.id not in a.engine.runner.in_flight)
        assert lease_owner(b, job.id) == b.engine.runner.server_id and server.canceled == []
        server.release()
        [done] = b.jobs.wait([job.id], timeout=30)
        assert done.status == "completed", done.last_error
        assert server.submissions[job.id] == 1  # resumed by request id, not paid twice
        [portrait] = b.portraits.list(character.id).items  # recorded once, by B
        assert portrait.job_id == job.id and b.images.read(portrait.image_key)
        assert job.id not in a.engine.runner.in_flight and a.jobs.get(job.id).result_id == portrait.id
    finally:
        server.release()
        for s in (a, b):
            if s is not None:
                s.close()


def test_unfinished_jobs_are_found_through_an_index(studio):
    """Claims and the polled active jobs read the unfinished rows through `jobs_unfinished`, not a scan of
    every job ever run (the planner is told to avoid scans where it can, so the plan shows it can)."""
    queries = {
        "claim": "SELECT id FROM jobs WHERE status = 'queued' AND provider_id = ? ORDER BY seq LIMIT 4",
        "active": "SELECT id FROM jobs WHERE status IN ('queued', 'running', 'storing') AND owner = ?",
    }
    with studio.ctx.db.transaction() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        for name, sql in queries.items():
            plan = "\n".join(str(next(iter(r.values()))) for r in cur.rows(f"EXPLAIN {sql}", ["offline"]))
            assert "jobs_unfinished" in plan, (name, plan)
