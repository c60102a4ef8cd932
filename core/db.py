"""DuckDB access: one connection per process, a cursor per thread, one writer at a time."""
from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from core.errors import DatabaseError, DatabaseLocked
from core.migrations import MIGRATIONS

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    """Naive UTC now (DuckDB TIMESTAMP columns hold UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def loads(value: str | None, default: Any = None) -> Any:
    return default if value is None else json.loads(value)


def marks(values: Any) -> str:
    """`?, ?, ?`: one parameter placeholder per value."""
    return ", ".join("?" * len(values))


class Database:
    """The process's DuckDB connection.

    DuckDB allows one read-write process per file. Inside the process every thread gets its
    own cursor; writes go through `transaction()`, which also serialises writers so two
    threads never conflict on the same row.
    """

    def __init__(self, path: str | Path, threads: int = 1):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path))
        except duckdb.IOException as exc:
            text = str(exc)
            if "lock" in text.lower():
                pid = re.search(r"PID (\d+)", text)
                holder = f" (process {pid.group(1)})" if pid else ""
                raise DatabaseLocked(
                    f"The database {self.path} is in use by another process{holder}, most likely a "
                    "running studio. Stop it first, or point STUDIO_HOME at another folder."
                ) from None
            raise self._failed(exc, "connect", f"Cannot open the database {self.path}") from exc
        except duckdb.Error as exc:
            raise self._failed(exc, "connect", f"Cannot open the database {self.path}") from exc
        # The studio's queries are small and many; one DuckDB thread each answers them sooner than
        # a pool that competes with the runner's own threads for the cores (see the benchmarks).
        self._con.execute(f"SET threads = {max(1, int(threads))}")
        self._local = threading.local()  # transaction depth per thread
        self._cursors: dict[int, duckdb.DuckDBPyConnection] = {}
        self._cursor_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._closed = False
        self.migrate()

    # -- connections -------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor (created on first use; cursors of finished threads are closed)."""
        ident = threading.get_ident()
        cur = self._cursors.get(ident)
        if cur is None:
            with self._cursor_lock:
                if self._closed:
                    raise DatabaseError("The studio is closed; open it again.")
                alive = {t.ident for t in threading.enumerate()}
                for dead in [i for i in self._cursors if i not in alive]:
                    self._cursors.pop(dead).close()
                cur = self._con.cursor()
                self._cursors[ident] = cur
        return cur

    def close(self) -> None:
        with self._cursor_lock:
            if self._closed:
                return
            self._closed = True
            for cur in self._cursors.values():
                try:
                    cur.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass
            self._cursors.clear()
        self._con.close()
        self._con = None  # let the binding object go even if a traceback still holds this Database

    # -- queries -----------------------------------------------------------------------
    # Reads raise DatabaseError, never a raw DuckDB exception: callers validate their input
    # first, so one reaching here is a bug or a damaged file, and it is logged in full. Writes
    # (`execute`, a `transaction()` cursor) raise DuckDB's own: callers catch some of them
    # (a ConstraintException is how a repeated result is detected).
    @staticmethod
    def _failed(exc: duckdb.Error, sql: str, what: str = "The database refused the operation") -> DatabaseError:
        log.error("database error in %r", " ".join(sql.split())[:200], exc_info=exc)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return DatabaseError(f"{what}: {first}")

    def fetchall(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        try:
            cur = self.cursor().execute(sql, params or [])
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]
        except duckdb.Error as exc:
            raise self._failed(exc, sql) from exc

    def fetchone(self, sql: str, params: Any = None) -> dict[str, Any] | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Any = None) -> Any:
        try:
            row = self.cursor().execute(sql, params or []).fetchone()
        except duckdb.Error as exc:
            raise self._failed(exc, sql) from exc
        return row[0] if row else None

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction; nested calls join the outer one."""
        cur = self.cursor()
        with self._write_lock:
            if getattr(self._local, "depth", 0):
                self._local.depth += 1
                try:
                    yield cur
                finally:
                    self._local.depth -= 1
                return
            cur.execute("BEGIN TRANSACTION")
            self._local.depth = 1
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                self._local.depth = 0

    def execute(self, sql: str, params: Any = None) -> duckdb.DuckDBPyConnection:
        """One write statement, atomic on its own (inside a `transaction()` it joins that one).

        Returns the cursor, for `RETURNING` rows or the changed-row count. Skipping BEGIN and
        COMMIT around a single statement saves two round trips on the hot paths of the runner.
        """
        cur = self.cursor()
        with self._write_lock:
            return cur.execute(sql, params or [])

    # -- migrations --------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations in order, each in one transaction. Returns those applied."""
        cur = self.cursor()
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        done = {r[0] for r in cur.execute("SELECT version FROM schema_migrations").fetchall()}
        applied = []
        for version, name, statements in MIGRATIONS:
            if version in done:
                continue
            with self.transaction() as tx:
                for stmt in statements:
                    tx.execute(stmt)
                tx.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, utcnow()])
            applied.append(version)
        return applied
