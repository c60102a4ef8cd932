"""Prompt-enhancement templates: the `prompt_templates` table (this module owns it), seeded from
data/prompt_templates.json; admins add and edit templates."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.assist.models import PromptTemplate, PromptTemplateCreate, PromptTemplateFields
from core.config import DATA_DIR
from core.context import Actor, Context, not_found
from core.data import utcnow
from core.errors import InvalidInput
from core.models import from_rows, parse

SHIPPED = DATA_DIR / "prompt_templates.json"
_COLUMNS = "id, name, target, content_rating, instruction, style, builtin, updated_at"


def seed_prompt_templates(ctx: Context, path: Path = SHIPPED) -> None:
    """Insert shipped templates not in the table yet; an admin's edit of a shipped one stays."""
    now = utcnow()
    with ctx.db.transaction() as cur:
        have = {r[0] for r in cur.execute("SELECT id FROM prompt_templates").fetchall()}
        for t in json.loads(path.read_text())["templates"]:
            if t["id"] not in have:
                cur.execute(f"INSERT INTO prompt_templates ({_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, TRUE, ?, ?)",
                            [t["id"], t["name"], t["target"], t["content_rating"], t["instruction"], t.get("style", ""),
                             now, now])


class PromptTemplates:
    def __init__(self, ctx: Context, actor: Actor):
        self.ctx = ctx
        self.actor = actor

    def list(self, *, target: str | None = None, content_rating: str | None = None) -> list[PromptTemplate]:
        rows = self.ctx.db.fetchall(f"SELECT {_COLUMNS} FROM prompt_templates ORDER BY target, content_rating, "
                                    "builtin DESC, name")
        out = from_rows(PromptTemplate, rows, what="prompt template")
        return [t for t in out if (target is None or t.target == target)
                and (content_rating is None or t.content_rating == content_rating)]

    def get(self, template_id: str) -> PromptTemplate:
        found = next((t for t in self.list() if t.id == template_id), None)
        if found is None:
            raise not_found("prompt template", str(template_id))
        return found

    def add(self, data: PromptTemplateCreate | dict[str, Any]) -> PromptTemplate:
        self.actor.require_admin()
        t = parse(PromptTemplateCreate, data)
        if any(x.id == t.id for x in self.list()):
            raise InvalidInput({"id": f"a prompt template {t.id!r} exists already"})
        now = utcnow()
        self.ctx.db.execute(f"INSERT INTO prompt_templates ({_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, FALSE, ?, ?)",
                            [t.id, t.name, t.target, t.content_rating, t.instruction, t.style, now, now])
        return self.get(t.id)

    def update(self, template_id: str, changes: PromptTemplateFields | dict[str, Any]) -> PromptTemplate:
        self.actor.require_admin()
        given = parse(PromptTemplateFields, changes).model_dump(exclude_none=True)
        self.get(template_id)
        if given:
            sets = ", ".join(f"{k} = ?" for k in given)
            self.ctx.db.execute(f"UPDATE prompt_templates SET {sets}, updated_at = ? WHERE id = ?",
                                [*given.values(), utcnow(), template_id])
        return self.get(template_id)

    def choose(self, target: str, rating: str, template_id: str | None = None) -> PromptTemplate:
        """The template for a target and a character's rating: the one asked for (an NSFW template is
        refused for an SFW character), else the first of that target and rating."""
        if template_id:
            t = self.get(template_id)
            if rating == "sfw" and t.content_rating != "sfw":
                raise InvalidInput({"template": f"{t.name!r} is an NSFW template and the character is rated SFW"})
            return t
        found = self.list(target=target, content_rating=rating)
        if not found:
            raise InvalidInput({"template": f"no {rating.upper()} prompt template for {target!r}; an admin can add one "
                                            "on the Models page"})
        return found[0]
