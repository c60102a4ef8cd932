"""Where a paid-for image waits between the provider and the image store.

With DuckDB (one server) it is a file per job in the home's spool folder, fsync'd before the
image goes anywhere. With PostgreSQL it is a row of `job_spool` in the shared database: the job
of a server that dies while storing is finished by another server, which cannot read the dead
one's disk, and re-fetching by request id would not do (one-shot providers have no request id,
and providers keep results only for a while). The commit is as durable as the fsync.
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from core.data import Cursor, Database, marks, utcnow
from core.models import ACTIVE_STATUSES


class FileSpool:
    """One file per job in a local folder."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.img"

    def write(self, job_id: str, data: bytes) -> None:
        path = self.path(job_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def read(self, job_id: str) -> bytes | None:
        try:
            return self.path(job_id).read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, job_id: str) -> None:
        self.path(job_id).unlink(missing_ok=True)

    def ids(self) -> set[str]:
        return {p.stem for p in self.folder.glob("*.img")} if self.folder.exists() else set()


class DatabaseSpool:
    """One row per job in the shared database (the `job_spool` table is this class's alone)."""

    def __init__(self, db: Database):
        self.db = db

    def write(self, job_id: str, data: bytes) -> None:
        # A job run again spools anew: `created_at` tells its row from the one a gc run listed.
        self.db.execute("INSERT INTO job_spool VALUES (?, ?, ?) ON CONFLICT (job_id) "
                        "DO UPDATE SET data = excluded.data, created_at = excluded.created_at", [job_id, data, utcnow()])

    @staticmethod
    def write_in(cur: Cursor, job_id: str, data: bytes) -> None:
        """Spool inside the caller's transaction (`studio db copy`)."""
        cur.execute("INSERT INTO job_spool VALUES (?, ?, ?)", [job_id, data, utcnow()])

    def read(self, job_id: str) -> bytes | None:
        data = self.db.scalar("SELECT data FROM job_spool WHERE job_id = ?", [job_id])
        return None if data is None else bytes(data)

    def remove(self, job_id: str) -> None:
        self.db.execute("DELETE FROM job_spool WHERE job_id = ?", [job_id])

    def ids(self) -> set[str]:
        return {r["job_id"] for r in self.db.fetchall("SELECT job_id FROM job_spool")}

    def entries(self) -> list[tuple[str, int, datetime]]:
        """(job id, bytes, when spooled) of every spooled image, for `studio gc`."""
        return [(r["job_id"], r["size"], r["created_at"]) for r in self.db.fetchall(
            "SELECT job_id, octet_length(data) AS size, created_at FROM job_spool ORDER BY job_id")]

    def remove_leftover(self, job_id: str, created_at: datetime) -> bool:
        """Delete the image spooled for `job_id` at `created_at` unless its job is at work again
        (queued, running or storing) or spooled anew since; whether it was deleted."""
        return bool(self.db.execute(
            "DELETE FROM job_spool s WHERE job_id = ? AND created_at = ? AND NOT EXISTS "
            f"(SELECT 1 FROM jobs j WHERE j.id = s.job_id AND j.status IN ({marks(ACTIVE_STATUSES)}))",
            [job_id, created_at, *ACTIVE_STATUSES]))


def open_spool(db: Database, folder: Path) -> FileSpool | DatabaseSpool:
    return DatabaseSpool(db) if db.shared else FileSpool(folder)
