"""PostgreSQL: queue throughput on one and on two server processes sharing the database (each
server's share reported), and the per-portrait overhead next to DuckDB's (the overhead section's method).
The benchmark starts its own PostgreSQL server (tests/pg.py).

What the throughput clock covers: it starts when the benchmark asks for the first job of the batch
(`utcnow()` right before the first `generate`), after every server process has opened its studio,
its runner is claiming (each prints `ready`) and each has run at least one job of a warm-up batch
(what a process does once, on its first job, is start-up), and it stops at the last job's
`finished_at` as its server recorded it (taken for its result transaction; one machine, one clock).
So it holds creating the 400 jobs, every claim, provider call, spool, image and thumbnail write and
result transaction; it leaves out the servers' start-up and warm-up and the wait for their exit.
"""
from __future__ import annotations

import math
import os
import selectors
import statistics
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from core.data import loads, utcnow
from core.models import ACTIVE_STATUSES
from tests.benchmarks.harness import Figure, fresh_home, open_studio, summarise
from tests.benchmarks.overhead import _one_at_a_time
from tests.conftest import png_bytes
from tests.engine.scripted import ServerProcess, plugin
from tests.pg import PostgresServer

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class BatchRun:
    """One batch on `servers` server processes: its time, each server's share and where time went."""

    servers: int
    elapsed: float  # seconds, as the module docstring says
    shares: list[int]  # jobs each server ran, in the order the servers were started
    round_ms: list[float]  # per start beyond the limit: its slot's round beyond the provider's latency
    exchange_ms: list[float]  # per job: the provider call beyond the provider's own time


def _start_servers(n: int, env: dict[str, str], timeout: float = 60.0) -> tuple[list[subprocess.Popen], list[str]]:
    """Start `n` server processes and wait until each says it is ready; returns them and their ids."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "SCRIPTED_"))}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.benchmarks.server_proc", str(fresh_home(f"srv{i}"))],
                              cwd=ROOT, env={**base, **env, "PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for i in range(n)]
    ids = []
    with selectors.DefaultSelector() as sel:
        for p in procs:
            sel.register(p.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise TimeoutError("a benchmark server did not get ready")
            line = p.stdout.readline().split()
            if line[:1] != ["ready"]:
                raise RuntimeError(f"a benchmark server failed to start (exit {p.poll()})")
            ids.append(line[1])
            sel.unregister(p.stdout)
    return procs, ids


def _stop_servers(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.stdin.close()  # the server's runner stops and it exits
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()


def _batch_on_servers(pg: PostgresServer, servers: int, jobs: int, latency: float, limit: int) -> BatchRun:
    # The loopback provider answers with a prepared image (as overhead.py's does): encoding one per
    # request would serialise its 32 answers of a round behind its own GIL on the cores the studio
    # uses, a cost of this fake that a real provider's fleet does not put on the studio's machine.
    image_file = fresh_home("prepared").with_suffix(".png")
    image_file.parent.mkdir(parents=True, exist_ok=True)
    image_file.write_bytes(png_bytes((96, 96), (40, 90, 120)))
    provider = ServerProcess(latency=latency, image_path=str(image_file))
    env = {"SCRIPTED_URL": provider.url, "SCRIPTED_KEY": "bench", "STUDIO_DATABASE_URL": pg.fresh()}
    try:
        # The benchmark's own studio creates the jobs and runs none (its runner is not started).
        with open_studio(fresh_home("shared"), env, plugins=[plugin], start_runner=False) as facade:
            facade.models.update_provider("scripted-oneshot", {"concurrency_limit": limit})
            character = facade.characters.create({"name": "Bench", "description": "benchmark character"})
            model = facade.models.get("scripted/oneshot")
            procs, server_ids = _start_servers(servers, env)
            db = facade.ctx.db

            def batch(n: int) -> list[str]:
                ids = []
                for start in range(0, n, 8):
                    ids += [j.id for j in facade.portraits.generate(character.id, model_id=model.id, n=min(8, n - start))]
                return ids

            def finish(ids: list[str], since) -> list[dict]:
                placeholders = ", ".join("?" for _ in ids)
                while db.scalar(f"SELECT count(*) FROM jobs WHERE id IN ({placeholders}) AND status IN "
                                f"({', '.join('?' for _ in ACTIVE_STATUSES)})", [*ids, *ACTIVE_STATUSES]):
                    if (utcnow() - since).total_seconds() > len(ids) * latency + 120:
                        raise TimeoutError("the batch did not finish")
                    threading.Event().wait(0.1)  # the figure comes from the rows, not from this loop
                rows = db.fetchall("SELECT j.id, j.status, j.lease_owner, j.started_at, j.finished_at, j.provider_ms, "
                                   "j.last_error, p.recipe FROM jobs j LEFT JOIN character_portraits p ON p.job_id = j.id "
                                   f"WHERE j.id IN ({placeholders})", ids)
                assert all(r["status"] == "completed" for r in rows), {r["last_error"] for r in rows}
                return rows

            try:
                # Warm-up: until every server has run a job, so that what a process does once (its
                # provider's HTTP client, the image codecs' imports, its connection pool) is start-up.
                for _ in range(5):
                    warm = finish(batch(2 * limit), utcnow())
                    if all(any(r["lease_owner"] == s for r in warm) for s in server_ids):
                        break
                started = utcnow()
                ids = batch(jobs)
                rows = finish(ids, started)
            finally:
                _stop_servers(procs)
            elapsed = (max(r["finished_at"] for r in rows) - started).total_seconds()
            shares = [sum(r["lease_owner"] == s for r in rows) for s in server_ids]
            return BatchRun(servers, elapsed, shares, *_where_time_went(rows, limit, latency))
    finally:
        provider.close()


def _where_time_went(rows: list[dict], limit: int, latency: float) -> tuple[list[float], list[float]]:
    """Where the time beyond the ideal goes, from the rows alone. A slot's round: the i-th start
    beyond the limit reuses the slot of the (i - limit)-th, so their distance minus the provider's
    latency is what a round costs beyond it (the claim, the HTTP exchange, the wake-up). And per job,
    the provider call as the runner timed it minus the provider's own time (its `server_ms`): the
    HTTP exchange and the answer's handling on both sides."""
    starts = sorted(r["started_at"] for r in rows)
    rounds = [((starts[i] - starts[i - limit]).total_seconds() - latency) * 1000 for i in range(limit, len(starts))]
    exchange = [loads(r["recipe"], {})["timings_ms"]["provider_call"] - r["provider_ms"] for r in rows]
    return rounds, exchange


def side_by_side(runs: list[BatchRun], ideal: float) -> str:
    """One line per server count: time, ideal, ratio, shares (printed before the table)."""
    lines = [f"{'servers':>7}  {'time':>7}  {'ideal':>6}  {'ratio':>6}  shares"]
    for r in runs:
        lines.append(f"{r.servers:>7}  {r.elapsed:>6.2f}s  {ideal:>5.1f}s  {r.elapsed / ideal:>5.3f}x  "
                     + " / ".join(str(s) for s in r.shares))
    return "\n".join(lines)


def run(jobs: int = 400, latency: float = 1.0, limit: int = 32, overhead_n: int = 50) -> list[Figure]:
    ideal = math.ceil(jobs / limit) * latency
    figures, runs = [], []
    pg = PostgresServer(durable=True)
    try:
        for servers in (1, 2):
            r = _batch_on_servers(pg, servers, jobs, latency, limit)
            runs.append(r)
            figures.append(Figure(
                "postgresql", f"{jobs} jobs, {latency:.0f} s latency, limit {limit} account-wide, "
                f"{servers} server{'s' if servers > 1 else ''}", r.elapsed, "single run", "s", 1,
                target=f"ideal {ideal:.0f} s, within 1.10x", baseline=f"{r.elapsed / ideal:.3f}x ideal",
                note="jobs per server: " + " / ".join(map(str, r.shares)) + "; from the batch's creation"))
            figures.append(summarise("postgresql", f"  {servers} server(s): a slot's round beyond the latency",
                                     r.round_ms, note="claim to the claim that reuses the slot, minus the latency"))
            figures.append(summarise("postgresql", f"  {servers} server(s): provider call beyond its own time",
                                     r.exchange_ms, note="HTTP exchange and answer handling (loopback)"))
        print(side_by_side(runs, ideal), end="\n\n")
        for label, env in (("duckdb", {}), ("postgresql", {"STUDIO_DATABASE_URL": pg.fresh()})):
            with open_studio(fresh_home("overhead-" + label), env) as studio:
                character = studio.characters.create({"name": "Bench", "description": "benchmark character"})
                model = studio.models.get("offline/preview")
                _one_at_a_time(studio, character.id, model.id, 5)
                rows = _one_at_a_time(studio, character.id, model.id, overhead_n)
            figures.append(summarise("postgresql", f"offline provider, {label}: overhead per portrait",
                                     [r["overhead"] for r in rows], target="< 25 ms median",
                                     note="local storage, jobs one at a time"))
        duck, pgo = (statistics.median(f.samples) for f in figures[-2:])
        figures.append(Figure("postgresql", "overhead per portrait, PostgreSQL / DuckDB", pgo / duck, "single run", "x",
                              1, target="within 1.5x"))
    finally:
        pg.stop()
    return figures
