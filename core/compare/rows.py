"""The rows of `comparisons` and `comparison_cells`: written here only (the comparison's run and delete,
the runner's result transaction). Functions take the caller's transaction cursor (docs/architecture.md,
"Tables and their owners")."""
from __future__ import annotations

from datetime import datetime

from core.data import Cursor, dumps
from core.models import Recipe


def insert_comparison(cur: Cursor, *, comparison_id: str, owner: str, character_id: str, name: str, spec: str,
                      now: datetime) -> None:
    cur.execute("INSERT INTO comparisons VALUES (?, ?, ?, ?, ?, ?)", [comparison_id, owner, character_id, name, spec, now])


def insert_cell(cur: Cursor, *, cell_id: str, comparison_id: str, character_id: str, owner: str, key: str,
                thumb_key: str, recipe: Recipe, job_id: str, width: int, height: int, now: datetime) -> None:
    """The result row of a finished cell's job."""
    cur.execute("INSERT INTO comparison_cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [cell_id, comparison_id, character_id, owner, key, thumb_key, dumps(recipe.stored()), job_id,
                 width, height, now])


def rerecord_cell(cur: Cursor, job_id: str, recipe: Recipe, width: int, height: int) -> str | None:
    """A cell's job that completed before ran again: its row takes this run's recipe (None: the row is gone)."""
    row = cur.execute("UPDATE comparison_cells SET recipe = ?, width = ?, height = ? WHERE job_id = ? RETURNING id",
                      [dumps(recipe.stored()), width, height, job_id]).fetchone()
    return None if row is None else row[0]


def delete_comparison(cur: Cursor, comparison_id: str) -> None:
    cur.execute("DELETE FROM comparison_cells WHERE comparison_id = ?", [comparison_id])
    cur.execute("DELETE FROM comparisons WHERE id = ?", [comparison_id])


def comparison_files(cur: Cursor, character_id: str) -> list[str]:
    """The image and thumbnail keys of a character's comparison cells (to delete after the rows)."""
    return [k for row in cur.execute("SELECT image_key, thumbnail_key FROM comparison_cells WHERE character_id = ?",
                                     [character_id]).fetchall() for k in row]


def delete_comparisons_of(cur: Cursor, character_id: str) -> None:
    """Every comparison of a character and its cells (their jobs go with the character's)."""
    cur.execute("DELETE FROM comparison_cells WHERE character_id = ?", [character_id])
    cur.execute("DELETE FROM comparisons WHERE character_id = ?", [character_id])
