"""One module writes each table: every INSERT, UPDATE and DELETE in core/ names a table whose owner,
as docs/architecture.md ("Tables and their owners") lists it, is the module that holds the statement."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WRITE = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\{?\w+\}?)")
GENERIC_COPY = "core/data/copy.py"  # `studio db copy` copies every table by name (documented)


def _owners() -> dict[str, str]:
    section = (ROOT / "docs/architecture.md").read_text().split("## Tables and their owners", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `([\w/.]+\.py)` \|", section, re.M)
    return dict(rows)


def _schema_tables() -> set[str]:
    return set(re.findall(r"CREATE TABLE (\w+)", (ROOT / "core/data/migrations.py").read_text()))


def _writes() -> list[tuple[str, str, str]]:
    """(module, table, the statement's start) for each write statement in core/."""
    found = []
    for path in sorted(ROOT.glob("core/**/*.py")):
        module = path.relative_to(ROOT).as_posix()
        for m in WRITE.finditer(path.read_text()):
            found.append((module, m.group(1), m.group(0)))
    return found


def test_every_table_has_one_documented_owner():
    owners = _owners()
    assert _schema_tables() <= set(owners), f"tables without an owner in docs: {_schema_tables() - set(owners)}"
    assert all((ROOT / module).is_file() for module in owners.values())


def test_only_the_owner_writes_a_table():
    owners = _owners()
    writes = _writes()
    assert any(t == "jobs" for _, t, _ in writes) and any(t == "character_portraits" for _, t, _ in writes)  # the scan works
    wrong = [f"{module}: {stmt}" for module, table, stmt in writes
             if table in owners and owners[table] != module and module != GENERIC_COPY]
    assert not wrong, "written outside their owner module:\n" + "\n".join(wrong)
    # A table name built at run time escapes this check: only the generic copy may do that.
    dynamic = [f"{module}: {stmt}" for module, table, stmt in writes if table.startswith("{") and module != GENERIC_COPY]
    assert not dynamic, "write statements with a table name built at run time:\n" + "\n".join(dynamic)
