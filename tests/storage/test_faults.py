"""Storage faults: an S3 outage while jobs store, injected 5xx/throttling/resets, read failures."""
from __future__ import annotations

import logging

import pytest

from core.errors import StorageError
from core.images import placeholder
from core.storage import portrait_key, thumbnail_key
from core.studio import Studio
from tests.conftest import make_settings
from tests.storage.conftest import FAKE_SECRET, MotoServer, aws_env, http_get, wait_until
from tests.storage.faultproxy import Fault, FaultProxy


@pytest.fixture
def outage_server():
    """A moto server of its own, so stopping it does not disturb other tests."""
    server = MotoServer().start()
    yield server
    server.close()


def s3_settings(tmp_path, endpoint, bucket, **env):
    return make_settings(tmp_path / "home", {"STUDIO_STORAGE_URL": f"s3://{bucket}/studio", **aws_env(endpoint), **env})


def open_s3(tmp_path, endpoint, bucket, **env) -> Studio:
    return Studio.open(settings=s3_settings(tmp_path, endpoint, bucket, **env), retry_base=0.02)


def expected_keys(jobs):
    return sorted(k for j in jobs for k in (portrait_key(j.owner, j.character_id, j.id),
                                              thumbnail_key(portrait_key(j.owner, j.character_id, j.id))))


def stored_keys(server: MotoServer, bucket: str) -> list[str]:
    resp = server.client().list_objects_v2(Bucket=bucket, Prefix="studio/")
    return sorted(o["Key"][len("studio/"):] for o in resp.get("Contents", []) if "/portraits/" in o["Key"])


def test_jobs_survive_an_s3_outage_while_storing(tmp_path, outage_server, caplog):
    bucket = outage_server.new_bucket()
    studio = open_s3(tmp_path, outage_server.endpoint, bucket, STUDIO_STORAGE_WRITE_ATTEMPTS="2")
    try:
        character = studio.characters.create({"name": "Ola", "description": "A sailor."})
        outage_server.stop()
        jobs = studio.portraits.generate(character.id, n=3, width=256, height=256)
        ids = [j.id for j in jobs]

        def all_waiting_for_storage():
            current = [studio.jobs.get(i) for i in ids]
            return all(j.status == "storing" and (j.last_error or "").startswith("could not write") for j in current)

        wait_until(all_waiting_for_storage, studio, timeout=60, what="every job to wait for storage")
        assert studio.portraits.list(character.id).total == 0  # nothing recorded while the store is down
        assert all((studio.ctx.settings.spool_dir / f"{i}.img").exists() for i in ids)  # the bytes are kept
        outage_server.start()
        done = studio.jobs.wait(ids, timeout=90)
        assert [j.status for j in done] == ["completed"] * 3, [j.last_error for j in done]
        assert stored_keys(outage_server, bucket) == expected_keys(done)
        for portrait in studio.portraits.list(character.id).items:
            assert http_get(studio.images.src(portrait.image_key)).status_code == 200
        assert not any((studio.ctx.settings.spool_dir / f"{i}.img").exists() for i in ids)
    finally:
        studio.close()
    text = caplog.text + "".join(j.last_error or "" for j in done)
    assert FAKE_SECRET not in text


def test_storing_jobs_finish_after_the_store_and_the_studio_restart(tmp_path, outage_server):
    bucket = outage_server.new_bucket()
    studio = open_s3(tmp_path, outage_server.endpoint, bucket, STUDIO_STORAGE_WRITE_ATTEMPTS="1")
    character = studio.characters.create({"name": "Per", "description": "A pilot."})
    outage_server.stop()
    jobs = studio.portraits.generate(character.id, n=2, width=256, height=256)
    ids = [j.id for j in jobs]
    wait_until(lambda: all(studio.jobs.get(i).status == "storing" for i in ids), studio, what="jobs to be storing")
    studio.close()
    with pytest.raises(StorageError, match="cannot reach the S3 endpoint"):
        open_s3(tmp_path, outage_server.endpoint, bucket)  # the startup check says so while the store is down
    outage_server.start()
    studio = open_s3(tmp_path, outage_server.endpoint, bucket)
    try:
        assert studio.engine.runner.recovered["storing"] == 2
        done = studio.jobs.wait(ids, timeout=90)
        assert [j.status for j in done] == ["completed"] * 2
        assert stored_keys(outage_server, bucket) == expected_keys(done)
        assert studio.portraits.list(character.id).total == 2
    finally:
        studio.close()


def test_injected_5xx_throttling_and_resets_on_writes_are_retried(tmp_path, moto):
    bucket = moto.new_bucket()
    proxy = FaultProxy(moto.port).start()
    try:
        studio = open_s3(tmp_path, proxy.endpoint, bucket, STUDIO_STORAGE_WRITE_ATTEMPTS="8")
        try:
            character = studio.characters.create({"name": "Rin", "description": "A runner."})
            for fault in (Fault("PUT", "status", 2, 503, "SlowDown"), Fault("PUT", "status", 1, 500, "InternalError"),
                          Fault("PUT", "status", 1, 429, "TooManyRequests"), Fault("PUT", "reset", 1),
                          Fault("PUT", "drop_response", 1)):
                proxy.add(fault)
            [job] = studio.portraits.generate(character.id, width=256, height=256)
            [job] = studio.jobs.wait([job.id], timeout=60)
            assert job.status == "completed" and job.last_error is None
            puts = proxy.outcomes("PUT", "/portraits/")
            assert puts[:6] == ["503 SlowDown", "503 SlowDown", "500 InternalError", "429 TooManyRequests", "reset",
                                "forwarded 200, response dropped"]
            assert puts[6:] == ["200", "200"]  # the image again (same key, same bytes), then the thumbnail
            # the store backed off and retried each failure; aiohttp may itself resend an idempotent PUT
            # once when a reused keep-alive connection is reset, so the dropped response needs no store retry
            assert studio.ctx.store.stats["write_retries"] in (5, 6)
            portrait = studio.portraits.get(job.result_id)
            assert stored_keys(moto, bucket) == expected_keys([job])
            assert http_get(studio.images.src(portrait.image_key)).content == studio.portraits.download(portrait.id)[0]
        finally:
            studio.close()
    finally:
        proxy.stop()


def test_a_write_is_complete_or_absent(tmp_path, moto):
    """Writes that keep failing leave neither an object nor a row; the job completes once writes pass."""
    bucket = moto.new_bucket()
    proxy = FaultProxy(moto.port).start()
    try:
        studio = open_s3(tmp_path, proxy.endpoint, bucket, STUDIO_STORAGE_WRITE_ATTEMPTS="2")
        try:
            character = studio.characters.create({"name": "Sol", "description": "A sun."})
            block = proxy.add(Fault("PUT", "reset", 10_000, path_contains="/portraits/"))
            [job] = studio.portraits.generate(character.id, width=256, height=256)
            # two storing rounds of two attempts each, all refused at the HTTP level
            wait_until(lambda: len(proxy.outcomes("PUT", "/portraits/")) >= 4, studio, what="two failed storing rounds")
            assert stored_keys(moto, bucket) == [] and studio.portraits.list(character.id).total == 0
            assert studio.jobs.get(job.id).status == "storing"
            block.count = block.fired  # the store is healthy again
            [job] = studio.jobs.wait([job.id], timeout=60)
            assert job.status == "completed" and stored_keys(moto, bucket) == expected_keys([job])
        finally:
            studio.close()
    finally:
        proxy.stop()


def test_a_local_write_that_fails_midway_leaves_nothing(tmp_path, monkeypatch):
    from core.storage import ImageStore

    store = ImageStore((tmp_path / "images").as_uri())

    class Boom(OSError):
        pass

    real_open = store.fs.open

    def failing_open(path, mode="rb", **kw):
        fh = real_open(path, mode, **kw)
        if "w" in mode:
            original = fh.write

            def write(data):
                original(data[: len(data) // 2])
                raise Boom("disk full")

            fh.write = write
        return fh

    monkeypatch.setattr(store.fs, "open", failing_open)
    with pytest.raises(StorageError, match="could not write"):
        store.write("u/portraits/c/j.png", b"x" * 1000)
    assert list(store.keys(include_partial=True)) == []


def test_a_read_failure_renders_a_placeholder(tmp_path, outage_server, caplog):
    # local disk: the file is gone
    local = Studio.open(settings=make_settings(tmp_path / "local"), retry_base=0.01)
    try:
        character = local.characters.create({"name": "Una", "description": "An usher."})
        [job] = local.jobs.wait([local.portraits.generate(character.id, width=128, height=128)[0].id], timeout=30)
        portrait = local.portraits.get(job.result_id)
        (tmp_path / "local" / "images" / portrait.thumbnail_key).unlink()
        with caplog.at_level(logging.WARNING):
            assert local.images.src(portrait.thumbnail_key) == placeholder()
        assert "placeholder" in caplog.text and "missing" in caplog.text
    finally:
        local.close()
    # S3 serving bytes (presigned URLs turned off): the store is down
    bucket = outage_server.new_bucket()
    studio = open_s3(tmp_path, outage_server.endpoint, bucket, STUDIO_SIGN_EXPIRY="0", STUDIO_STORAGE_WRITE_ATTEMPTS="1")
    try:
        character = studio.characters.create({"name": "Vic", "description": "A vicar."})
        [job] = studio.jobs.wait([studio.portraits.generate(character.id, width=128, height=128)[0].id], timeout=30)
        portrait = studio.portraits.get(job.result_id)
        assert studio.images.src(portrait.thumbnail_key)[:4] == b"RIFF"  # WebP bytes while the store is up
        outage_server.stop()
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert studio.images.src(portrait.thumbnail_key) == placeholder()
        assert "could not read" in caplog.text and FAKE_SECRET not in caplog.text
        with pytest.raises(StorageError, match="could not read"):
            studio.portraits.download(portrait.id)  # an explicit download says why it failed
        outage_server.start()
    finally:
        studio.close()

