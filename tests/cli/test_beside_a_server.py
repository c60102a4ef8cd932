"""On PostgreSQL the `studio` command works while a studio server runs on the same database: no
single-writer lock; a job the command creates is run by the server (the command starts no runner)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.studio import Studio
from tests.conftest import make_settings

STUDIO = Path(sys.executable).with_name("studio")


def test_the_cli_shares_a_postgresql_database_with_a_running_server(tmp_path, postgres):
    url = postgres.fresh()
    env = {**os.environ, "STUDIO_DATABASE_URL": url, "STUDIO_HOME": str(tmp_path / "cli-home"),
           "STUDIO_STORAGE_URL": (tmp_path / "images").as_uri(), "STUDIO_LOAD_PLUGINS": ""}
    settings = make_settings(tmp_path / "server-home", {"STUDIO_DATABASE_URL": url,
                                                         "STUDIO_STORAGE_URL": env["STUDIO_STORAGE_URL"]})
    with Studio.open(settings=settings) as server:  # a running server: its runner claims the jobs
        def studio(*args: str) -> dict | list:
            out = subprocess.run([str(STUDIO), *args, "--json"], env=env, capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stderr
            return json.loads(out.stdout)

        created = studio("characters", "create", "--name", "Mia", "--description", "A cheerful barista")
        assert server.characters.get(created["id"]).name == "Mia"  # written beside the server, seen by it
        jobs = studio("generate", "--character", created["id"], "--n", "2")
        done = server.jobs.wait([j["id"] for j in jobs], timeout=60)
        assert [j.status for j in done] == ["completed", "completed"]
        listed = studio("characters", "list")
        assert [c["portrait_count"] for c in listed["items"]] == [2]
