"""`studio db copy --to postgresql://…`: a DuckDB home's rows into an empty PostgreSQL database, verified
per table; a studio on PostgreSQL then shows the same characters, portraits and jobs, and images stay put."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import psycopg

from core.studio import Studio
from tests.conftest import make_settings, png_bytes

STUDIO = Path(sys.executable).with_name("studio")


def _env(home: Path, images: Path) -> dict[str, str]:
    return {**os.environ, "STUDIO_HOME": str(home), "STUDIO_STORAGE_URL": images.as_uri(), "STUDIO_LOAD_PLUGINS": "",
            "STUDIO_DATABASE_URL": ""}


def _copy(env: dict[str, str], url: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(STUDIO), "db", "copy", "--to", url, *extra], env=env, capture_output=True, text=True,
                          timeout=120)


def _duck_counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                             "WHERE table_schema = 'main' AND table_name <> 'schema_migrations'").fetchall()]
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        con.close()


def _pg_count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _one_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def test_a_duckdb_home_copied_to_postgresql_is_the_same_studio_there(tmp_path, postgres):
    home, images = tmp_path / "home", tmp_path / "images"
    settings = make_settings(home, {"STUDIO_STORAGE_URL": images.as_uri()})
    with Studio.open(settings=settings) as studio:
        mia = studio.characters.create({"name": "Mia", "description": "A barista", "appearance_tags": ["red hair"]})
        leo = studio.characters.create({"name": "Leo", "description": "A sailor"})
        done = studio.jobs.wait([j.id for j in studio.portraits.generate(mia.id, n=3)], timeout=60)
        scene = studio.scenes.create(leo.id, {"name": "Harbour", "prompt": "at the docks"})
        done += studio.jobs.wait([studio.scenes.generate_image(scene.id).id], timeout=60)
        assert {j.status for j in done} == {"completed"}
        upload = studio.uploads.add(png_bytes(color=(10, 200, 10)))
    with Studio.open(settings=settings, start_runner=False) as studio:  # one job left queued for PostgreSQL
        [pending] = studio.portraits.generate(leo.id, n=1)
        before_portraits = studio.portraits.list(mia.id).items
        before_jobs = studio.jobs.list(limit=50).items
        portrait_bytes = {p.id: studio.portraits.image_bytes(p.id) for p in before_portraits}
    source = _duck_counts(home / "studio.duckdb")
    for table in ("characters", "character_portraits", "character_scenes", "scene_images", "jobs", "uploads"):
        assert source[table] > 0, table

    url = postgres.empty()  # no tables at all: the command migrates it
    out = _copy(_env(home, images), url, "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {t["table"]: t["target_rows"] for t in report["tables"]} == source
    assert all(t["source_rows"] == t["target_rows"] for t in report["tables"])
    assert report["storage_url"] == images.as_uri()
    order = [t["table"] for t in report["tables"]]
    assert order.index("characters") < order.index("character_portraits") < order.index("jobs")
    for table, rows in source.items():  # counted by PostgreSQL itself, not by the command
        assert _pg_count(url, table) == rows, table

    assert "no DuckDB database" in _one_line(_copy(_env(tmp_path / "other", images), postgres.empty()))
    again = _copy(_env(home, images), postgres.empty())
    assert again.returncode == 0, again.stderr
    assert "verified" in again.stdout and images.as_uri() in again.stdout and "not copied" in again.stdout

    pg_settings = make_settings(tmp_path / "server", {"STUDIO_DATABASE_URL": url, "STUDIO_STORAGE_URL": images.as_uri()})
    with Studio.open(settings=pg_settings) as studio:
        names = sorted(c.name for c in studio.characters.list().items)
        assert names == ["Leo", "Mia"]
        after = studio.portraits.list(mia.id).items
        assert [p.id for p in after] == [p.id for p in before_portraits]
        assert {p.id: studio.portraits.image_bytes(p.id) for p in after} == portrait_bytes  # the same images, not copied
        assert [(j.id, j.status) for j in studio.jobs.list(limit=50).items
                if j.id != pending.id] == [(j.id, j.status) for j in before_jobs if j.id != pending.id]
        [finished] = studio.jobs.wait([pending.id], timeout=60)  # the queued job runs on PostgreSQL
        assert finished.status == "completed"
        [new] = studio.portraits.generate(mia.id, n=1)  # numbering continues after the copied jobs
        assert studio.jobs.list(limit=1).items[0].id == new.id
        assert upload in {r["key"] for r in studio.ctx.db.fetchall("SELECT key FROM uploads")}


def test_a_target_that_holds_data_is_refused_and_left_as_it_was(tmp_path, postgres):
    home, images = tmp_path / "home", tmp_path / "images"
    with Studio.open(settings=make_settings(home, {"STUDIO_STORAGE_URL": images.as_uri()})) as studio:
        studio.characters.create({"name": "Mia"})
    url = postgres.fresh()
    with Studio.open(settings=make_settings(tmp_path / "pg", {"STUDIO_DATABASE_URL": url})) as studio:
        studio.characters.create({"name": "Already here"})
    held = {t: _pg_count(url, t) for t in ("characters", "users", "api_models")}
    line = _one_line(_copy(_env(home, images), url))
    assert "already holds data" in line and "characters" in line
    assert {t: _pg_count(url, t) for t in held} == held


def test_bad_targets_and_a_running_studio_give_one_line(tmp_path, postgres):
    home, images = tmp_path / "home", tmp_path / "images"
    settings = make_settings(home, {"STUDIO_STORAGE_URL": images.as_uri()})
    with Studio.open(settings=settings) as studio:
        studio.characters.create({"name": "Mia"})
    env = _env(home, images)
    assert "postgresql://" in _one_line(_copy(env, "mysql://user@host/db"))
    missing = postgres.url("no_such_database")
    assert "Cannot connect" in _one_line(_copy(env, missing))
    with Studio.open(settings=settings, start_runner=False):  # this process holds the DuckDB file
        assert "in use by another process" in _one_line(_copy(env, postgres.empty()))
