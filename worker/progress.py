"""Progress of the jobs this process runs: sent through the RunPod SDK on RunPod, and kept here for the
SDK's local API server, which cannot carry it (see `serve`'s /progress route and the README)."""
from __future__ import annotations

import os
import threading
from typing import Any

_lock = threading.Lock()
_jobs: dict[str, dict[str, Any]] = {}  # job id -> {"status": ..., "output": {"percent", "step", "steps"}}


def on_runpod() -> bool:
    """True where RunPod runs the worker: the SDK then has a job-done URL to send progress to. Locally it
    has none (it would post to the placeholder "JOB_DONE_URL" and log a failure per step)."""
    return bool(os.environ.get("RUNPOD_WEBHOOK_POST_OUTPUT"))


def queued(job_id: str) -> None:
    with _lock:
        _jobs[job_id] = {"id": job_id, "status": "IN_QUEUE"}


def report(job: dict[str, Any], step: int, steps: int) -> None:
    """Steps done of steps in all: recorded for /progress and, on RunPod, sent as the job's in-progress
    output (RunPod's /status answers IN_PROGRESS with it), the SDK's progress mechanism."""
    output = {"percent": round(100.0 * step / max(steps, 1), 1), "step": step, "steps": steps}
    with _lock:
        _jobs[job["id"]] = {"id": job["id"], "status": "IN_PROGRESS", "output": output}
    if on_runpod():
        import runpod

        runpod.serverless.progress_update(job, output)


def started(job_id: str) -> None:
    with _lock:
        _jobs[job_id] = {"id": job_id, "status": "IN_PROGRESS"}


def done(job_id: str) -> None:
    with _lock:
        _jobs.pop(job_id, None)


def status(job_id: str) -> dict[str, Any] | None:
    """The job's progress in the shape of RunPod's /status while it runs; None when not running here."""
    with _lock:
        found = _jobs.get(job_id)
        return dict(found) if found else None
