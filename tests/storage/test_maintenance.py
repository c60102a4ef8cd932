"""`studio gc` and `studio storage copy` on both backends."""
from __future__ import annotations

import json

import pytest

from core import cli
from core.errors import Forbidden, StorageError
from core.images import thumbnail
from core.storage import portrait_key, reference_key, scene_key, thumbnail_key
from core.studio import Studio
from tests.conftest import png_bytes
from tests.storage.conftest import FAKE_SECRET, Backend, aws_env, http_get


def populated(studio: Studio, n: int = 2):
    character = studio.characters.create({"name": "Gus", "description": "A gardener."})
    character = studio.characters.set_reference_upload(character.id, png_bytes((80, 80), (10, 20, 200)))
    jobs = studio.jobs.wait([j.id for j in studio.portraits.generate(character.id, n=n, width=192, height=192)], timeout=60)
    assert all(j.status == "completed" for j in jobs)
    return character, studio.portraits.list(character.id).items


def test_gc_finds_planted_orphans_and_missing_objects_and_deletes_only_what_it_should(backend: Backend):
    studio = backend.open()
    store = studio.ctx.store
    character, portraits = populated(studio)
    owner = studio.actor.id
    temp_upload = studio.uploads.add(png_bytes((70, 70), (250, 250, 0)))  # never attached: expires
    used_upload = studio.uploads.add(png_bytes((72, 72), (0, 250, 250)))  # used by a job's recipe: kept
    other = studio.characters.create({"name": "Ida", "description": "An inventor."})
    [job] = studio.jobs.wait([studio.portraits.generate(other.id, reference="upload", reference_key=used_upload,
                                                         width=128, height=128)[0].id], timeout=60)
    assert job.status == "completed"

    # plant orphans: a crash between write and insert, a scene whose row went, a stray reference
    png = png_bytes((64, 64))
    orphan_portrait = portrait_key(owner, character.id, "f" * 32)
    orphan_scene = scene_key(owner, character.id, "e" * 32)
    orphan_ref = reference_key(owner, "d" * 64, "png")
    planted = {orphan_portrait: "portrait", thumbnail_key(orphan_portrait): "thumbnail", orphan_scene: "scene",
               orphan_ref: "reference"}
    for key in planted:
        store.write(key, png if not key.endswith(".webp") else thumbnail(png))
    if backend.name == "local":  # a temp file left by an interrupted local write
        part = f"{orphan_portrait}.0123abcd.part"
        (backend.tmp / "images" / part).write_bytes(b"half")
        planted[part] = "partial"
    # a job still storing: its image is written but its row is not inserted yet -> not an orphan
    studio.engine.runner.stop()
    [storing] = studio.engine.jobs.create([{"kind": "portrait", "owner": owner, "character_id": character.id,
                                            "batch_id": "b", "provider_id": "offline", "model_id": portraits[0].recipe["model_id"],
                                            "model_key": "offline/preview", "max_attempts": 3, "request": {"final_prompt": "x"}}])
    storing = storing.id
    studio.ctx.db.execute("UPDATE jobs SET status = 'storing' WHERE id = ?", [storing])
    in_flight = portrait_key(owner, character.id, storing)
    store.write(in_flight, png)
    # plant a missing object: a portrait's thumbnail vanished
    backend.raw_delete(portraits[0].thumbnail_key)
    before = set(backend.object_keys())

    report = studio.maintenance.gc(grace_seconds=0, upload_max_age=0)
    assert {o.key: o.kind for o in report.orphans} == planted
    assert all(o.deletable and not o.deleted for o in report.orphans)
    assert [(m.table, m.column, m.row_id) for m in report.missing] == [("character_portraits", "thumbnail_key", portraits[0].id)]
    assert [u.key for u in report.expired_uploads] == [temp_upload]
    assert set(backend.object_keys()) == before  # a dry run changes nothing
    assert "to delete with --apply" in report.summary()

    # young orphans and young uploads are kept even with --apply
    report = studio.maintenance.gc(apply=True, grace_seconds=3600, upload_max_age=3600)
    assert report.deleted_objects == 0 and not any(o.deletable for o in report.orphans)
    assert set(backend.object_keys()) == before

    report = studio.maintenance.gc(apply=True, grace_seconds=0, upload_max_age=0)
    assert sorted(o.key for o in report.orphans if o.deleted) == sorted(planted)
    assert report.deleted_objects == len(planted) + 1 and not report.errors
    after = set(backend.object_keys())
    assert after == before - set(planted) - {temp_upload}
    assert in_flight in after and used_upload in after and character.reference_image_key in after
    assert studio.ctx.db.scalar("SELECT count(*) FROM uploads WHERE key = ?", [temp_upload]) == 0
    for p in portraits[1:]:
        assert backend.raw_read(p.image_key) and backend.raw_read(p.thumbnail_key)
    # the missing row is reported, never changed
    again = studio.maintenance.gc(apply=True, grace_seconds=0, upload_max_age=0)
    assert again.orphans == [] and again.expired_uploads == [] and len(again.missing) == 1
    assert studio.portraits.get(portraits[0].id)

    with pytest.raises(Forbidden):
        studio.as_user("someone-else").maintenance.gc()


def test_cli_gc_and_storage_check(backend: Backend, monkeypatch, capsys):
    studio = backend.open()
    character, portraits = populated(studio, n=1)
    orphan = portrait_key(studio.actor.id, character.id, "a" * 32)
    studio.ctx.store.write(orphan, png_bytes())
    studio.close()
    backend.opened.remove(studio)
    for k, v in {"STUDIO_STORAGE_URL": backend.storage_url, "STUDIO_LOAD_PLUGINS": "", **backend.env}.items():
        monkeypatch.setenv(k, v)
    home = str(backend.tmp / "home")
    assert cli.main(["--home", home, "gc", "--json", "--grace", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [o["key"] for o in report["orphans"]] == [orphan] and report["applied"] is False
    assert cli.main(["--home", home, "gc", "--apply", "--grace", "0"]) == 0
    out = capsys.readouterr().out
    assert "Deleted 1 objects" in out and orphan not in backend.object_keys()
    assert cli.main(["--home", home, "storage", "check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["presigned_urls"] is (backend.name == "s3")
    assert FAKE_SECRET not in out


def test_copy_storage_moves_a_local_home_to_s3(tmp_path, moto, monkeypatch, capsys):
    local = Backend("local", tmp_path)
    studio = local.open(env=aws_env(moto.endpoint))
    character, portraits = populated(studio, n=3)
    scene = studio.scenes.create(character.id, {"name": "Beach", "prompt": "on a beach"})
    [sjob] = studio.jobs.wait([studio.scenes.generate_image(scene.id).id], timeout=60)
    assert sjob.status == "completed"
    source_keys = local.object_keys()
    bucket = moto.new_bucket()
    target = f"s3://{bucket}/moved"

    report = studio.maintenance.copy_storage(target)
    assert report.ok and report.objects == len(source_keys) == report.copied == report.verified
    assert report.bytes_copied == sum(len(local.raw_read(k)) for k in source_keys)
    assert f"STUDIO_STORAGE_URL={target}" in report.summary()
    again = studio.maintenance.copy_storage(target)  # safe to repeat: nothing is copied twice
    assert again.ok and again.copied == 0 and again.already_present == len(source_keys)
    with pytest.raises(StorageError, match="does not exist"):
        studio.maintenance.copy_storage("s3://no-such-bucket-for-copy/x")
    studio.close()
    local.opened.remove(studio)

    # the same home, now on S3: every portrait, thumbnail, scene and reference shows
    moved = Studio.open(settings=local.settings(STUDIO_STORAGE_URL=target, **aws_env(moto.endpoint)), start_runner=False)
    try:
        assert moved.ctx.store.is_s3
        assert sorted(k for k, _, _ in moved.ctx.store.keys()) == source_keys
        page = moved.portraits.list(character.id)
        assert page.total == 3
        for p in page.items:
            for key in (p.image_key, p.thumbnail_key):
                url = moved.images.src(key)
                assert isinstance(url, str) and http_get(url).content == local.raw_read(key)
        shown = moved.scenes.get(scene.id)
        assert http_get(moved.images.src(shown.thumbnail_key)).status_code == 200
        ref = moved.characters.get(character.id).reference_image_key
        assert http_get(moved.images.src(ref)).content == local.raw_read(ref)
        assert moved.maintenance.gc(grace_seconds=0).orphans == []
    finally:
        moved.close()

    # and through the CLI
    bucket2 = moto.new_bucket()
    for k, v in {"STUDIO_STORAGE_URL": local.storage_url, "STUDIO_LOAD_PLUGINS": "", **aws_env(moto.endpoint)}.items():
        monkeypatch.setenv(k, v)
    assert cli.main(["--home", str(tmp_path / "home"), "storage", "copy", "--to", f"s3://{bucket2}/p", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["copied"] == len(source_keys) and out["failures"] == []
    assert cli.main(["--home", str(tmp_path / "home"), "storage", "copy", "--to", "s3://missing-bucket-cli/p"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and FAKE_SECRET not in err


URL_SECRET = "url-secret-never-shown-4242"


@pytest.mark.parametrize("to, env, says", [
    (f"s3://AKIAURLKEY:{URL_SECRET}@bucket/p", {}, "carries credentials; give S3 credentials in AWS_ACCESS_KEY_ID"),
    ("s3://not a bucket!/p", {}, "does not name an S3 bucket"),
    ("s3://bucket/p", {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "no-such-profile"},
     "the AWS profile named by AWS_PROFILE is not in the AWS config files"),
    ("s3://bucket/p", {"AWS_DEFAULT_REGION": "not a region!"}, "AWS_DEFAULT_REGION (or AWS_REGION) is not a region name"),
    ("s3://bucket/p", {"AWS_ENDPOINT_URL": "not a url"}, "AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3, STUDIO_S3_ENDPOINT_URL) is not a URL"),
], ids=["credentials in the URL", "bad bucket name", "unknown profile", "bad region", "bad endpoint"])
def test_storage_copy_with_bad_s3_settings_says_what_to_fix_in_one_line(tmp_path, moto, monkeypatch, capsys, to, env, says):
    for k, v in {"STUDIO_STORAGE_URL": (tmp_path / "images").as_uri(), "STUDIO_LOAD_PLUGINS": "",
                 **aws_env(moto.endpoint), **env}.items():
        monkeypatch.setenv(k, v)
    assert cli.main(["--home", str(tmp_path / "home"), "storage", "copy", "--to", to]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("studio: ") and says in err
    assert "Traceback" not in err and "botocore" not in err and "Error:" not in err
    assert URL_SECRET not in err and FAKE_SECRET not in err
