"""The rows of generated images: `character_portraits`, `scene_images` and `portrait_visibility` are
written here only (the runner's result transaction, the gallery actions, the deletes of characters and scenes).
Every function takes the caller's transaction cursor, so a row changes together with what it
belongs to (docs/architecture.md, "Tables and their owners")."""
from __future__ import annotations

from datetime import datetime

from core.data import Cursor, dumps
from core.models import JobKind, Recipe

def insert_image(cur: Cursor, kind: JobKind, *, image_id: str, character_id: str, scene_id: str | None, owner: str,
                 key: str, thumb_key: str, prompt: str, recipe: Recipe, job_id: str, width: int, height: int,
                 now: datetime) -> None:
    """The result row of a finished job (a portrait, or a scene's image)."""
    if kind == "portrait":
        cur.execute("INSERT INTO character_portraits VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                    [image_id, character_id, owner, key, thumb_key, prompt, dumps(recipe.stored()), job_id,
                     width, height, now])
    else:
        cur.execute("INSERT INTO scene_images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [image_id, scene_id, character_id, owner, key, thumb_key, prompt, dumps(recipe.stored()), job_id,
                     width, height, now])


def rerecord_image(cur: Cursor, kind: JobKind, job_id: str, recipe: Recipe, width: int, height: int) -> str | None:
    """A job that completed before ran again: its row (same image key) takes this run's recipe.
    Returns the row's id, None when the row is gone."""
    sql = ("UPDATE character_portraits SET recipe = ?, width = ?, height = ? WHERE job_id = ? RETURNING id"
           if kind == "portrait" else
           "UPDATE scene_images SET recipe = ?, width = ?, height = ? WHERE job_id = ? RETURNING id")
    row = cur.execute(sql, [dumps(recipe.stored()), width, height, job_id]).fetchone()
    return None if row is None else row[0]


def reorder_portraits(cur: Cursor, character_id: str, ordered_ids: list[str]) -> None:
    """These portraits first, in this order; the others after them, in their own order."""
    # The rest move up as a block (their relative order, ties included, stays) to just after the
    # named ones; shifting by their lowest value keeps the numbers small however often this runs.
    marks = ", ".join("?" for _ in ordered_ids)
    rest = f"character_id = ? AND id NOT IN ({marks})" if ordered_ids else "character_id = ?"
    cur.execute(f"UPDATE character_portraits SET sort_order = sort_order + ? - "
                f"(SELECT min(sort_order) FROM character_portraits WHERE {rest}) WHERE {rest}",
                [len(ordered_ids) + 1, character_id, *ordered_ids, character_id, *ordered_ids])
    for i, pid in enumerate(ordered_ids, start=1):
        cur.execute("UPDATE character_portraits SET sort_order = ? WHERE id = ?", [i, pid])


def set_portrait_visibility(cur: Cursor, portrait_id: str, is_public: bool | None, now: datetime) -> None:
    """The owner's choice for one portrait; None: as its character (no row)."""
    if is_public is None:
        cur.execute("DELETE FROM portrait_visibility WHERE portrait_id = ?", [portrait_id])
    else:
        cur.execute("INSERT INTO portrait_visibility VALUES (?, ?, ?) ON CONFLICT (portrait_id) DO UPDATE SET "
                    "is_public = excluded.is_public, updated_at = excluded.updated_at", [portrait_id, is_public, now])


def delete_portrait(cur: Cursor, portrait_id: str) -> None:
    cur.execute("DELETE FROM portrait_visibility WHERE portrait_id = ?", [portrait_id])
    cur.execute("DELETE FROM character_portraits WHERE id = ?", [portrait_id])


def delete_scene_images(cur: Cursor, scene_id: str) -> None:
    cur.execute("DELETE FROM scene_images WHERE scene_id = ?", [scene_id])


def delete_character_images(cur: Cursor, character_id: str) -> None:
    """A character's portraits (with their visibility) and the images of its scenes."""
    cur.execute("DELETE FROM portrait_visibility WHERE portrait_id IN "
                "(SELECT id FROM character_portraits WHERE character_id = ?)", [character_id])
    cur.execute("DELETE FROM character_portraits WHERE character_id = ?", [character_id])
    cur.execute("DELETE FROM scene_images WHERE character_id = ?", [character_id])
