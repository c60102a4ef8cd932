"""A studio process killed with SIGKILL at each stage of a job completes every job exactly once on restart.

Real kills of a real studio process (`tests.engine.studio_proc`), with images on S3 (moto on
127.0.0.1 behind a proxy that can hold requests): the loopback provider or the proxy holds the job
at the stage and says when it got there; the test then kills the process, checks the rows show the
job still at work, restarts, and checks every job: completed, one portrait, the provider paid once
wherever a request id existed, the store holding exactly the portraits' images, no spool left.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.images import sha256
from core.storage import thumbnail_key
from core.studio import Studio
from tests.conftest import make_settings
from tests.engine.scripted import ScriptedServer, plugin
from tests.storage.conftest import MotoServer, aws_env
from tests.storage.faultproxy import FaultProxy, _reset

ROOT = Path(__file__).resolve().parents[2]
TXT, ONE_SHOT = "scripted/txt", "scripted/oneshot"


class HoldingProxy(FaultProxy):
    """The storage fault proxy, plus holds: the next `count` requests matching a hold get no answer
    until `release()`, and are then dropped (the studio that sent them is gone by then)."""

    def __init__(self, upstream_port: int):
        super().__init__(upstream_port)
        self._cond = threading.Condition()
        self._holds: list[list] = []  # [method, path fragment, how many more]
        self.held: list[str] = []
        self._released = False

    def hold(self, method: str, path_contains: str, count: int) -> None:
        with self._cond:
            self._holds.append([method, path_contains, count])

    def wait_held(self, n: int, timeout: float = 60.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.held) >= n, timeout):
                raise TimeoutError(f"{len(self.held)} of {n} requests held: {self.held}")

    def release(self) -> None:
        with self._cond:
            self._released = True
            self._cond.notify_all()

    def _handle(self, h) -> None:
        with self._cond:
            rule = next((r for r in self._holds if r[0] == h.command and r[1] in h.path and r[2] > 0), None)
            if rule is not None:
                rule[2] -= 1
                self.held.append(h.path)
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._released)
        if rule is not None:
            self._record(h.command, h.path, "held, then dropped")
            _reset(h)
            return
        super()._handle(h)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@dataclass
class Rig:
    """A home on S3 behind the holding proxy, the scripted provider, and studio processes on them."""

    home: Path
    bucket: str
    moto: MotoServer
    proxy: HoldingProxy
    server: ScriptedServer
    env: dict[str, str] = field(default_factory=dict)

    def settings(self):
        return make_settings(self.home, {"SCRIPTED_KEY": "k", **self.env})

    def open(self) -> Studio:
        return Studio.open(settings=self.settings(), plugins=[plugin], start_runner=False)

    def _proc_env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STUDIO_", "SCRIPTED_"))}
        return {**base, **self.env, "PYTHONPATH": str(ROOT)}

    def start(self) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "tests.engine.studio_proc", str(self.home)], cwd=ROOT,
                                env=self._proc_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def run(self) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tests.engine.studio_proc", str(self.home)], cwd=ROOT,
                              env=self._proc_env(), capture_output=True, text=True, timeout=120)

    def objects(self) -> set[str]:
        """What the bucket really holds, listed without the studio's code."""
        listed = self.moto.client().list_objects_v2(Bucket=self.bucket, Prefix="studio/")
        return {o["Key"][len("studio/"):] for o in listed.get("Contents", [])}

    def spooled(self) -> set[str]:
        spool = self.home / "spool"
        return {p.name for p in spool.iterdir()} if spool.exists() else set()


@pytest.fixture
def rig(tmp_path: Path, moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    no_aws_files = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
                    "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials")}
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in no_aws_files.items():
        monkeypatch.setenv(name, value)
    proxy = HoldingProxy(moto.port).start()
    server = ScriptedServer()
    bucket = moto.new_bucket()
    env = {"SCRIPTED_URL": server.url, "STUDIO_STORAGE_URL": f"s3://{bucket}/studio",
           **aws_env(proxy.endpoint), **no_aws_files}
    rig = Rig(tmp_path / "home", bucket, moto, proxy, server, env)
    yield rig
    proxy.release()
    server.release()
    server.close()
    proxy.stop()


@dataclass
class Stage:
    """How to hold a job at one stage: the jobs (prompt, model), what the store holds, and when the
    stage is reached; `resent`: jobs that had no request id at the kill, so their provider call is made again."""

    jobs: list[tuple[str, str]]
    reached: Callable[[Rig, list[str]], None]
    store_hold: tuple[str, str] | None = None
    resent: tuple[int, ...] = ()
    recovered: dict[str, int] = field(default_factory=dict)


def _submitted_unanswered(rig: Rig, ids: list[str]) -> None:
    rig.server.wait_for(lambda s: all(i in s.arrivals for i in ids), timeout=60)


def _polled(rig: Rig, ids: list[str]) -> None:
    # A job is polled only after its request id was committed.
    rig.server.wait_for(lambda s: {j["job_id"] for j in s.jobs.values() if j["polls"] >= 1} >= set(ids), timeout=60)


def _store_held(rig: Rig, ids: list[str]) -> None:
    rig.proxy.wait_held(len(ids))


STAGES = {
    # The provider has the request and has not answered: no request id anywhere, so it is sent again.
    "submitting": Stage([("[hold-submit]", TXT), ("[hold-generate]", ONE_SHOT)], _submitted_unanswered,
                        resent=(0, 1), recovered={"resumed": 0, "resubmitted": 2, "storing": 0}),
    "polling": Stage([("[stall]", TXT)] * 3, _polled, recovered={"resumed": 3, "resubmitted": 0, "storing": 0}),
    # The image is spooled; its PUT to the store is held: nothing stored yet.
    "storing": Stage([("", TXT), ("", ONE_SHOT)], _store_held, store_hold=("PUT", ".png"),
                     recovered={"resumed": 0, "resubmitted": 0, "storing": 2}),
    # The image is in the store; its thumbnail's PUT is held, so the result row is not committed.
    "committing": Stage([("", TXT), ("", ONE_SHOT)], _store_held, store_hold=("PUT", ".thumb.webp"),
                        recovered={"resumed": 0, "resubmitted": 0, "storing": 2}),
}


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(STAGES))
def test_sigkill_at_each_stage_then_restart_completes_every_job_exactly_once(rig: Rig, stage: str):
    spec = STAGES[stage]
    with rig.open() as studio:
        character = studio.characters.create({"name": "Eve", "description": "A courier."})
        ids = [studio.portraits.generate(character.id, prompt=prompt, model_id=model)[0].id for prompt, model in spec.jobs]
    if spec.store_hold:
        rig.proxy.hold(*spec.store_hold, count=len(ids))

    first = rig.start()
    try:
        spec.reached(rig, ids)
    finally:
        first.kill()
        output = first.communicate(timeout=30)[0]
    assert first.returncode == -9, output
    rig.proxy.release()
    rig.server.release()

    # The kill hit the stage: every job is still at work and nothing was recorded.
    with rig.open() as studio:
        assert [studio.jobs.get(i).status for i in ids] == ["running"] * len(ids), output
        assert studio.ctx.db.scalar("SELECT count(*) FROM character_portraits") == 0
    if stage in ("storing", "committing"):
        assert rig.spooled() == {f"{i}.img" for i in ids}  # the paid-for images survived the kill
        # Keys as docs/storage.md lays them out: {owner}/portraits/{character}/{job}.png
        written = {f"local/portraits/{character.id}/{i}.png" for i in ids} if stage == "committing" else set()
        assert rig.objects() == written

    second = rig.run()
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"recovered {spec.recovered}" in second.stdout

    with rig.open() as studio:
        jobs = [studio.jobs.get(i) for i in ids]
        assert [j.status for j in jobs] == ["completed"] * len(ids), [j.last_error for j in jobs]
        portraits = [studio.portraits.get(j.result_id) for j in jobs]
        assert studio.portraits.list(character.id).total == len(ids)  # one portrait per job, no more
        for p in portraits:
            assert sha256(studio.portraits.image_bytes(p.id)) == p.recipe.sha256  # whole, not a torn write
    paid = [rig.server.submissions.get(i, 0) for i in ids]
    assert paid == [2 if n in spec.resent else 1 for n in range(len(ids))], paid
    expected = {k for p in portraits for k in (p.image_key, p.thumbnail_key)}
    assert all(thumbnail_key(p.image_key) == p.thumbnail_key for p in portraits)
    assert rig.objects() == expected  # no orphaned object
    assert rig.spooled() == set()  # no spool left behind
