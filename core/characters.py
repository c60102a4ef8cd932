"""Characters: create, read, partial update, list/search, delete (with portraits, scenes, files)."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from pydantic import Strict

from core.context import Actor, Context, new_id, not_found
from core.data import Cursor, dumps, marks, utcnow
from core.errors import InvalidInput, NotFound, StorageError
from core.images import validate_upload
from core.engine.jobs import cancel_active, delete_all_of_character, reference_in_use
from core.gallery import delete_character_images
from core.models import Character, CharacterCreate, CharacterSummary, CharacterUpdate, Page, from_row, from_rows, parse
from core.storage import reference_key
from core.validation import Id, Limit, Offset, Search, checked, text_limit

log = logging.getLogger(__name__)

JSON_FIELDS = ("appearance_tags", "clothing_tags", "alternate_greetings", "forbidden_phrases", "voice_examples", "default_presets")
_JSON_DEFAULTS = {f: {} if f == "default_presets" else [] for f in JSON_FIELDS}
_SUMMARY_JSON = {"appearance_tags": [], "clothing_tags": []}


def row_to_character(row: dict[str, Any]) -> Character:
    """A character from its row; damaged fields read as their defaults (see `from_row`)."""
    return from_row(Character, row, json_fields=_JSON_DEFAULTS, what="character")


def _columns(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in values.items():
        if k in JSON_FIELDS:
            v = dumps(v.model_dump() if hasattr(v, "model_dump") else v)
        out[k] = v
    return out


class Characters:
    """Characters visible to one user: their own plus public ones."""

    def __init__(self, ctx: Context, actor: Actor, runner=None):
        self.ctx = ctx
        self.actor = actor
        self.runner = runner  # told about jobs a delete cancels (without one they stop at their next poll)

    @checked
    def create(self, data: CharacterCreate | dict[str, Any], *, template_id: Id | None = None) -> Character:
        """Create a character (validated); returns it."""
        return self._insert(parse(CharacterCreate, data, name="data"), template_id)

    def _insert(self, data: CharacterCreate, template_id: str | None,
                reference: tuple[str | None, str | None] = (None, None)) -> Character:
        fields = {k: v for k, v in data.model_dump().items() if v is not None}
        now = utcnow()
        row = _columns({**fields, "id": new_id(), "owner": self.actor.id, "template_id": template_id,
                        "reference_image_key": reference[0], "reference_image_hash": reference[1],
                        "created_at": now, "updated_at": now})
        cols = ", ".join(row)
        with self.ctx.db.transaction() as cur:
            cur.execute(f"INSERT INTO characters ({cols}) VALUES ({marks(row)})", list(row.values()))
        return self.get(row["id"])

    @checked
    def duplicate(self, character_id: Id) -> Character:
        """A private copy, owned by the actor, of a character they may see (their own or a public
        one) named "<name> (copy)": every other field is copied, the portraits and scenes are not (they stay their owner's). The
        reference image is copied into the actor's own uploads, so the copy keeps it whatever
        becomes of the original."""
        source = self.get(character_id)
        fields = source.model_dump(include=set(CharacterCreate.model_fields))
        suffix = " (copy)"  # told apart from the original in lists and the picker
        name = source.name[:text_limit(CharacterCreate, "name") - len(suffix)].rstrip() + suffix
        data = parse(CharacterCreate, {**fields, "name": name, "is_public": False}, name="character")
        key = sha = None
        if source.reference_image_key:  # read and stored before the row: a failure writes no character
            key, sha = store_upload(self.ctx, self.actor.id, self.ctx.store.read(source.reference_image_key))
        return self._insert(data, source.template_id, (key, sha))

    @checked
    def get(self, character_id: Id) -> Character:
        """A character the user may see (own or public)."""
        row = self.ctx.db.fetchone(
            "SELECT * FROM characters WHERE id = ? AND (owner = ? OR is_public OR ?)",
            [character_id, self.actor.id, self.actor.is_admin],
        )
        if row is None:
            raise not_found("character", character_id)
        return self._as_seen(row)

    def _as_seen(self, row: dict[str, Any]) -> Character:
        """The character as the actor sees it: another user's primary portrait that its owner made
        private is not named."""
        pid = row["primary_portrait_id"]
        if pid and row["owner"] != self.actor.id and not self.actor.is_admin and self.ctx.db.fetchone(
                "SELECT 1 FROM portrait_visibility WHERE portrait_id = ? AND NOT is_public", [pid]) is not None:
            row = {**row, "primary_portrait_id": None}
        return row_to_character(row)

    @checked
    def owned(self, character_id: Id) -> Character:
        """A character the user may change."""
        character = self.get(character_id)
        self.actor.require_owner(character.owner, "character")
        return character

    @checked
    def resolve(self, id_or_name: Id) -> Character:
        """By id, else by exact (case-insensitive) name among visible characters: the user's own
        first, then public ones. Two of the same rank with that name are ambiguous (an error naming
        their ids), never a silent pick: generating for the wrong character costs money."""
        rows = self.ctx.db.fetchall(
            "SELECT * FROM characters WHERE (id = ? OR lower(name) = lower(?)) AND (owner = ? OR is_public OR ?) "
            "ORDER BY (id = ?) DESC, (owner = ?) DESC, created_at DESC LIMIT 50",
            [id_or_name, id_or_name, self.actor.id, self.actor.is_admin, id_or_name, self.actor.id],
        )
        if not rows:
            raise NotFound(f"No character with the id or name {id_or_name!r}.")
        first = rows[0]
        if first["id"] != id_or_name:
            same_rank = [r for r in rows if (r["owner"] == self.actor.id) == (first["owner"] == self.actor.id)]
            if len(same_rank) > 1:
                ids = ", ".join(r["id"] for r in same_rank[:5])
                raise InvalidInput({"character": f"{len(same_rank)} characters are named {id_or_name!r}; give the id instead ({ids})"})
        return self._as_seen(first)

    @checked
    def update(self, character_id: Id, changes: CharacterUpdate | dict[str, Any]) -> Character:
        """Change only the given fields (validated in full before anything is written)."""
        given = parse(CharacterUpdate, changes, name="changes").model_dump(exclude_unset=True)
        self.owned(character_id)
        if not given:
            return self.get(character_id)
        values = _columns(given)
        values["updated_at"] = utcnow()
        sets = ", ".join(f"{k} = ?" for k in values)
        with self.ctx.db.transaction() as cur:
            cur.execute(f"UPDATE characters SET {sets} WHERE id = ?", [*values.values(), character_id])
        return self.get(character_id)

    @checked
    def list(self, search: Search | None = None, *, limit: Limit = 50, offset: Offset = 0,
             mine_only: bool = False) -> Page[CharacterSummary]:
        """Own and public characters, newest first, filtered by name or tag. A row that cannot be
        read is logged and left out; it never breaks the list."""
        where = ["(c.owner = ? OR (c.is_public AND NOT ?))"]
        params: list[Any] = [self.actor.id, mine_only]
        if search:
            term = f"%{search.lower()}%"
            where.append("(lower(c.name) LIKE ? OR lower(c.appearance_tags) LIKE ? OR lower(c.clothing_tags) LIKE ?)")
            params += [term, term, term]
        clause = " AND ".join(where)
        total = self.ctx.db.scalar(f"SELECT count(*) FROM characters c WHERE {clause}", params)
        rows = self.ctx.db.fetchall(
            f"""SELECT c.id, c.owner, c.name, c.description, c.gender, c.is_public, c.appearance_tags,
                       c.clothing_tags, p.id AS primary_portrait_id, p.thumbnail_key AS primary_thumbnail_key,
                       (SELECT count(*) FROM character_portraits q LEFT JOIN portrait_visibility w ON w.portrait_id = q.id
                        WHERE q.character_id = c.id AND (c.owner = ? OR ? OR coalesce(w.is_public, TRUE))) AS portrait_count,
                       c.updated_at
                FROM (SELECT * FROM characters c WHERE {clause} ORDER BY c.created_at DESC, c.id LIMIT ? OFFSET ?) c
                LEFT JOIN portrait_visibility v ON v.portrait_id = c.primary_portrait_id
                LEFT JOIN character_portraits p ON p.id = c.primary_portrait_id
                    AND (c.owner = ? OR ? OR coalesce(v.is_public, TRUE))
                ORDER BY c.created_at DESC, c.id""",
            # others see neither the count nor the thumbnail of portraits made private
            [self.actor.id, self.actor.is_admin, *params, limit, offset, self.actor.id, self.actor.is_admin],
        )
        items = from_rows(CharacterSummary, rows, json_fields=_SUMMARY_JSON, what="character")
        return Page[CharacterSummary](items=items, total=total, offset=offset, limit=limit)

    def revision(self) -> tuple[int, str]:
        """A fingerprint of the characters this user sees: it changes with every create, edit and delete
        (count and latest update), so a list kept in a cache is rebuilt only then. One small aggregate query."""
        row = self.ctx.db.fetchone(
            "SELECT count(*) AS n, max(updated_at) AS latest FROM characters WHERE owner = ? OR is_public",
            [self.actor.id])
        return int(row["n"]), str(row["latest"])

    @checked
    def set_reference_upload(self, character_id: Id, data: Annotated[bytes, Strict()]) -> Character:
        """Validate an uploaded image and make it the character's reference."""
        self.owned(character_id)
        key, sha = store_upload(self.ctx, self.actor.id, data)
        return self._set_reference(character_id, key, sha)

    @checked
    def clear_reference(self, character_id: Id) -> Character:
        self.owned(character_id)
        return self._set_reference(character_id, None, None)

    def _set_reference(self, character_id: str, key: str | None, sha: str | None) -> Character:
        self.ctx.db.execute(
            "UPDATE characters SET reference_image_key = ?, reference_image_hash = ?, updated_at = ? WHERE id = ?",
            [key, sha, utcnow(), character_id],
        )
        return self.get(character_id)

    def delete(self, character_id: str) -> None:
        """Delete the character, its portraits, scenes, jobs and image files.

        Its active jobs are canceled and deleted in the same transaction (the runner stops them and
        asks the provider to cancel), so no restart runs them again. Its reference upload goes too,
        unless another character or an active job still uses it."""
        character = self.owned(character_id)
        db = self.ctx.db
        keys = [k for r in db.fetchall(
            "SELECT image_key, thumbnail_key FROM character_portraits WHERE character_id = ? "
            "UNION ALL SELECT image_key, thumbnail_key FROM scene_images WHERE character_id = ?",
            [character_id, character_id]) for k in (r["image_key"], r["thumbnail_key"])]
        reference = character.reference_image_key
        from core.compare.rows import comparison_files, delete_comparisons_of  # they build on characters
        from core.scenes import delete_scenes_of  # scenes build on characters: imported here, not at the top

        with db.transaction() as cur:
            canceled = cancel_active(cur, "character_id", character_id, "Canceled: its character was deleted.")
            keys += comparison_files(cur, character_id)
            delete_comparisons_of(cur, character_id)
            delete_character_images(cur, character_id)
            delete_scenes_of(cur, character_id)
            delete_all_of_character(cur, character_id)
            cur.execute("DELETE FROM characters WHERE id = ?", [character_id])
            if reference and not _upload_in_use(cur, reference):
                keys.append(reference)
                delete_upload(cur, reference)
        if self.runner is not None:
            self.runner.cancel(canceled)
        delete_files(self.ctx, keys)


def set_primary_portrait(cur: Cursor, character_id: str, portrait_id: str, now: datetime) -> None:
    cur.execute("UPDATE characters SET primary_portrait_id = ?, updated_at = ? WHERE id = ?", [portrait_id, now, character_id])


def adopt_first_portrait(cur: Cursor, character_id: str, portrait_id: str) -> None:
    """A new portrait becomes the primary of a character that has none."""
    cur.execute("UPDATE characters SET primary_portrait_id = ? WHERE id = ? AND primary_portrait_id IS NULL",
                [portrait_id, character_id])


def pass_primary(cur: Cursor, character_id: str, deleted_id: str) -> None:
    """After the portrait `deleted_id` was deleted: if it was the primary, the newest remaining one is."""
    cur.execute(
        "UPDATE characters SET primary_portrait_id = (SELECT id FROM character_portraits WHERE character_id = ? "
        "ORDER BY created_at DESC, id LIMIT 1) WHERE id = ? AND primary_portrait_id = ?",
        [character_id, character_id, deleted_id])


def delete_upload(cur: Cursor, key: str) -> None:
    cur.execute("DELETE FROM uploads WHERE key = ?", [key])


def _upload_in_use(cur, key: str) -> bool:
    """Whether a character's reference or an active job's reference is the upload `key`."""
    return (cur.execute("SELECT 1 FROM characters WHERE reference_image_key = ? LIMIT 1", [key]).fetchone() is not None
            or reference_in_use(cur, key))


def store_upload(ctx: Context, owner: str, data: bytes) -> tuple[str, str]:
    """Validate and store an uploaded image content-addressed; returns (key, sha256)."""
    checked = validate_upload(data)
    key = reference_key(owner, checked.sha256, checked.ext)
    if not ctx.store.exists(key):
        ctx.store.write(key, checked.data)
    with ctx.db.transaction() as cur:
        if not cur.execute("SELECT 1 FROM uploads WHERE key = ?", [key]).fetchone():
            cur.execute("INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [key, owner, checked.sha256, checked.content_type, len(checked.data),
                         checked.width, checked.height, utcnow()])
    return key, checked.sha256


def delete_files(ctx: Context, keys: list[str]) -> list[str]:
    """Delete image files; failures are logged and left for `studio gc`. Returns keys not deleted."""
    failed = []
    for key in keys:
        try:
            ctx.store.delete(key)
        except StorageError as exc:
            log.warning("leaving %s for gc: %s", key, exc)
            failed.append(key)
    return failed

