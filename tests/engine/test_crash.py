"""A studio process killed with SIGKILL mid-generation completes every job exactly once on restart."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.studio import Studio
from tests.conftest import make_settings
from tests.engine.scripted import ScriptedServer, plugin

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sigkill_mid_job_then_restart_completes_every_job_exactly_once(tmp_path):
    server = ScriptedServer()
    home = tmp_path / "home"
    env = {**os.environ, "SCRIPTED_URL": server.url, "PYTHONPATH": str(ROOT)}
    try:
        settings = make_settings(home, {"SCRIPTED_URL": server.url, "SCRIPTED_KEY": "k"})
        with Studio.open(settings=settings, plugins=[plugin], start_runner=False) as studio:
            character = studio.characters.create({"name": "Eve", "description": "A courier."})
            job_ids = [j.id for j in studio.portraits.generate(character.id, n=4, prompt="[stall]")]
            job_ids += [j.id for j in studio.portraits.generate(character.id, n=2, model_id="scripted/oneshot")]

        first = subprocess.Popen([sys.executable, "-m", "tests.engine.studio_proc", str(home)], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # Every stalled job has been polled, so its request id was committed before the kill.
        server.wait_for(lambda s: len(s.jobs) == 4 and all(j["polls"] >= 1 for j in s.jobs.values()), timeout=60)
        first.kill()
        first.wait(30)
        assert first.returncode == -9

        server.release()
        second = subprocess.run([sys.executable, "-m", "tests.engine.studio_proc", str(home)], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "'resumed': 4" in second.stdout

        with Studio.open(settings=settings, plugins=[plugin], start_runner=False) as studio:
            jobs = [studio.jobs.get(i) for i in job_ids]
            assert [j.status for j in jobs] == ["completed"] * 6
            portraits = studio.ctx.db.fetchall("SELECT job_id FROM character_portraits")
            assert sorted(p["job_id"] for p in portraits) == sorted(job_ids)
        stalled = job_ids[:4]
        assert all(server.submissions[j] == 1 for j in stalled)
    finally:
        server.release()
        server.close()
