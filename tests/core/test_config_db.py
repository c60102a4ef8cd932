"""Settings, migrations, transactions and the clear error for a database held by another process."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from core.config import Settings
from core.db import Database
from core.errors import DatabaseLocked
from core.migrations import MIGRATIONS


def test_settings_need_no_configuration(tmp_path):
    s = Settings.from_env(env={})
    assert s.home.name in ("home", ".character-studio") and s.db_path == s.home / "studio.duckdb"
    assert s.storage_url == (s.home / "images").as_uri()
    assert s.secret("FAL_KEY") is None


def test_settings_read_the_environment(tmp_path):
    s = Settings.from_env(env={"STUDIO_HOME": str(tmp_path), "STUDIO_STORAGE_URL": "memory://x",
                               "FAL_KEY": "id:secret", "STUDIO_DB": str(tmp_path / "db.duckdb")})
    assert s.home == tmp_path and s.storage_url == "memory://x" and s.db_path == tmp_path / "db.duckdb"
    assert s.secret("FAL_KEY") == "id:secret"
    assert "id:secret" not in repr(s)


def test_migrations_are_recorded_once_and_reopening_is_idempotent(tmp_path):
    db = Database(tmp_path / "s.duckdb")
    rows = db.fetchall("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [(v, n) for v, n, _ in MIGRATIONS]
    tables = {r["table_name"] for r in db.fetchall("SELECT table_name FROM information_schema.tables")}
    assert {"users", "characters", "character_portraits", "character_scenes", "character_templates",
            "api_providers", "api_models", "jobs"} <= tables
    db.close()
    db = Database(tmp_path / "s.duckdb")
    assert db.migrate() == []
    db.close()


def test_a_failed_transaction_leaves_nothing_behind(tmp_path):
    db = Database(tmp_path / "s.duckdb")
    with pytest.raises(RuntimeError):
        with db.transaction() as cur:
            cur.execute("INSERT INTO users VALUES ('a', 'A', NULL, FALSE, now())")
            raise RuntimeError("boom")
    assert db.scalar("SELECT count(*) FROM users") == 0
    db.close()


def test_a_second_process_gets_a_clear_error(tmp_path):
    path = tmp_path / "s.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys
            con = duckdb.connect({str(path)!r})
            print("ready", flush=True)
            sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(DatabaseLocked) as err:
            Database(path)
        assert "in use by another process" in err.value.message and str(holder.pid) in err.value.message
    finally:
        holder.stdin.close()
        holder.wait(10)
