"""Settings, migrations, transactions and the clear error for a database held by another process."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from core.config import Settings
from core.data import DuckDatabase as Database
from core.errors import DatabaseLocked


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


# What the studio stores, table by table (the fields of characters, portraits, scenes, models and jobs that the
# README describes), written out here rather than read from the migrations; a minimum: later ones may add more.
REQUIRED_SCHEMA = {
    "users": {"id", "display_name", "email", "is_admin", "created_at"},
    "characters": {"id", "owner", "name", "description", "gender", "content_rating", "is_public", "traits", "persona",
                   "appearance_tags", "clothing_tags", "voice_tone", "mood", "first_message", "alternate_greetings",
                   "forbidden_phrases", "voice_examples", "system_prompt", "default_presets", "reference_image_key",
                   "primary_portrait_id", "created_at", "updated_at"},
    "character_portraits": {"id", "character_id", "owner", "image_key", "thumbnail_key", "prompt", "recipe", "job_id",
                            "sort_order", "width", "height", "created_at"},
    "character_scenes": {"id", "character_id", "owner", "name", "description", "prompt", "type", "starters",
                         "system_prompt", "priority", "created_at", "updated_at"},
    "scene_images": {"id", "scene_id", "character_id", "owner", "image_key", "thumbnail_key", "prompt", "recipe",
                     "job_id", "created_at"},
    "character_templates": {"id", "name", "summary", "created_at"},
    "api_providers": {"id", "display_name", "concurrency_limit", "is_enabled"},
    "api_models": {"id", "provider_id", "model_key", "display_name", "capabilities", "is_active", "priority",
                   "input_defaults"},
    "jobs": {"id", "kind", "owner", "character_id", "scene_id", "status", "stage", "provider_id", "model_id", "model_key",
             "request", "provider_request_id", "attempts", "max_attempts", "next_attempt_at", "last_error", "result_id",
             "created_at", "started_at", "finished_at", "provider_ms"},
    "uploads": {"key", "owner", "sha256", "content_type", "size", "width", "height", "created_at"},
}


def schema(db: Database) -> dict[str, set[str]]:
    rows = db.fetchall("SELECT table_name, column_name FROM information_schema.columns")
    tables: dict[str, set[str]] = {}
    for r in rows:
        tables.setdefault(r["table_name"], set()).add(r["column_name"])
    return tables


def test_a_new_database_has_the_schema_and_records_each_migration_once(tmp_path):
    db = Database(tmp_path / "s.duckdb")
    tables = schema(db)
    for table, columns in REQUIRED_SCHEMA.items():
        assert table in tables, f"table {table} is missing"
        assert columns <= tables[table], f"{table} lacks {sorted(columns - tables[table])}"
    versions = [r["version"] for r in db.fetchall("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions and versions == list(range(1, len(versions) + 1))  # each applied once, in order, none skipped
    assert all(r["name"] for r in db.fetchall("SELECT name FROM schema_migrations"))
    db.close()


def test_reopening_changes_nothing(tmp_path):
    db = Database(tmp_path / "s.duckdb")
    db.execute("INSERT INTO users VALUES ('a', 'A', NULL, FALSE, now())")
    before = schema(db), db.fetchall("SELECT * FROM schema_migrations ORDER BY version")
    db.close()
    db = Database(tmp_path / "s.duckdb")
    assert db.migrate() == []  # nothing left to apply
    assert (schema(db), db.fetchall("SELECT * FROM schema_migrations ORDER BY version")) == before
    assert db.scalar("SELECT display_name FROM users WHERE id = 'a'") == "A"  # data kept
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
