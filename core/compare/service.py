"""`studio.compare`: one character across prompts x models x seeds, queued as one batch of
`comparison` jobs; each finished cell is a row of `comparison_cells` (not a portrait) until "Keep"
copies it into the character's gallery."""
from __future__ import annotations

import re
import secrets
from typing import Any

from core.budgets import Budgets, image_price, usd
from core.characters import adopt_first_portrait, delete_files
from core.compare.models import (CELLS_MAX, Comparison, ComparisonCell, ComparisonPlan, ComparisonSpec,
                                 ComparisonSummary, ModelColumn)
from core.compare.rows import delete_comparison, insert_comparison
from core.compare.sheet import contact_sheet
from core.context import Actor, Context, new_id, not_found
from core.data import marks, utcnow
from core.engine.jobs import Jobs, JobStore, cancel_active, delete_ended
from core.errors import ConstraintViolation, CostNotConfirmed, InvalidInput, StorageError
from core.gallery import insert_image
from core.models import PROMPT_MAX, Character, GenerationOptions, JobRequest, NewJob, Portrait, Recipe, from_rows, parse
from core.portraits import Generator, Portraits, file_stem
from core.storage import portrait_key, thumbnail_key
from core.validation import Id, checked, fields_of

SIZE = (1024, 1024)  # every cell's width and height


class Compare:
    """The Compare grid's API: plan, run, list, get, retry a cell, keep a cell, export, delete."""

    def __init__(self, ctx: Context, actor: Actor, generator: Generator, jobs: Jobs, portraits: Portraits):
        self.ctx = ctx
        self.actor = actor
        self.generator = generator
        self.store: JobStore = generator.jobs
        self.jobs = jobs
        self.portraits = portraits
        self.characters = generator.characters

    # -- before running -------------------------------------------------------------------
    @checked
    def plan(self, spec: ComparisonSpec | dict[str, Any]) -> ComparisonPlan:
        """Validate a comparison and estimate it (cells, cost from the catalog prices); writes nothing."""
        return self._prepare(self._spec(spec))[0]

    def _spec(self, spec: ComparisonSpec | dict[str, Any]) -> ComparisonSpec:
        return parse(ComparisonSpec, fields_of(spec, "spec", ComparisonSpec), name="spec")

    def _prepare(self, spec: ComparisonSpec) -> tuple[ComparisonPlan, Character, list[NewJob]]:
        """Check everything (the caller's character, the models, the cell cap, prompt lengths) and build
        the plan and the job rows, before any write."""
        character = self.characters.owned(spec.character_id)  # another user's character, public or not: refused
        missing = {f: "is required before a comparison can be run (it goes into the prompt)"
                   for f in ("description",) if not getattr(character, f).strip()}
        if missing:
            raise InvalidInput(missing)
        variants = spec.variants()
        too_long = [v.text for v in variants if len(v.text) > PROMPT_MAX]
        if too_long:
            raise InvalidInput({"replace": f"a replaced prompt is longer than {PROMPT_MAX} characters: {too_long[0][:60]}..."})
        models = [self.ctx.catalog.route(ref, needs_i2i=False) for ref in (spec.models or [None])]
        if len({m.id for m in models}) != len(models):
            raise InvalidInput({"models": "a model is named more than once"})
        seeds = list(spec.seeds) or [secrets.randbelow(2**31)]
        cells = len(variants) * len(models) * len(seeds)
        if cells > CELLS_MAX:
            raise InvalidInput({"cells": f"{cells} cells ({len(variants)} prompts x {len(models)} models x "
                                        f"{len(seeds)} seeds); a comparison holds at most {CELLS_MAX}"})
        columns = [ModelColumn(model_id=m.id, model_key=m.model_key, provider_id=m.provider_id, name=m.display_name,
                               price=image_price(m.capabilities, *SIZE), takes_seed=m.capabilities.supports_seed)
                   for m in models]
        presets = spec.presets.model_dump(exclude_none=True)
        cost = len(variants) * len(seeds) * sum(c.price or 0.0 for c in columns)
        threshold = self.ctx.settings.compare_confirm_usd
        plan = ComparisonPlan(prompts=variants, models=columns, seeds=seeds, presets=presets, cells=cells,
                              estimated_cost=round(cost, 6), unpriced=[c.name for c in columns if c.price is None],
                              confirm_above=threshold, needs_confirmation=threshold is not None and cost > threshold)
        batch = new_id()
        rows = []
        for i in range(cells):
            p, m, s = plan.place(i)
            variant, model = variants[p], models[m]
            options = GenerationOptions(prompt=variant.text, presets=spec.presets, model_id=model.id,
                                        enhancement=variant.enhancement, width=SIZE[0], height=SIZE[1])
            final = self.generator.plan(character, options)[1]
            request = JobRequest(prompt=variant.text, presets=presets, final_prompt=final, width=SIZE[0],
                                 height=SIZE[1], content_rating=character.content_rating, seed=seeds[s],
                                 model_name=model.display_name, batch_index=i, enhancement=variant.enhancement,
                                 estimated_cost=columns[m].price)
            rows.append(NewJob(kind="comparison", owner=self.actor.id, character_id=character.id, batch_id=batch,
                               provider_id=model.provider_id, model_id=model.id, model_key=model.model_key,
                               max_attempts=self.ctx.settings.max_attempts, request=request))
        return plan, character, rows

    # -- running ----------------------------------------------------------------------------
    @checked
    def run(self, spec: ComparisonSpec | dict[str, Any], *, confirm: bool = False) -> Comparison:
        """Queue the comparison's cells as one batch and save it. Refused whole, before anything is
        queued, when the month's budget cannot take the estimate, or when the estimate is above
        STUDIO_COMPARE_CONFIRM_USD and `confirm` is not given."""
        spec = self._spec(spec)
        plan, character, rows = self._prepare(spec)
        if plan.needs_confirmation and not confirm:
            raise CostNotConfirmed(f"This comparison would cost about {usd(plan.estimated_cost)} ({plan.cells} images), "
                                   f"above the {usd(plan.confirm_above or 0)} that needs a confirmation; nothing was queued.")
        comparison_id = rows[0].batch_id
        name = spec.name or _default_name(plan)
        what = f"{plan.cells} comparison images"
        with Budgets(self.ctx, self.actor).admit(plan.estimated_cost, what), self.ctx.db.transaction() as cur:
            insert_comparison(cur, comparison_id=comparison_id, owner=self.actor.id, character_id=character.id,
                              name=name, spec=plan.model_dump_json(), now=utcnow())
            jobs = self.store.create(rows)  # joins this transaction: the comparison and its jobs commit together
        self.generator.runner.wake(jobs)
        return self.get(comparison_id)

    # -- reading ----------------------------------------------------------------------------
    def _row(self, comparison_id: str) -> dict[str, Any]:
        row = self.ctx.db.fetchone("SELECT * FROM comparisons WHERE id = ?", [comparison_id])
        if row is None or not (row["owner"] == self.actor.id or self.actor.is_admin):
            raise not_found("comparison", comparison_id)  # another user's comparison is not revealed
        return row

    @checked
    def list(self, character_id: Id | None = None) -> list[ComparisonSummary]:
        """The actor's comparisons (of one character, or all), newest first."""
        where, params = "owner = ?", [self.actor.id]
        if character_id is not None:
            where += " AND character_id = ?"
            params.append(character_id)
        rows = self.ctx.db.fetchall(
            "SELECT id, owner, character_id, name, created_at, "
            f"(SELECT count(*) FROM jobs j WHERE j.batch_id = c.id) AS cells FROM comparisons c WHERE {where} "
            "ORDER BY created_at DESC, id", params)
        return from_rows(ComparisonSummary, rows, what="comparison")

    @checked
    def get(self, comparison_id: Id) -> Comparison:
        """The comparison with its cells in grid order (prompts slowest, seeds fastest)."""
        row = self._row(comparison_id)
        plan = ComparisonPlan.model_validate_json(row["spec"])
        jobs = self.store.list(batch_id=comparison_id, limit=CELLS_MAX).items
        results = {r["job_id"]: r for r in self.ctx.db.fetchall(
            "SELECT * FROM comparison_cells WHERE comparison_id = ?", [comparison_id])}
        kept = self._kept([j.id for j in jobs])
        cells = []
        for job in sorted(jobs, key=lambda j: j.request.batch_index):
            p, m, s = plan.place(job.request.batch_index)
            result = results.get(job.id)
            recipe = Recipe.model_validate_json(result["recipe"]) if result else None
            cells.append(ComparisonCell(
                job_id=job.id, index=job.request.batch_index, prompt_index=p, model_index=m, seed_index=s,
                status=job.status, stage=job.stage, last_error=job.last_error, model_id=job.model_id,
                model_name=job.request.model_name or job.model_key, provider_id=job.provider_id, seed=job.request.seed,
                takes_seed=plan.models[m].takes_seed, provider_ms=job.provider_ms, cost=job.cost,
                estimated_cost=job.request.estimated_cost,
                image_key=result["image_key"] if result else None,
                thumbnail_key=result["thumbnail_key"] if result else None,
                width=result["width"] if result else None, height=result["height"] if result else None,
                recipe=recipe, finished_at=job.finished_at, kept_portrait_id=kept.get(job.id)))
        return Comparison(id=row["id"], owner=row["owner"], character_id=row["character_id"], name=row["name"],
                          created_at=row["created_at"], cells=len(cells), plan=plan, items=cells)

    def _kept(self, job_ids: list[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        return {r["job_id"]: r["id"] for r in self.ctx.db.fetchall(
            f"SELECT id, job_id FROM character_portraits WHERE job_id IN ({marks(job_ids)})", job_ids)}

    def _cell(self, job_id: str) -> tuple[ComparisonCell, Comparison]:
        """A cell of one of the actor's comparisons, by its job id."""
        batch = self.ctx.db.scalar("SELECT batch_id FROM jobs WHERE id = ? AND kind = 'comparison'", [job_id])
        if batch is None:
            raise not_found("comparison cell", job_id)
        comparison = self.get(batch)
        return next(c for c in comparison.items if c.job_id == job_id), comparison

    @checked
    def cell(self, job_id: Id) -> ComparisonCell:
        """One cell of the actor's comparisons, by its job id."""
        return self._cell(job_id)[0]

    # -- acting on cells -------------------------------------------------------------------
    @checked
    def retry(self, job_id: Id) -> ComparisonCell:
        """Queue a failed or canceled cell again (the month's budget is checked as for any retry)."""
        self._cell(job_id)
        self.jobs.retry(job_id)
        return self._cell(job_id)[0]

    @checked
    def keep(self, job_id: Id) -> Portrait:
        """Make a finished cell a portrait of its character: its image and thumbnail are copied under
        the portrait's key, with the cell's recipe. Keeping a cell twice gives the same portrait."""
        cell, comparison = self._cell(job_id)
        if cell.kept_portrait_id:
            return self.portraits.get(cell.kept_portrait_id)
        if not cell.done:
            raise InvalidInput({"job_id": f"this cell has no image yet (it is {cell.status})"})
        self.characters.owned(comparison.character_id)
        key = portrait_key(comparison.owner, comparison.character_id, job_id)
        thumb = thumbnail_key(key)
        self.ctx.store.write(key, self.ctx.store.read(cell.image_key))
        self.ctx.store.write(thumb, self.ctx.store.read(cell.thumbnail_key))
        portrait_id = new_id()
        try:
            with self.ctx.db.transaction() as cur:
                insert_image(cur, "portrait", image_id=portrait_id, character_id=comparison.character_id,
                             scene_id=None, owner=comparison.owner, key=key, thumb_key=thumb, prompt=cell.recipe.prompt,
                             recipe=cell.recipe, job_id=job_id, width=cell.width, height=cell.height, now=utcnow())
                adopt_first_portrait(cur, comparison.character_id, portrait_id)
        except ConstraintViolation:  # kept at the same moment elsewhere: that portrait (same keys) stands
            portrait_id = self._kept([job_id])[job_id]
        return self.portraits.get(portrait_id)

    @checked
    def set_primary(self, job_id: Id) -> Portrait:
        """Keep the cell (if not kept yet) and make it its character's primary portrait."""
        return self.portraits.set_primary(self.keep(job_id).id)

    @checked
    def download(self, job_id: Id) -> tuple[bytes, str]:
        """A finished cell's image and a filename like `mia-compare-3f2a1b0c.png`."""
        cell, comparison = self._cell(job_id)
        if not cell.done:
            raise InvalidInput({"job_id": f"this cell has no image yet (it is {cell.status})"})
        return self.ctx.store.read(cell.image_key), f"{file_stem(self.ctx, comparison.character_id)}-compare-{job_id[:8]}.png"

    @checked
    def sheet(self, comparison_id: Id) -> tuple[bytes, str]:
        """The grid as one PNG with row (prompt) and column (model, seed) labels, and a filename."""
        comparison = self.get(comparison_id)

        def read(key: str) -> bytes | None:
            try:
                return self.ctx.store.read(key)
            except StorageError:
                return None

        data = contact_sheet(comparison, read)
        return data, f"{file_stem(self.ctx, comparison.character_id)}-comparison-{comparison_id[:8]}.png"

    # -- deleting ----------------------------------------------------------------------------
    @checked
    def delete(self, comparison_id: Id) -> None:
        """Delete the comparison, its cells' rows and images and its jobs (active ones canceled first);
        portraits kept from it stay."""
        self._row(comparison_id)
        db = self.ctx.db
        with db.transaction() as cur:
            keys = [k for row in cur.execute("SELECT image_key, thumbnail_key FROM comparison_cells "
                                              "WHERE comparison_id = ?", [comparison_id]).fetchall() for k in row]
            canceled = cancel_active(cur, "batch_id", comparison_id, "Canceled: its comparison was deleted.")
            delete_ended(cur, "batch_id", comparison_id)
            delete_comparison(cur, comparison_id)
        self.generator.runner.cancel(canceled)
        delete_files(self.ctx, keys)


def _default_name(plan: ComparisonPlan) -> str:
    axes = [f"{len(plan.prompts)} prompt{'s' if len(plan.prompts) > 1 else ''}",
            f"{len(plan.models)} model{'s' if len(plan.models) > 1 else ''}",
            f"{len(plan.seeds)} seed{'s' if len(plan.seeds) > 1 else ''}"]
    first = re.sub(r"\s+", " ", plan.prompts[0].text).strip()[:40]
    return (f"{first} · " if first else "") + " x ".join(axes)
