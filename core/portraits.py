"""Portraits: the generation pipeline and the gallery operations."""
from __future__ import annotations

import io
import re
import secrets
import zipfile
from dataclasses import dataclass
from typing import Annotated, Any

from PIL import Image
from pydantic import Field, Strict

from core.budgets import Budgets, image_price, usd
from core.characters import Characters, delete_files, pass_primary, set_primary_portrait, store_upload
from core.context import Actor, Context, new_id, not_found
from core.data import utcnow
from core.errors import InvalidInput, NotFound, StudioError
from core.images import open_image, sha256
from core.engine.jobs import JobStore
from core.gallery import delete_portrait, reorder_portraits, set_portrait_visibility
from core.models import (Character, CatalogModel, GenerationOptions, Job, JobKind, JobRequest, NewJob, Page, Portrait,
                         Recipe, from_row, from_rows, parse)
from core.prompting import build_prompt, build_scene_prompt, enhanced_prompt
from core.validation import Id, Limit, Offset, Seed, checked, fields_of

_JSON = {"recipe": {}}
SCENE_SIZE = (1344, 768)  # width, height of a scene image
_ORDER = "p.sort_order, p.created_at DESC, p.id"  # the gallery's order (list, neighbours, move)
ZIP_MAX = 200  # portraits per "Download selected"
Selection = Annotated[list[Id], Field(min_length=1, max_length=ZIP_MAX)]


@dataclass(frozen=True)
class Neighbours:
    """Where a portrait stands in its character's gallery: its 0-based index, the total, and the ids
    of the portraits before and after it (None at either end)."""

    index: int
    total: int
    previous_id: str | None
    next_id: str | None


# Portraits with the visibility their owner chose (`chosen_public`: NULL where it follows the character).
_SELECT = ("SELECT p.*, v.is_public AS chosen_public FROM character_portraits p "
           "LEFT JOIN portrait_visibility v ON v.portrait_id = p.id")
_SELECT_COUNTED = _SELECT.replace(" FROM ", ", count(*) OVER () AS total FROM ", 1)
# A character's portraits the actor sees (params: character id, whether they see private ones): others
# see the portraits of a public character that its owner did not make private.
_VISIBLE = "p.character_id = ? AND (? OR coalesce(v.is_public, TRUE))"


def file_stem(ctx: Context, character_id: str) -> str:
    """The character's name as the start of a download's file name ("mia-rose")."""
    name = ctx.db.scalar("SELECT name FROM characters WHERE id = ?", [character_id]) or "portrait"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "portrait"


def _portrait_fields(row: dict[str, Any], character: Character) -> dict[str, Any]:
    chosen = row.pop("chosen_public", None)
    return {**row, "is_primary": row["id"] == character.primary_portrait_id,
            "is_public": character.is_public if chosen is None else chosen, "visibility_set": chosen is not None}


def row_to_portrait(row: dict[str, Any], character: Character) -> Portrait:
    return from_row(Portrait, _portrait_fields(row, character), json_fields=_JSON, what="portrait")


class Generator:
    """Turns options into queued jobs: validate, route, build the prompt, insert the batch."""

    def __init__(self, ctx: Context, actor: Actor, jobs: JobStore, runner):
        self.ctx = ctx
        self.actor = actor
        self.jobs = jobs
        self.runner = runner
        self.characters = Characters(ctx, actor)
        self.budgets = Budgets(ctx, actor)

    def resolve_reference(self, character: Character, options: GenerationOptions) -> tuple[str | None, str | None]:
        """(storage key, sha256) of the reference image the options ask for."""
        if options.reference == "none":
            return None, None
        if options.reference == "character":
            if not character.reference_image_key:
                raise InvalidInput({"reference": "this character has no reference image; upload one or pick a portrait"})
            return character.reference_image_key, character.reference_image_hash
        if options.reference == "portrait":
            if not options.reference_portrait_id:
                raise InvalidInput({"reference_portrait_id": "choose the portrait to use as reference"})
            found = self.portrait_reference(options.reference_portrait_id, character.id)
            if found is None:
                raise InvalidInput({"reference_portrait_id": "no such portrait of this character"})
            return found
        row = self.ctx.db.fetchone("SELECT key, sha256 FROM uploads WHERE key = ? AND owner = ?",
                                   [options.reference_key or "", self.actor.id])
        if row is None:
            raise InvalidInput({"reference_key": "upload the reference image first (studio.uploads.add)"})
        return row["key"], row["sha256"]

    def portrait_reference(self, portrait_id: str, character_id: str) -> tuple[str, str] | None:
        """(image key, sha256) of a portrait, the hash from its recipe (older rows: hashed from the file)."""
        row = self.ctx.db.fetchone("SELECT image_key, recipe FROM character_portraits WHERE id = ? AND character_id = ?",
                                   [portrait_id, character_id])
        if row is None:
            return None
        try:
            digest = Recipe.model_validate_json(row["recipe"]).sha256
        except ValueError:  # a damaged recipe (pydantic's ValidationError is one): hash the file
            digest = None
        digest = digest or sha256(self.ctx.store.read(row["image_key"]))
        return row["image_key"], digest

    def plan(self, character: Character, options: GenerationOptions) -> tuple[CatalogModel, str, str | None, str | None]:
        """Route the model and build the final prompt (no side effects): (model, prompt, ref key, ref hash)."""
        ref_key, ref_hash = self.resolve_reference(character, options)
        model = self.ctx.catalog.route(options.model_id, needs_i2i=ref_key is not None)
        preset_texts = self.ctx.presets.resolve(options.presets)
        if options.enhancement is not None:  # the text model already wrote the look into it
            prompt = enhanced_prompt(options.enhancement.prompt, presets=preset_texts, has_reference=ref_key is not None)
        else:
            prompt = build_prompt(gender=character.gender, description=character.description,
                                  appearance_tags=character.appearance_tags,
                                  clothing_tags=character.clothing_tags, presets=preset_texts,
                                  custom=options.prompt, has_reference=ref_key is not None)
        return model, prompt, ref_key, ref_hash

    def portraits(self, character_id: str, options: GenerationOptions | dict[str, Any]) -> list[Job]:
        options = parse(GenerationOptions, options, name="options")
        character = self.characters.owned(character_id)
        # The description is the heart of the portrait prompt (see build_prompt): no description, no portrait.
        missing = {f: "is required before a portrait can be generated (it goes into the prompt)"
                   for f in ("name", "description") if not getattr(character, f).strip()}
        if missing:
            raise InvalidInput(missing)
        model, prompt, ref_key, ref_hash = self.plan(character, options)
        request = JobRequest(prompt=options.prompt, presets=options.presets.model_dump(exclude_none=True),
                             final_prompt=prompt, reference_key=ref_key, reference_hash=ref_hash,
                             width=options.width, height=options.height, content_rating=character.content_rating,
                             enhancement=options.enhancement)
        return self._enqueue("portrait", character, model, request, options.n, options.seed)

    @checked
    def scene(self, scene_id: Id, model_id: Id | None = None, seed: Seed | None = None) -> Job:
        row = self.ctx.db.fetchone("SELECT * FROM character_scenes WHERE id = ?", [scene_id])
        if row is None:
            raise not_found("scene", scene_id)
        character = self.characters.owned(row["character_id"])
        ref_key = ref_hash = None
        if character.primary_portrait_id and self.ctx.catalog.i2i_count() and (model_id is None or self.ctx.catalog.get_model(model_id).supports_i2i):
            ref_key, ref_hash = self.portrait_reference(character.primary_portrait_id, character.id) or (None, None)
        model = self.ctx.catalog.route(model_id, needs_i2i=ref_key is not None)
        prompt = build_scene_prompt(gender=character.gender, appearance_tags=character.appearance_tags,
                                    clothing_tags=character.clothing_tags, scene_prompt=row["prompt"],
                                    scene_description=row["description"], has_reference=ref_key is not None)
        request = JobRequest(prompt=row["prompt"], final_prompt=prompt, reference_key=ref_key, reference_hash=ref_hash,
                             width=SCENE_SIZE[0], height=SCENE_SIZE[1], content_rating=character.content_rating)
        return self._enqueue("scene", character, model, request, 1, seed, scene_id=scene_id)[0]

    def _enqueue(self, kind: JobKind, character: Character, model: CatalogModel, request: JobRequest, n: int,
                 seed: int | None, scene_id: str | None = None) -> list[Job]:
        batch_id = new_id()
        base_seed = seed if seed is not None else secrets.randbelow(2**31)
        price = image_price(model.capabilities, request.width, request.height)
        request = request.model_copy(update={"estimated_cost": price})  # what the month's budget reserves while active
        rows = [NewJob(
            kind=kind, owner=self.actor.id, character_id=character.id, scene_id=scene_id, batch_id=batch_id,
            provider_id=model.provider_id, model_id=model.id, model_key=model.model_key,
            max_attempts=self.ctx.settings.max_attempts,
            request=request.model_copy(update={
                "seed": base_seed + i, "mode": "i2i" if request.reference_key else "txt2img",
                "model_name": model.display_name, "batch_index": i}),
        ) for i in range(n)]
        what = f"{n} image{'s' if n > 1 else ''} at {usd(price)}" if price else "unpriced model"
        with self.budgets.admit(n * (price or 0.0), what):  # a batch counts whole
            jobs = self.jobs.create(rows)
        self.runner.wake(jobs)
        return jobs


class Portraits:
    """A user's view of portraits: generate, list, and the gallery actions."""

    def __init__(self, ctx: Context, actor: Actor, generator: Generator):
        self.ctx = ctx
        self.actor = actor
        self.generator = generator
        self.characters = generator.characters

    @checked
    def generate(self, character_id: Id, options: GenerationOptions | dict[str, Any] | None = None, **kwargs: Any) -> list[Job]:
        """Queue n portrait jobs and return them at once (wait with `studio.jobs.wait`)."""
        given = fields_of({} if options is None else options, "options", GenerationOptions)
        opts = given.model_dump() if isinstance(given, GenerationOptions) else given
        return self.generator.portraits(character_id, {**opts, **kwargs})

    @checked
    def preview_prompt(self, character_id: Id, options: GenerationOptions | dict[str, Any] | None = None) -> str:
        """The final prompt generation would send (raises the same routing errors)."""
        options = parse(GenerationOptions, fields_of({} if options is None else options, "options", GenerationOptions),
                        name="options")
        character = self.characters.get(character_id)
        return self.generator.plan(character, options)[1]

    @checked
    def list(self, character_id: Id, *, limit: Limit = 24, offset: Offset = 0) -> Page[Portrait]:
        """Portraits by sort order, then newest first."""
        character = self.characters.get(character_id)
        where, params = _VISIBLE, [character_id, self._sees_all(character)]
        db = self.ctx.db
        rows = db.fetchall(f"{_SELECT_COUNTED} WHERE {where} ORDER BY {_ORDER} LIMIT ? OFFSET ?",
                           [*params, limit, offset])
        # The page's rows carry the total; a page past the end has none to carry it.
        total = rows[0]["total"] if rows else db.scalar(
            f"SELECT count(*) FROM character_portraits p LEFT JOIN portrait_visibility v ON v.portrait_id = p.id "
            f"WHERE {where}", params)
        for r in rows:
            del r["total"]
        items = from_rows(Portrait, [_portrait_fields(r, character) for r in rows], json_fields=_JSON, what="portrait")
        return Page[Portrait](items=items, total=int(total), offset=offset, limit=limit)

    def _sees_all(self, character: Character) -> bool:
        """Whether the actor sees the character's private portraits too (its owner, or an admin)."""
        return character.owner == self.actor.id or self.actor.is_admin

    @checked
    def get(self, portrait_id: Id) -> Portrait:
        return self._seen(portrait_id)[0]

    def _seen(self, portrait_id: str) -> tuple[Portrait, Character]:
        """The portrait, if the actor may see it, and its character."""
        row = self.ctx.db.fetchone(f"{_SELECT} WHERE p.id = ?", [portrait_id])
        if row is None:
            raise not_found("portrait", portrait_id)
        character = self.characters.get(row["character_id"])
        if row["chosen_public"] is False and not self._sees_all(character):
            raise not_found("portrait", portrait_id)
        return row_to_portrait(row, character), character

    def _owned(self, portrait_id: str) -> Portrait:
        portrait = self.get(portrait_id)
        self.actor.require_owner(portrait.owner, "portrait")
        return portrait

    @checked
    def primary(self, character_id: Id) -> Portrait | None:
        character = self.characters.get(character_id)
        if not character.primary_portrait_id:
            return None
        try:
            return self.get(character.primary_portrait_id)
        except NotFound:  # made private by its owner
            return None

    @checked
    def set_public(self, portrait_id: Id, is_public: Annotated[bool, Strict()] | None) -> Portrait:
        """Show this portrait to others (True) or only to its owner (False); None: as its character."""
        self._owned(portrait_id)
        with self.ctx.db.transaction() as cur:
            set_portrait_visibility(cur, portrait_id, is_public, utcnow())
        return self.get(portrait_id)

    @checked
    def set_primary(self, portrait_id: Id) -> Portrait:
        """Make this portrait its character's primary (one UPDATE)."""
        portrait = self._owned(portrait_id)
        with self.ctx.db.transaction() as cur:
            set_primary_portrait(cur, portrait.character_id, portrait.id, utcnow())
        return self.get(portrait_id)

    @checked
    def use_as_reference(self, portrait_id: Id) -> Character:
        """Copy the portrait into the references and make it the character's reference image."""
        portrait = self._owned(portrait_id)
        data = self.ctx.store.read(portrait.image_key)
        key, sha = store_upload(self.ctx, self.actor.id, data)
        return self.characters._set_reference(portrait.character_id, key, sha)

    @checked
    def reorder(self, character_id: Id, ordered_ids: list[Id]) -> None:
        """Put these portraits first, in this order; the rest keep their order after them."""
        self.characters.owned(character_id)
        have = {r["id"] for r in self.ctx.db.fetchall("SELECT id FROM character_portraits WHERE character_id = ?", [character_id])}
        unknown = [i for i in ordered_ids if i not in have]
        if unknown:
            raise InvalidInput({"ordered_ids": f"not portraits of this character: {', '.join(unknown[:3])}"})
        if len(set(ordered_ids)) != len(ordered_ids):
            raise InvalidInput({"ordered_ids": "names a portrait more than once"})
        with self.ctx.db.transaction() as cur:
            reorder_portraits(cur, character_id, ordered_ids)

    @checked
    def neighbours(self, portrait_id: Id) -> Neighbours:
        """The portrait's place in the gallery order and the ids either side of it (for a lightbox
        that stays on one portrait while others are added or removed); counted among the portraits
        the actor sees, as `list` shows them."""
        p, character = self._seen(portrait_id)
        row = self.ctx.db.fetchone(
            "SELECT idx, total, previous_id, next_id FROM (SELECT p.id, (row_number() OVER w) - 1 AS idx, "
            "count(*) OVER () AS total, lag(p.id) OVER w AS previous_id, lead(p.id) OVER w AS next_id "
            f"FROM character_portraits p LEFT JOIN portrait_visibility v ON v.portrait_id = p.id WHERE {_VISIBLE} "
            f"WINDOW w AS (ORDER BY {_ORDER})) gallery WHERE id = ?",
            [p.character_id, self._sees_all(character), p.id])
        if row is None:  # deleted since it was read
            raise not_found("portrait", portrait_id)
        return Neighbours(index=int(row["idx"]), total=int(row["total"]), previous_id=row["previous_id"],
                          next_id=row["next_id"])

    @checked
    def move(self, portrait_id: Id, position: Annotated[int, Strict(), Field(ge=0)]) -> Neighbours:
        """Move a portrait to this 0-based place in its gallery (past the end: last); returns its new place."""
        portrait = self._owned(portrait_id)
        ids = [r["id"] for r in self.ctx.db.fetchall(
            f"SELECT p.id FROM character_portraits p WHERE p.character_id = ? ORDER BY {_ORDER}",
            [portrait.character_id])]
        old = ids.index(portrait_id)
        ids.insert(min(position, len(ids) - 1), ids.pop(old))
        # Only the places up to the farther of the two change; everything after keeps its order.
        self.reorder(portrait.character_id, ids[:max(old, position) + 1])
        return self.neighbours(portrait_id)

    @checked
    def delete_many(self, portrait_ids: Selection) -> int:
        """Delete several portraits (all checked first: one that is not the actor's deletes none)."""
        for pid in dict.fromkeys(portrait_ids):
            self._owned(pid)
        for pid in dict.fromkeys(portrait_ids):
            self.delete(pid)
        return len(set(portrait_ids))

    @checked
    def zip(self, portrait_ids: Selection) -> tuple[bytes, str]:
        """The portraits' stored PNGs (byte for byte, so each keeps the recipe written into it) in one zip,
        and a filename like `mia-portraits.zip`. Every id is checked before anything is read."""
        chosen = [self.get(pid) for pid in dict.fromkeys(portrait_ids)]
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
            for portrait in chosen:
                data, name = self.download(portrait.id)
                archive.writestr(name, data)
        slugs = {file_stem(self.ctx, p.character_id) for p in chosen}
        return out.getvalue(), f"{slugs.pop() if len(slugs) == 1 else 'studio'}-portraits.zip"

    @checked
    def delete(self, portrait_id: Id) -> None:
        """Delete image, thumbnail and row; a deleted primary passes to the newest remaining portrait."""
        portrait = self._owned(portrait_id)
        with self.ctx.db.transaction() as cur:
            delete_portrait(cur, portrait_id)
            pass_primary(cur, portrait.character_id, portrait_id)
        delete_files(self.ctx, [portrait.image_key, portrait.thumbnail_key])

    @checked
    def image_bytes(self, portrait_id: Id, *, thumbnail: bool = False) -> bytes:
        portrait = self.get(portrait_id)
        return self.ctx.store.read(portrait.thumbnail_key if thumbnail else portrait.image_key)

    @checked
    def image(self, portrait_id: Id, *, thumbnail: bool = False) -> Image.Image:
        """The portrait as a PIL image (it displays itself in a notebook)."""
        return open_image(self.image_bytes(portrait_id, thumbnail=thumbnail))

    @checked
    def download(self, portrait_id: Id) -> tuple[bytes, str]:
        """The full image and a filename like `mia-3f2a1b0c.png`."""
        portrait = self.get(portrait_id)
        return self.ctx.store.read(portrait.image_key), f"{file_stem(self.ctx, portrait.character_id)}-{portrait.id[:8]}.png"

    @checked
    def recall(self, portrait_id: Id) -> GenerationOptions:
        """The portrait's recipe as new generation options (the character is not changed)."""
        recipe = self.get(portrait_id).recipe
        reference = {}
        if recipe.reference_key:
            owned_upload = self.ctx.db.fetchone("SELECT 1 FROM uploads WHERE key = ? AND owner = ?", [recipe.reference_key, self.actor.id])
            if owned_upload:
                reference = {"reference": "upload", "reference_key": recipe.reference_key}
        # What the recipe does not record (older rows) takes the options' own defaults.
        recorded = recipe.model_dump(include={"prompt", "presets", "model_id", "seed", "width", "height"}, exclude_none=True)
        return parse(GenerationOptions, {**recorded, **reference}, name="recipe")

    @checked
    def regenerate(self, portrait_id: Id, *, prompt: str | None = None, new_seed: bool = False) -> list[Job]:
        """Generate again with the same recipe, optionally an edited prompt and a new seed."""
        portrait = self._owned(portrait_id)
        options = self.recall(portrait_id)
        changes: dict[str, Any] = {}
        if prompt is not None:
            changes["prompt"] = prompt
        if new_seed:
            changes["seed"] = None
        if options.model_id:
            try:
                self.ctx.catalog.route(options.model_id, needs_i2i=options.reference != "none")
            except StudioError:
                changes["model_id"] = None  # the model went away: route afresh
        return self.generate(portrait.character_id, options.model_copy(update=changes))


class Uploads:
    """Reference images uploaded by a user."""

    def __init__(self, ctx: Context, actor: Actor):
        self.ctx = ctx
        self.actor = actor

    @checked
    def add(self, data: Annotated[bytes, Strict()]) -> str:
        """Validate and store an upload; returns its key for `reference_key`."""
        return store_upload(self.ctx, self.actor.id, data)[0]

