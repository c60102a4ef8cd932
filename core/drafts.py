"""Unsaved form drafts (owner of `drafts`): what a user typed into a form they have not submitted, kept in
the database field by field, so a reload, a restart or another server behind the load balancer finds it.

A draft is the user's own: nobody else reads it, admins included. Its values are not validated as the
finished object would be (a draft may be half-written); only their shape and size are bounded.
"""
from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt

from core.context import Actor, Context
from core.data import utcnow
from core.errors import InvalidInput
from core.models import CharacterCreate
from core.validation import checked

DraftKind = Literal["new_character"]
FIELDS: dict[str, frozenset[str]] = {"new_character": frozenset(CharacterCreate.model_fields)}
_Text = Annotated[str, Field(max_length=20_000)]
DraftValue = _Text | StrictBool | StrictInt | Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=200)] | None


class Drafts:
    def __init__(self, ctx: Context, actor: Actor):
        self.ctx = ctx
        self.actor = actor

    @checked
    def get(self, kind: DraftKind) -> dict[str, Any]:
        """The actor's draft of this form, field by field ({} when there is none)."""
        rows = self.ctx.db.fetchall("SELECT field, value FROM drafts WHERE owner = ? AND kind = ?", [self.actor.id, kind])
        return {r["field"]: json.loads(r["value"]) for r in rows}

    @checked
    def keep(self, kind: DraftKind, field: str, value: DraftValue) -> None:
        """Keep one field's value (one row per field: two tabs typing into different fields lose nothing)."""
        if field not in FIELDS[kind]:
            raise InvalidInput({"field": f"not a field of the {kind.replace('_', ' ')} form: {field!r}"})
        self.ctx.db.execute(
            "INSERT INTO drafts VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner, kind, field) DO UPDATE SET "
            "value = excluded.value, updated_at = excluded.updated_at",
            [self.actor.id, kind, field, json.dumps(value), utcnow()])

    @checked
    def discard(self, kind: DraftKind) -> None:
        """Forget the actor's draft of this form (it was submitted, or cleared)."""
        self.ctx.db.execute("DELETE FROM drafts WHERE owner = ? AND kind = ?", [self.actor.id, kind])
