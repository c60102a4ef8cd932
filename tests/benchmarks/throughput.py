"""Queue throughput: many jobs against a loopback provider with a fixed latency and a concurrency limit."""
from __future__ import annotations

import math
import time

from tests.benchmarks.harness import Figure, fresh_home, open_studio
from tests.engine.scripted import ServerProcess, plugin


def _run_batch(jobs: int, latency: float, limit: int) -> float:
    server = ServerProcess(latency=latency)
    try:
        with open_studio(fresh_home("throughput"), {"SCRIPTED_URL": server.url, "SCRIPTED_KEY": "bench"},
                         plugins=[plugin]) as studio:
            studio.models.update_provider("scripted-oneshot", {"concurrency_limit": limit})
            character = studio.characters.create({"name": "Bench", "description": "benchmark character"})
            model = studio.models.get("scripted/oneshot")
            t0 = time.perf_counter()
            ids = []
            for start in range(0, jobs, 8):  # the UI's largest batch is 4; the API allows 8
                ids += [j.id for j in studio.portraits.generate(character.id, model_id=model.id, n=min(8, jobs - start))]
            done = studio.jobs.wait(ids, timeout=jobs * latency + 120)
            elapsed = time.perf_counter() - t0
            assert all(j.status == "completed" for j in done), {j.last_error for j in done}
            return elapsed
    finally:
        server.close()


def run(jobs: int = 200, latency: float = 1.0, limit: int = 16, serial_sample: int = 10) -> list[Figure]:
    ideal = math.ceil(jobs / limit) * latency
    elapsed = _run_batch(jobs, latency, limit)
    serial = _run_batch(serial_sample, latency, 1)
    serial_extrapolated = serial / serial_sample * jobs
    return [
        Figure("throughput", f"{jobs} jobs, {latency:.0f} s latency, limit {limit}: total", elapsed, "single run", "s", 1,
               target=f"within 10% of ideal {ideal:.0f} s", baseline=f"{(elapsed / ideal - 1) * 100:+.1f}% vs ideal",
               note=f"one-at-a-time queue (seeds' design): {serial_extrapolated:.0f} s "
                    f"(measured {serial:.1f} s for {serial_sample}, x{jobs // serial_sample})"),
        Figure("throughput", f"{jobs} jobs: speed-up over one at a time", serial_extrapolated / elapsed, "single run",
               "x", 1, baseline=f"ideal {jobs * latency / ideal:.1f}x"),
    ]


if __name__ == "__main__":
    from tests.benchmarks.harness import machine_facts, render_table

    print(render_table(machine_facts(), run()))
