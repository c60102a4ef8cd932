"""PostgreSQL: queue throughput on one and on two server processes sharing the database (each
server's share reported), and the per-portrait overhead next to DuckDB's (the overhead section's method).
The benchmark starts its own PostgreSQL server (tests/pg.py)."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.benchmarks.harness import Figure, fresh_home, open_studio, summarise
from tests.benchmarks.overhead import _one_at_a_time
from tests.engine.scripted import ServerProcess, plugin
from tests.pg import PostgresServer

ROOT = Path(__file__).resolve().parents[2]


def _batch_on_servers(pg: PostgresServer, servers: int, jobs: int, latency: float, limit: int) -> tuple[float, dict]:
    provider = ServerProcess(latency=latency)
    env = {"SCRIPTED_URL": provider.url, "SCRIPTED_KEY": "bench", "STUDIO_DATABASE_URL": pg.fresh()}
    try:
        with open_studio(fresh_home("shared"), env, plugins=[plugin], start_runner=False) as facade:
            facade.models.update_provider("scripted-oneshot", {"concurrency_limit": limit})
            character = facade.characters.create({"name": "Bench", "description": "benchmark character"})
            model = facade.models.get("scripted/oneshot")
            ids = []
            for start in range(0, jobs, 8):
                ids += [j.id for j in facade.portraits.generate(character.id, model_id=model.id, n=min(8, jobs - start))]
            base = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "SCRIPTED_"))}
            t0 = time.perf_counter()  # from the servers' start: their start-up is part of the figure
            procs = [subprocess.Popen([sys.executable, "-m", "tests.engine.studio_proc", str(fresh_home(f"srv{i}"))],
                                      cwd=ROOT, env={**base, **env, "PYTHONPATH": str(ROOT)},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(servers)]
            try:
                done = facade.jobs.wait(ids, timeout=jobs * latency + 120)
                elapsed = time.perf_counter() - t0
            finally:
                for p in procs:
                    p.wait(60)
            assert all(j.status == "completed" for j in done), {j.last_error for j in done}
            shares = {r["o"]: r["n"] for r in facade.ctx.db.fetchall(
                "SELECT coalesce(split_part(lease_owner, ':', 2), '?') AS o, count(*) AS n FROM jobs GROUP BY 1")}
            return elapsed, shares
    finally:
        provider.close()


def run(jobs: int = 400, latency: float = 1.0, limit: int = 32, overhead_n: int = 50) -> list[Figure]:
    ideal = math.ceil(jobs / limit) * latency
    figures = []
    pg = PostgresServer(durable=True)
    try:
        for servers in (1, 2):
            elapsed, shares = _batch_on_servers(pg, servers, jobs, latency, limit)
            figures.append(Figure("postgresql", f"{jobs} jobs, {latency:.0f} s latency, limit {limit} account-wide, "
                                  f"{servers} server{'s' if servers > 1 else ''}", elapsed, "single run", "s", 1,
                                  target=f"ideal {ideal:.0f} s", baseline=f"{(elapsed / ideal - 1) * 100:+.1f}% vs ideal",
                                  note="jobs per server (pid): " + ", ".join(f"{k} {v}" for k, v in shares.items())
                                       + "; includes the servers' start"))
        for label, env in (("duckdb", {}), ("postgresql", {"STUDIO_DATABASE_URL": pg.fresh()})):
            with open_studio(fresh_home("overhead-" + label), env) as studio:
                character = studio.characters.create({"name": "Bench", "description": "benchmark character"})
                model = studio.models.get("offline/preview")
                _one_at_a_time(studio, character.id, model.id, 5)
                rows = _one_at_a_time(studio, character.id, model.id, overhead_n)
            figures.append(summarise("postgresql", f"offline provider, {label}: overhead per portrait",
                                     [r["overhead"] for r in rows], target="< 25 ms median",
                                     note="local storage, jobs one at a time"))
    finally:
        pg.stop()
    return figures
