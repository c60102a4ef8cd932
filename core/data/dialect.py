"""The few places where DuckDB's and PostgreSQL's SQL differ, in one module.

The studio's SQL is hand-written, small and almost all portable, so it is written once (DuckDB's
spelling, `?` placeholders) and a `Dialect` turns it into the backend's text. A small layer of our
own was chosen over SQLAlchemy Core: the queries stay as they are, read as they run, and cost no
compilation step on the runner's hot paths; the differences are few enough to list here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True)
class Dialect:
    name: str
    placeholder: str = "?"
    escape_percent: bool = False  # psycopg reads `%` in a query with parameters as a placeholder
    types: dict[str, str] = field(default_factory=dict)  # DDL type names spelt differently

    def sql(self, text: str) -> str:
        """A statement in this backend's spelling (cached: the same few hundred statements run)."""
        return _translate(text, self.placeholder, self.escape_percent)

    def ddl(self, text: str) -> str:
        """A schema statement: type names too (`DOUBLE` is `DOUBLE PRECISION` on PostgreSQL)."""
        for ours, theirs in self.types.items():
            text = re.sub(rf"\b{ours}\b(?! PRECISION)", theirs, text)
        return text

    def json_text(self, column: str, key: str) -> str:
        """The text of top-level `key` of the JSON text held in `column`."""
        if not key.isidentifier():
            raise ValueError(f"not a JSON key the studio uses: {key!r}")
        if self.name == "postgresql":
            return f"({column}::json ->> '{key}')"
        return f"json_extract_string({column}, '$.{key}')"

    def percentile(self, column: str, fraction: float) -> str:
        """The continuous `fraction` percentile of `column` (an aggregate)."""
        if self.name == "postgresql":
            return f"percentile_cont({float(fraction)}) WITHIN GROUP (ORDER BY {column})"
        return f"quantile_cont({column}, {float(fraction)})"

    # The database server's clock as a naive UTC TIMESTAMP: leases use one clock for every server.
    now_utc = "(now() AT TIME ZONE 'UTC')"


DUCKDB = Dialect("duckdb")
POSTGRESQL = Dialect("postgresql", placeholder="%s", escape_percent=True,
                     types={"DOUBLE": "DOUBLE PRECISION", "BLOB": "BYTEA"})


@lru_cache(maxsize=4096)
def _translate(text: str, placeholder: str, escape_percent: bool) -> str:
    if placeholder == "?" and not escape_percent:
        return text
    out, quoted = [], False
    for ch in text:
        if ch == "'":
            quoted = not quoted  # '' inside a literal toggles twice: still right
        elif ch == "?" and not quoted:
            ch = placeholder
        if ch == "%" and escape_percent:
            ch = "%%"
        out.append(ch)
    return "".join(out)
