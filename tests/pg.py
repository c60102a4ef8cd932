"""A throwaway PostgreSQL server for the tests, from Debian's `postgresql` package.

`initdb` + `pg_ctl start` in a temporary folder, listening on a UNIX socket only (no TCP port is
involved). initdb refuses to run as root, so as root the server runs as the `postgres` user (the
package creates it) or `nobody`, owning its folder. Each test gets a fresh database copied from a
template that is migrated once (CREATE DATABASE ... TEMPLATE takes milliseconds).
"""
from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

INSTALL_HINT = ("PostgreSQL's server binaries were not found in /usr/lib/postgresql/*/bin: install Debian's "
                "`postgresql` package (apt-get install postgresql); the tests run every database test on it too.")


def server_binaries() -> Path:
    """The newest installed PostgreSQL's bin folder; raises RuntimeError with the install hint if none."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [p for p in found if (p / "pg_ctl").exists() and (p / "postgres").exists()]
    if not found:
        raise RuntimeError(INSTALL_HINT)
    return max(found, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0])


class PostgresServer:
    """One server in a temporary folder; `url(name)` for a database, `fresh()` for a new migrated one."""

    TEMPLATE = "studio_template"

    def __init__(self, *, durable: bool = False):
        self.bin = server_binaries()
        self.root = Path(tempfile.mkdtemp(prefix="studio-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.socket_dir.mkdir()
        self.user = "studio"
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            account = _unprivileged_account()
            entry = pwd.getpwnam(account)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            self._run_as = ["runuser", "-u", account, "--"]
        self._pg("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync",
                 "--locale=C")
        options = [f"-c listen_addresses='' -k {self.socket_dir} -c max_connections=500 -c shared_buffers=64MB"]
        if not durable:  # a test database is thrown away: skip the disk syncs
            options.append("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._pg("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.root / "server.log"),
                 "-o", " ".join(options), "start")
        self._template_ready = False

    def _pg(self, tool: str, *args: str) -> None:
        proc = subprocess.run([*self._run_as, str(self.bin / tool), *args], capture_output=True, text=True,
                              timeout=120, cwd=self.root)
        if proc.returncode != 0:
            log = self.root / "server.log"
            raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
                               + (f"\n{log.read_text()[-2000:]}" if log.exists() else ""))

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@/{database}?host={self.socket_dir}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)

    def fresh(self) -> str:
        """The URL of a new, empty-but-migrated database."""
        from core.data import PostgresDatabase

        if not self._template_ready:
            self.admin(f"CREATE DATABASE {self.TEMPLATE}")
            PostgresDatabase(self.url(self.TEMPLATE)).close()
            self._template_ready = True
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {self.TEMPLATE}")
        return self.url(name)

    def empty(self) -> str:
        """The URL of a new database with no tables at all."""
        name = f"e_{uuid.uuid4().hex[:16]}"
        self.admin(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _unprivileged_account() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a `postgres` nor a `nobody` account exists to run PostgreSQL as")
