"""The project's GPU worker on CPU: a tiny random-weight diffusers pipeline, made here from small configs,
served by `python -m worker.handler --rp_serve_api` (the runpod SDK's local API server), one process per
module. The worker's environment keeps everything on this machine: Hugging Face offline with an empty
cache of its own, no telemetry, none of RunPod's webhook variables."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.providers.conftest import open_studio, sentinel_logs  # noqa: F401  (fixtures used here)
from tests.runpod_local import local_worker

ROOT = Path(__file__).resolve().parents[2]
STEPS = 10  # enough steps for the studio to see the percent move; each takes milliseconds at 64x64
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from worker import tiny

    return tiny.build(tmp_path_factory.mktemp("tiny-sd"))


def worker_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "WORKER_", "HF_"))}
    return {**env, **OFFLINE, "HF_HOME": str(tmp / "hf-home"), **extra}


@pytest.fixture(scope="module")
def worker_url(tiny_model, tmp_path_factory):
    env = worker_env(tmp_path_factory.mktemp("worker"), WORKER_MODEL=str(tiny_model), WORKER_STEPS=str(STEPS),
                     WORKER_MAX_PIXELS=str(512 * 512), WORKER_MAX_REFERENCE_BYTES=str(256 * 1024))
    with local_worker(["-m", "worker.handler"], cwd=ROOT, env=env) as url:
        yield url
