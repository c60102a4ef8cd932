"""The database: DuckDB (one file, one process) or PostgreSQL (shared by several studio servers).

Both present the same surface; statements are written once (see `core.data.dialect`). Reads raise
`DatabaseError`, never a backend's exception: callers validate their input first, so one reaching
here is a bug or a damaged database, and it is logged in full. Writes raise `ConstraintViolation`
when a constraint refuses the row (how a repeated result is detected) and `DatabaseError` otherwise.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from core.data.dialect import DUCKDB, POSTGRESQL, Dialect
from core.data.migrations import MIGRATIONS, ServerOnly
from core.errors import ConstraintViolation, DatabaseError, DatabaseLocked

log = logging.getLogger(__name__)

# Connections to PostgreSQL per studio server: the runner's thread pool and the UI's sessions share them.
PG_POOL_SIZE = 20


def utcnow() -> datetime:
    """Naive UTC now (TIMESTAMP columns hold UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def loads(value: str | None, default: Any = None) -> Any:
    return default if value is None else json.loads(value)


def marks(values: Any) -> str:
    """`?, ?, ?`: one parameter placeholder per value."""
    return ", ".join("?" * len(values))


class Cursor:
    """A backend cursor that takes the studio's SQL: `?` placeholders, one error type, row counts."""

    def __init__(self, raw: Any, db: "Database"):
        self._raw = raw
        self._db = db

    @property
    def dialect(self) -> Dialect:
        return self._db.dialect

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> "Cursor":
        self._db._run(self._raw, sql, params)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> "Cursor":
        """One statement for each row of parameters (a batch: one round trip where the backend allows)."""
        self._db._run(self._raw, sql, rows, many=True)
        return self

    def fetchone(self) -> tuple | None:
        return self._raw.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._raw.fetchall()

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """The rows of a query (or of a write's RETURNING) as dicts."""
        self.execute(sql, params)
        cols = [d[0] for d in self._raw.description]
        return [dict(zip(cols, row)) for row in self._raw.fetchall()]

    def changed(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run a write; the number of rows it inserted, updated or deleted."""
        self.execute(sql, params)
        return self._db._rows_changed(self._raw)


class Database:
    """What both backends share; `open_database` picks one."""

    dialect: Dialect = DUCKDB
    shared = False  # True where several processes (servers, the CLI) use the database at once

    # -- backend hooks -----------------------------------------------------------------
    @contextmanager
    def _connection(self, write: bool = False) -> Iterator[Any]:
        """A raw cursor for one statement: this thread's transaction's inside one, else one of its own."""
        raise NotImplementedError

    @contextmanager
    def _begin(self) -> Iterator[Any]:
        """A raw cursor inside a new transaction, committed on success and rolled back on error."""
        raise NotImplementedError

    def _rows_changed(self, raw: Any) -> int:
        raise NotImplementedError

    _errors: tuple[type[BaseException], ...] = ()
    _constraint_errors: tuple[type[BaseException], ...] = ()

    def close(self) -> None:
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------
    def _init_shared(self) -> None:
        self._local = threading.local()  # the transaction's cursor and depth, per thread

    def _run(self, raw: Any, sql: str, params: Sequence[Any] | None, many: bool = False) -> Any:
        try:
            if many:
                return raw.executemany(self.dialect.sql(sql), [list(p) for p in params or ()])
            return raw.execute(self.dialect.sql(sql), list(params) if params else [])
        except self._constraint_errors as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConstraintViolation(f"The database refused the row: {first}") from exc
        except self._errors as exc:
            raise self._failed(exc, sql) from exc

    @staticmethod
    def _failed(exc: BaseException, sql: str, what: str = "The database refused the operation") -> DatabaseError:
        log.error("database error in %r", " ".join(sql.split())[:200], exc_info=exc)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return DatabaseError(f"{what}: {first}")

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self._connection() as raw:
            return Cursor(raw, self).rows(sql, params)

    def fetchone(self, sql: str, params: Sequence[Any] | None = None) -> dict[str, Any] | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        with self._connection() as raw:
            row = Cursor(raw, self).execute(sql, params).fetchone()
        return row[0] if row else None

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """One write statement, atomic on its own (inside a `transaction()` it joins that one).
        Returns the number of rows it changed. Skipping BEGIN and COMMIT around a single statement
        saves two round trips on the runner's hot paths."""
        with self._connection(write=True) as raw:
            return Cursor(raw, self).changed(sql, params)

    def returning(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """One write statement with a RETURNING clause; its rows."""
        with self._connection(write=True) as raw:
            return Cursor(raw, self).rows(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """A write transaction; nested calls (and reads on the same thread) join the outer one."""
        local = self._local
        if getattr(local, "depth", 0):
            local.depth += 1
            try:
                yield Cursor(local.raw, self)
            finally:
                local.depth -= 1
            return
        with self._begin() as raw:
            local.raw, local.depth = raw, 1
            try:
                yield Cursor(raw, self)
            finally:
                local.raw, local.depth = None, 0

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold a database-wide lock called `name` (a no-op where one process owns the database)."""
        yield

    def notify(self, channel: str, payload: str = "") -> None:
        """Announce an event to the other processes on this database (none where it has one process)."""

    def listen(self, channel: str, timeout: float, stop: Callable[[], bool]) -> Iterator[str]:
        """Payloads announced on `channel`, until `stop()` (checked every `timeout` seconds)."""
        raise NotImplementedError(f"{type(self).__name__} has one process: nothing to listen to")

    def _in_transaction(self) -> Any | None:
        return self._local.raw if getattr(self._local, "depth", 0) else None

    # -- migrations --------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations in order, each in one transaction. Returns those applied."""
        with self.transaction() as tx:
            tx.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                       "name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)")
        done = {r["version"] for r in self.fetchall("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, statements in MIGRATIONS:
            if version in done:
                continue
            with self.transaction() as tx:
                for stmt in statements:
                    if self.shared or not isinstance(stmt, ServerOnly):
                        tx.execute(self.dialect.ddl(stmt))
                tx.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, utcnow()])
            applied.append(version)
        return applied


class DuckDatabase(Database):
    """The process's DuckDB connection.

    DuckDB allows one read-write process per file. Inside the process every thread gets its own
    cursor; writes are serialised by a lock, so two threads never conflict on the same row.
    """

    dialect = DUCKDB
    _errors = (duckdb.Error,)
    _constraint_errors = (duckdb.ConstraintException,)

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
        self._init_shared()
        self._cursors: dict[int, duckdb.DuckDBPyConnection] = {}
        self._cursor_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._closed = False
        self.migrate()

    def __repr__(self) -> str:
        return f"DuckDatabase({str(self.path)!r})"

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

    @contextmanager
    def _connection(self, write: bool = False) -> Iterator[Any]:
        # Every statement takes the thread's cursor; a write also takes the write lock (re-entrant:
        # inside this thread's transaction it already holds it).
        cur = self.cursor()
        if not write:
            yield cur
            return
        with self._write_lock:
            yield cur

    @contextmanager
    def _begin(self) -> Iterator[Any]:
        cur = self.cursor()
        with self._write_lock:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")

    def _rows_changed(self, raw: Any) -> int:
        row = raw.fetchone()  # DuckDB answers a write with its count as a result row (DDL with none)
        return row[0] if row else 0

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


def display_url(url: str) -> str:
    """A database URL fit for messages and logs: the password (if any) replaced by `***`."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


class PostgresDatabase(Database):
    """A pool of connections to a PostgreSQL database that several studio servers share.

    Statements outside a transaction run in autocommit on a pooled connection; a transaction
    keeps one connection for its thread. Concurrency between servers is PostgreSQL's own (row
    locks, `SKIP LOCKED`, advisory locks), so there is no process-wide write lock.
    """

    dialect = POSTGRESQL
    shared = True

    def __init__(self, url: str, pool_size: int = PG_POOL_SIZE):
        import psycopg
        import psycopg_pool

        self.url = url
        self._errors = (psycopg.Error, psycopg_pool.PoolTimeout)
        self._constraint_errors = (psycopg.errors.IntegrityError,)
        self._init_shared()
        self._closed = False
        shown = display_url(url)
        try:  # one direct connection first: its error says why (a pool's timeout would not)
            psycopg.connect(url, connect_timeout=10).close()
        except psycopg.Error as exc:
            raise DatabaseError(f"Cannot connect to the database {shown}: "
                                f"{(str(exc).strip().splitlines() or ['refused'])[0]}") from None
        self._pool = psycopg_pool.ConnectionPool(url, min_size=1, max_size=pool_size, open=False, name="studio",
                                                 kwargs={"autocommit": True}, timeout=30)
        self._pool.open(wait=True, timeout=30)
        try:
            with self.exclusive("migrate"):  # servers starting together migrate one at a time
                self.migrate()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresDatabase({display_url(self.url)!r})"

    @contextmanager
    def _connection(self, write: bool = False) -> Iterator[Any]:
        raw = self._in_transaction()
        if raw is not None:
            yield raw
            return
        with self._pooled() as conn, conn.cursor() as cur:
            yield cur

    @contextmanager
    def _begin(self) -> Iterator[Any]:
        with self._pooled() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    @contextmanager
    def _pooled(self) -> Iterator[Any]:
        if self._closed:
            raise DatabaseError("The studio is closed; open it again.")
        try:
            cm = self._pool.connection()
            conn = cm.__enter__()
        except self._errors as exc:
            raise self._failed(exc, "connect", "No connection to the database") from exc
        try:
            yield conn
        except BaseException as exc:
            if not cm.__exit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            cm.__exit__(None, None, None)

    def _rows_changed(self, raw: Any) -> int:
        return max(raw.rowcount, 0)  # psycopg's count (-1 for DDL)

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        with self._pooled() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", [f"studio:{name}"])
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", [f"studio:{name}"])

    def notify(self, channel: str, payload: str = "") -> None:
        self.scalar("SELECT pg_notify(?, ?)", [channel, payload])

    def listen(self, channel: str, timeout: float, stop: Callable[[], bool]) -> Iterator[str]:
        """On a connection of its own (LISTEN holds it for good); reconnects after a failure."""
        import psycopg

        while not stop():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {channel}")
                    yield ""  # (re)connected: anything announced meanwhile was missed, so look now
                    while not stop():
                        for note in conn.notifies(timeout=timeout):
                            yield note.payload
            except psycopg.Error as exc:
                log.warning("listening for jobs on the database failed (retrying): %s", exc)
                if stop():
                    return
                threading.Event().wait(min(timeout, 1.0))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.close()


def open_database(settings: Any) -> Database:
    """PostgreSQL where `settings.database_url` is set, else the DuckDB file `settings.db_path`."""
    if settings.database_url:
        return PostgresDatabase(settings.database_url)
    return DuckDatabase(settings.db_path, threads=settings.db_threads)
