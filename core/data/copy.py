"""`studio db copy`: a DuckDB home's rows into an empty PostgreSQL database, verified table by table.

The source is opened as the studio opens it (so a running studio's lock refuses the copy with
`DatabaseLocked`, and both sides are migrated to the same schema). The target is migrated, must hold
no rows, and is filled in ONE transaction: a failure leaves it empty. Images are not copied: both
databases name the same keys, and the store stays where `STUDIO_STORAGE_URL` points.

Jobs in flight when the DuckDB studio stopped keep working on PostgreSQL: their leases are written
as already expired, so the first server takes them over (resuming by provider request id), and
paid-for images waiting in the home's spool folder move into the shared spool table.
"""
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from core.config import Settings, check_database_url
from core.data.database import DuckDatabase, PostgresDatabase, display_url
from core.errors import InvalidInput, InvalidSetting, StudioError
from core.models import ACTIVE_STATUSES
from core.engine.jobs import lease_to
from core.engine.spool import DatabaseSpool, FileSpool
from core.storage import redact_url

BATCH_ROWS = 1000
# Parents before the rows that name them; tables not listed (a later migration's) follow by name.
TABLE_ORDER = ["users", "api_providers", "api_models", "character_templates", "characters", "uploads",
               "character_scenes", "character_portraits", "scene_images", "jobs", "job_spool"]
SKIPPED = {"schema_migrations"}  # each side has its own (the target's written by its migration)
EXPIRED_LEASE = datetime(2000, 1, 1)  # any server takes an in-flight job over at once
COPY_LEASE_OWNER = "db-copy"


class TableCopy(BaseModel):
    table: str
    source_rows: int
    target_rows: int


class DatabaseCopyReport(BaseModel):
    source: str
    target: str
    storage_url: str
    tables: list[TableCopy]
    spooled_images: int = 0
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return all(t.source_rows == t.target_rows for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(t.target_rows for t in self.tables)

    def summary(self) -> str:
        width = max(len(t.table) for t in self.tables)
        lines = [f"Copied {self.source} to {self.target} in {self.duration_ms / 1000:.1f} s:"]
        lines += [f"  {t.table.ljust(width)}  {t.target_rows:>8} rows"
                  + ("" if t.source_rows == t.target_rows else f"  (source has {t.source_rows}: MISMATCH)")
                  for t in self.tables]
        if self.spooled_images:
            lines.append(f"  {self.spooled_images} paid-for images waiting to be stored moved into the shared spool")
        lines.append(f"Row counts {'verified' if self.ok else 'DIFFER'} for {len(self.tables)} tables. Images were not "
                     f"copied: they stay in {self.storage_url}; give every server that STUDIO_STORAGE_URL and "
                     "STUDIO_DATABASE_URL=<the target>.")
        return "\n".join(lines)


def copy_database(settings: Settings, to_url: str, *, batch_rows: int = BATCH_ROWS) -> DatabaseCopyReport:
    """Copy the DuckDB database of `settings` into the empty PostgreSQL database at `to_url`."""
    if settings.database_url:
        raise InvalidSetting("studio db copy copies a home's DuckDB file: unset STUDIO_DATABASE_URL for it "
                             "(the target is given with --to).")
    try:
        to_url = check_database_url((to_url or "").strip())
    except InvalidSetting:
        raise InvalidInput({"to": "must be a postgresql://user:password@host:5432/database URL"}) from None
    if not Path(settings.db_path).exists():
        raise InvalidInput({"home": f"there is no DuckDB database at {settings.db_path} to copy"})
    started = time.perf_counter()
    source = DuckDatabase(settings.db_path, threads=settings.db_threads)
    try:
        target = PostgresDatabase(to_url, pool_size=2)
        try:
            tables = _tables(source, target)
            held = {t: n for t in tables if (n := target.scalar(f"SELECT count(*) FROM {t}"))}
            if held:
                raise InvalidInput({"to": f"the database {display_url(to_url)} already holds data ("
                                    + ", ".join(f"{n} rows in {t}" for t, n in held.items())
                                    + "); studio db copy only fills an empty one"})
            counts, spooled = _copy(source, target, tables, FileSpool(settings.spool_dir), batch_rows)
        finally:
            target.close()
    finally:
        source.close()
    return DatabaseCopyReport(source=str(settings.db_path), target=display_url(to_url),
                              storage_url=redact_url(settings.storage_url), tables=counts, spooled_images=spooled,
                              duration_ms=(time.perf_counter() - started) * 1000)


def _table_names(db: Any) -> set[str]:
    schema = "public" if db.shared else "main"
    return {r["table_name"] for r in db.fetchall(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE'",
        [schema])} - SKIPPED


def _tables(source: DuckDatabase, target: PostgresDatabase) -> list[str]:
    """The tables to copy, parents first; both sides must be at the same schema version."""
    versions = [db.scalar("SELECT max(version) FROM schema_migrations") for db in (source, target)]
    if versions[0] != versions[1]:
        raise StudioError(f"The source database is at schema version {versions[0]} and the target at {versions[1]}: "
                          "run the same studio version on both.")
    names = _table_names(source)
    missing = names - _table_names(target)
    if missing:
        raise StudioError(f"The target database lacks the tables {', '.join(sorted(missing))}.")
    return [t for t in TABLE_ORDER if t in names] + sorted(names - set(TABLE_ORDER))


def _copy(source: DuckDatabase, target: PostgresDatabase, tables: list[str], spool: FileSpool,
          batch_rows: int) -> tuple[list[TableCopy], int]:
    counts: list[TableCopy] = []
    spooled = 0
    read = source.cursor()
    with target.transaction() as tx:
        for table in tables:
            read.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in read.description]
            insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            while batch := read.fetchmany(batch_rows):
                tx.executemany(insert, batch)
            counts.append(TableCopy(table=table, source_rows=source.scalar(f"SELECT count(*) FROM {table}"),
                                    target_rows=tx.execute(f"SELECT count(*) FROM {table}").fetchone()[0]))
            if table == "jobs":
                spooled = _hand_over_in_flight(source, tx, spool)
        # jobs.seq continues after the copied jobs (a new job sorts after every old one)
        tx.execute("SELECT setval('job_seq', greatest((SELECT max(seq) FROM jobs), 0) + 1, false)")
    return counts, spooled


def _hand_over_in_flight(source: DuckDatabase, tx: Any, spool: FileSpool) -> int:
    """Jobs the DuckDB studio had in flight: expired leases (a server takes them over) and their spooled images."""
    active = [r["id"] for r in source.fetchall(
        f"SELECT id FROM jobs WHERE status IN ({', '.join('?' * len(ACTIVE_STATUSES))}) AND status <> 'queued'",
        list(ACTIVE_STATUSES))]
    lease_to(tx, active, COPY_LEASE_OWNER, EXPIRED_LEASE)
    spooled = 0
    for job_id in active:
        data = spool.read(job_id)
        if data is not None:
            DatabaseSpool.write_in(tx, job_id, data)
            spooled += 1
    return spooled
