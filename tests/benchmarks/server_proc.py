"""A studio server for the shared-queue benchmark: opens a home with the scripted provider, prints
`ready SERVER_ID` once its runner is claiming, and runs jobs until its standard input closes.

    python -m tests.benchmarks.server_proc HOME

Settings come from the environment's SCRIPTED_*, STUDIO_* and AWS_* variables, as for
tests/engine/studio_proc.py (which, unlike this one, exits once the queue is empty).
"""
from __future__ import annotations

import os
import sys

from core.studio import Studio
from tests.conftest import make_settings
from tests.engine.scripted import plugin
from tests.engine.studio_proc import PASSED


def main(home: str) -> int:
    env = {k: v for k, v in os.environ.items() if k.startswith(PASSED)}
    settings = make_settings(home, {"SCRIPTED_KEY": "k-bench", **env})
    with Studio.open(settings=settings, plugins=[plugin]) as studio:
        print("ready", studio.engine.runner.server_id, flush=True)
        sys.stdin.read()  # until the benchmark closes our standard input
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
