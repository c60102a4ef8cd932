"""The recording of results, a mixin of `Runner`: the bytes a provider returned are spooled first
(`core.engine.spool`), then the image and its thumbnail are written to the store, then the result
row and the job's completion commit in one transaction. A storage failure leaves the job `storing`,
retried from the spool. See docs/architecture.md, "The job lifecycle"."""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future
from datetime import datetime, timedelta

from core.characters import adopt_first_portrait
from core.compare.rows import insert_cell, rerecord_cell
from core.context import new_id
from core.data import utcnow
from core.engine.jobs import complete, set_result, taken_over
from core.errors import ConstraintViolation, StorageError
from core.gallery import insert_image, rerecord_image
from core.images import sha256, thumbnail, to_png
from core.models import Job, Recipe
from core.retry import backoff_delay
from core.scenes import set_scene_image
from core.storage import result_key, thumbnail_key

log = logging.getLogger("core.engine.runner")

STORE_RETRY_CAP = 60.0


class Recording:
    """Stores one job's result (the runner's state is on `Runner`)."""

    async def _store_from_spool(self, job: Job) -> None:
        data = await asyncio.to_thread(self.spool.read, job.id)
        if data is None:
            await asyncio.to_thread(
                self.jobs.set, job.id, only_if=("storing",), owner=self.lease_owner, status="failed", stage="failed", finished_at=utcnow(),
                last_error="The generated image was lost before it could be stored (spool file missing).")
            return
        await self._store(job, data, None, spool=False, started_wall=None, provider_wall=0.0)

    async def _store(self, job: Job, data: bytes, thumb: Future | None, *, spool: bool, started_wall: float | None,
                     provider_wall: float, timings: dict[str, float] | None = None) -> None:
        """Spool the bytes (when fresh from the provider), then write the result; a storage failure
        leaves the job `storing`, to be retried from the spool."""
        timings = timings if timings is not None else {}

        def spool_and_write() -> None:
            if spool:  # fsync'd before the image goes anywhere: a crash from here on loses nothing
                _, timings["spool"] = _timed(self.spool.write, job.id, data)
            self._write_result(job, data, thumb, started_wall, provider_wall, timings)

        self._storing.add(job.id)
        try:
            await asyncio.to_thread(spool_and_write)
        except StorageError as exc:
            attempt = job.request.store_attempts + 1
            delay = backoff_delay(attempt + 1, self.retry_base, STORE_RETRY_CAP)
            if not await asyncio.to_thread(
                    self.jobs.set, job.id, only_if=("running", "storing"), owner=self.lease_owner, status="storing",
                    stage="storing (waiting for storage)", last_error=exc.message, percent=None,
                    next_attempt_at=utcnow() + timedelta(seconds=delay), provider_ms=job.provider_ms,
                    request=job.request.model_copy(update={"store_attempts": attempt}), **self._lease_released()):
                if not await asyncio.to_thread(self._lost_lease, job.id):
                    await asyncio.to_thread(self.spool.remove, job.id)  # canceled or deleted meanwhile
                return
            self._waiting_again.add(job.id)
            self._notify()
            log.warning("storing job %s failed (attempt %d), retrying in %.1fs: %s", job.id, attempt, delay, exc)
        finally:
            self._storing.discard(job.id)

    def _write_result(self, job: Job, data: bytes, thumb: Future | None, started_wall: float | None,
                      provider_wall: float, timings: dict[str, float]) -> None:
        """Write image and thumbnail, then the result row and the job's completion in one transaction."""
        t = time.perf_counter()
        png, width, height = to_png(data)
        key = result_key(job.kind, job.owner, job.character_id, job.id)
        thumb_key = thumbnail_key(key)
        t = _lap(timings, "png", t)
        self.ctx.store.write(key, png)
        t = _lap(timings, "store_image", t)
        if thumb is None:
            thumb_bytes, timings["thumbnail"] = _timed(thumbnail, png)
        else:
            thumb_bytes, timings["thumbnail"] = thumb.result()
        t = _lap(timings, "thumbnail_wait", t)
        self.ctx.store.write(thumb_key, thumb_bytes)
        _lap(timings, "store_thumbnail", t)
        r = job.request
        now = utcnow()
        overhead_ms = None
        if started_wall is not None:
            overhead_ms = max(0.0, (time.perf_counter() - started_wall - provider_wall) * 1000)
        recipe = Recipe(
            provider=job.provider_id, model_id=job.model_id, model_key=job.model_key, model_name=r.model_name,
            mode=r.mode, prompt=r.prompt, final_prompt=r.final_prompt, presets=r.presets, inputs=r.inputs,
            seed=r.seed, width=width, height=height, reference_key=r.reference_key, reference_hash=r.reference_hash,
            provider_ms=job.provider_ms, provider_request_id=job.provider_request_id, job_id=job.id,
            batch_id=job.batch_id, content_rating=r.content_rating, provider_metadata=r.provider_metadata,
            cost=r.cost, sha256=sha256(png), overhead_ms=overhead_ms, enhancement=r.enhancement,
            timings_ms={k: round(v, 3) for k, v in timings.items()})
        try:
            self._record_result(job, key, thumb_key, width, height, recipe, now)
        except _LeaseLost:
            # Another server holds the job now and stores the same result under the same keys, from
            # the same spool row: nothing here is deleted or changed.
            log.warning("job %s was taken over by another server before its result was recorded here", job.id)
            self._notify()
            return
        except _Discarded:  # canceled, or its character or scene deleted, while it was generating
            for k in (key, thumb_key):
                try:
                    self.ctx.store.delete(k)
                except StorageError:
                    pass
            # A job still active here lost its scene (or its earlier result row): it ends, it is not
            # left running for every restart to run again.
            self.jobs.set(job.id, only_if=("running", "storing"), owner=self.lease_owner, status="canceled",
                          stage="canceled", finished_at=utcnow(), last_error="The image was discarded: what it was made for was deleted meanwhile.")
        self.spool.remove(job.id)
        self._notify()  # from this thread: waiters need not wait for the hop back to the loop

    def _lost_lease(self, job_id: str) -> bool:
        """Whether this server (on the shared queue) no longer holds the job: another server does."""
        return self.lease_owner is not None and self.jobs.taken_over(job_id, self.lease_owner)

    def _record_result(self, job: Job, key: str, thumb_key: str, width: int, height: int,
                       recipe: Recipe, now: datetime) -> None:
        """The result row and the job's completion, in one transaction of as few statements as can
        be (this runs once per image); raises `_Discarded` when the job may no longer complete."""
        try:
            self._record_result_tx(job, key, thumb_key, width, height, recipe, now, run_again=False)
        except ConstraintViolation:  # rolled back; ON CONFLICT would cost every insert more
            self._record_result_tx(job, key, thumb_key, width, height, recipe, now, run_again=True)

    def _record_result_tx(self, job: Job, key: str, thumb_key: str, width: int, height: int,
                          recipe: Recipe, now: datetime, run_again: bool) -> None:
        r = job.request
        result_id = new_id()
        with self.ctx.db.transaction() as cur:
            # Deleting a character deletes its jobs in the same transaction: a job still found
            # running or storing has its character. (Row counts, not RETURNING: that costs more.)
            if not complete(cur, job.id, result_id=result_id, now=now, overhead_ms=recipe.overhead_ms,
                            provider_ms=job.provider_ms, cost=recipe.cost, owner=self.lease_owner):
                if self.lease_owner is not None and taken_over(cur, job.id, self.lease_owner):
                    raise _LeaseLost
                raise _Discarded
            if run_again:
                # The job completed before and was run again: its row (same image key, whose file
                # was just rewritten) stays, with this run's recipe.
                result_id = (rerecord_cell(cur, job.id, recipe, width, height) if job.kind == "comparison"
                             else rerecord_image(cur, job.kind, job.id, recipe, width, height))
                if result_id is None:  # deleted since the insert failed
                    raise _Discarded
                set_result(cur, job.id, result_id)
            elif job.kind == "comparison":  # a grid cell: in the character's gallery only once kept
                insert_cell(cur, cell_id=result_id, comparison_id=job.batch_id, character_id=job.character_id,
                            owner=job.owner, key=key, thumb_key=thumb_key, recipe=recipe, job_id=job.id,
                            width=width, height=height, now=now)
            else:
                insert_image(cur, job.kind, image_id=result_id, character_id=job.character_id, scene_id=job.scene_id,
                             owner=job.owner, key=key, thumb_key=thumb_key,
                             prompt=r.prompt if job.kind == "portrait" else r.final_prompt, recipe=recipe,
                             job_id=job.id, width=width, height=height, now=now)
            if job.kind == "portrait":
                adopt_first_portrait(cur, job.character_id, result_id)
            elif job.kind == "scene" and not set_scene_image(cur, job.scene_id, result_id, now):
                raise _Discarded  # the scene was deleted: roll the job's completion back too


class _Discarded(Exception):
    """The finished image has no home any more; its files are deleted."""


class _LeaseLost(Exception):
    """This server's lease on the job expired and the job went to another server (shared queue)."""


def _timed(fn, *args):
    """(fn(*args), milliseconds it took)."""
    t = time.perf_counter()
    out = fn(*args)
    return out, (time.perf_counter() - t) * 1000


def _lap(timings: dict[str, float], name: str, since: float) -> float:
    now = time.perf_counter()
    timings[name] = (now - since) * 1000
    return now
