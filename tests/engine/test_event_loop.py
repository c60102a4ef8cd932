"""No blocking database or storage call on the runner's event loop: inside the runner's coroutines,
the job store, the database, the spool, the image store and the catalog's writes are only handed to
a thread (`asyncio.to_thread`, `run_in_executor`), never called directly. (A call on the loop would
stall every other job's polling while it waits for the database.)"""
from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "core" / "engine"
MODULES = ("runner.py", "execution.py", "recording.py")
BLOCKING = {("self", "jobs"), ("self", "spool"), ("self", "ctx", "db"), ("self", "ctx", "store"),
            ("self", "ctx", "catalog", "retire")}


def _chain(node: ast.AST) -> tuple[str, ...]:
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        names.append(node.id)
    return tuple(reversed(names))


def _direct_blocking_calls(source: str) -> list[str]:
    found = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Call):
                chain = _chain(node.func)
                if any(chain[:len(b)] == b and len(chain) > len(b) - (b[-1] == "retire") for b in BLOCKING):
                    found.append(f"{fn.name}: {'.'.join(chain)} (line {node.lineno})")
    return found


def test_the_check_finds_a_direct_call():
    bad = "async def f(self):\n    self.jobs.set('x', stage='y')\n    await asyncio.to_thread(self.jobs.set, 'x')\n"
    assert _direct_blocking_calls(bad) == ["f: self.jobs.set (line 2)"]


def test_runner_coroutines_hand_every_database_call_to_a_thread():
    found = [f"{m}: {c}" for m in MODULES for c in _direct_blocking_calls((ENGINE / m).read_text())]
    assert not found, "blocking calls on the event loop:\n" + "\n".join(found)
