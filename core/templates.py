"""Character templates shipped in data/templates.json (seeded into character_templates)."""
from __future__ import annotations

import json
from pathlib import Path

from core.config import DATA_DIR
from core.context import Context, not_found
from core.data import dumps, utcnow
from core.models import Template, from_row, from_rows
from core.validation import Id, checked

_JSON = {"character": {}}


def seed_templates(ctx: Context, path: Path = DATA_DIR / "templates.json") -> None:
    """Insert shipped templates that are not in the table yet, and bring changed ones up to date
    (idempotent; templates are shipped data that nothing else writes)."""
    shipped = json.loads(path.read_text())
    with ctx.db.transaction() as cur:
        have = {r[0]: (r[1], r[2], r[3]) for r in
                cur.execute("SELECT id, name, summary, character FROM character_templates").fetchall()}
        for t in shipped:
            row = (t["name"], t.get("summary", ""), dumps(t["character"]))
            if t["id"] not in have:
                cur.execute("INSERT INTO character_templates VALUES (?, ?, ?, ?, ?)", [t["id"], *row, utcnow()])
            elif have[t["id"]] != row:
                cur.execute("UPDATE character_templates SET name = ?, summary = ?, character = ? WHERE id = ?",
                            [*row, t["id"]])


class Templates:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def list(self) -> list[Template]:
        rows = self.ctx.db.fetchall("SELECT id, name, summary, character FROM character_templates ORDER BY name")
        return from_rows(Template, rows, json_fields=_JSON, what="template")

    @checked
    def get(self, template_id: Id) -> Template:
        row = self.ctx.db.fetchone("SELECT id, name, summary, character FROM character_templates WHERE id = ?", [template_id])
        if row is None:
            raise not_found("template", template_id)
        return from_row(Template, row, json_fields=_JSON, what="template")
