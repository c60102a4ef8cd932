"""A studio process for the crash tests: opens a home with the scripted provider and runs its jobs.

    python -m tests.engine.studio_proc HOME

Settings come from the environment's SCRIPTED_*, STUDIO_* and AWS_* variables (SCRIPTED_URL is
required). Prints what the runner recovered, then exits 0 once no job is queued, running or storing.
"""
from __future__ import annotations

import os
import sys

from core.models import ACTIVE_STATUSES
from core.studio import Studio
from tests.conftest import make_settings
from tests.engine.scripted import plugin

PASSED = ("SCRIPTED_", "STUDIO_", "AWS_")


def main(home: str) -> int:
    env = {k: v for k, v in os.environ.items() if k.startswith(PASSED)}
    settings = make_settings(home, {"SCRIPTED_KEY": "k-proc", **env})
    with Studio.open(settings=settings, plugins=[plugin], retry_base=0.01) as studio:
        print("recovered", studio.engine.runner.recovered, flush=True)
        while active := studio.jobs.list(status=ACTIVE_STATUSES, limit=1000).items:
            studio.jobs.wait([j.id for j in active], timeout=120)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
