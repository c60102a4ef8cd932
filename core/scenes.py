"""Scenes of a character: create, update, list by priority, delete (with their images)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from core.characters import Characters, delete_files
from core.context import Actor, Context, new_id, not_found
from core.data import Cursor, dumps, utcnow
from core.models import Scene, SceneCreate, SceneUpdate, from_row, from_rows, parse
from core.validation import Id, checked
from core.engine.jobs import cancel_active, delete_ended
from core.gallery import delete_scene_images

_SELECT = """SELECT s.*, i.image_key, i.thumbnail_key, i.job_id, i.recipe
             FROM character_scenes s LEFT JOIN scene_images i ON i.id = s.image_id"""


_JSON = {"starters": [], "recipe": {}}


def _row_to_scene(row: dict[str, Any]) -> Scene:
    return from_row(Scene, row, json_fields=_JSON, what="scene")


class Scenes:
    def __init__(self, ctx: Context, actor: Actor, runner=None):
        self.ctx = ctx
        self.actor = actor
        self.runner = runner  # told about jobs a delete cancels (without one they stop at their next poll)
        self._characters = Characters(ctx, actor)

    @checked
    def create(self, character_id: Id, data: SceneCreate | dict[str, Any]) -> Scene:
        scene = parse(SceneCreate, data, name="data")
        self._characters.owned(character_id)
        now = utcnow()
        scene_id = new_id()
        self.ctx.db.execute(
            "INSERT INTO character_scenes (id, character_id, owner, name, description, prompt, type, starters, "
            "system_prompt, priority, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [scene_id, character_id, self.actor.id, scene.name, scene.description, scene.prompt, scene.type,
             dumps(scene.starters), scene.system_prompt, scene.priority, now, now],
        )
        return self.get(scene_id)

    @checked
    def get(self, scene_id: Id) -> Scene:
        row = self.ctx.db.fetchone(f"{_SELECT} WHERE s.id = ?", [scene_id])
        if row is None:
            raise not_found("scene", scene_id)
        self._characters.get(row["character_id"])  # visibility follows the character
        return _row_to_scene(row)

    @checked
    def list(self, character_id: Id) -> list[Scene]:
        """Scenes of a character, highest priority first."""
        self._characters.get(character_id)
        rows = self.ctx.db.fetchall(f"{_SELECT} WHERE s.character_id = ? ORDER BY s.priority DESC, s.created_at", [character_id])
        return from_rows(Scene, rows, json_fields=_JSON, what="scene")

    @checked
    def update(self, scene_id: Id, changes: SceneUpdate | dict[str, Any]) -> Scene:
        """Change only the given fields (validated in full before anything is written)."""
        given = parse(SceneUpdate, changes, name="changes").model_dump(exclude_unset=True)
        scene = self.get(scene_id)
        self.actor.require_owner(scene.owner, "scene")
        if not given:
            return scene
        if "starters" in given:
            given["starters"] = dumps(given["starters"])
        given["updated_at"] = utcnow()
        sets = ", ".join(f"{k} = ?" for k in given)
        self.ctx.db.execute(f"UPDATE character_scenes SET {sets} WHERE id = ?", [*given.values(), scene_id])
        return self.get(scene_id)

    def delete(self, scene_id: str) -> None:
        """Delete the scene, its images and its finished jobs. Its queued, running and storing jobs
        are canceled in the same transaction (kept, saying why), so no restart runs them again; the
        runner stops them and asks the provider to cancel."""
        scene = self.get(scene_id)
        self.actor.require_owner(scene.owner, "scene")
        rows = self.ctx.db.fetchall("SELECT image_key, thumbnail_key FROM scene_images WHERE scene_id = ?", [scene_id])
        with self.ctx.db.transaction() as cur:
            delete_scene_images(cur, scene_id)
            delete_ended(cur, "scene_id", scene_id)
            canceled = cancel_active(cur, "scene_id", scene_id, "Canceled: its scene was deleted.")
            cur.execute("DELETE FROM character_scenes WHERE id = ?", [scene_id])
        if self.runner is not None:
            self.runner.cancel(canceled)
        delete_files(self.ctx, [k for r in rows for k in (r["image_key"], r["thumbnail_key"])])


def set_scene_image(cur: Cursor, scene_id: str, image_id: str, now: datetime) -> bool:
    """The scene's current image (a finished job's); False when the scene is gone."""
    return bool(cur.changed("UPDATE character_scenes SET image_id = ?, updated_at = ? WHERE id = ?", [image_id, now, scene_id]))


def delete_scenes_of(cur: Cursor, character_id: str) -> None:
    """The scene rows of a character being deleted (their images and jobs go with the character's)."""
    cur.execute("DELETE FROM character_scenes WHERE character_id = ?", [character_id])
