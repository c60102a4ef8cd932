"""The execution of one job, a mixin of `Runner`: build the request, then generate (one-shot) or
submit, poll and fetch (resumable); retryable errors back off (honouring Retry-After), and a paid-for
job is never submitted twice. The result goes on to recording (`core.engine.recording`).
See docs/architecture.md, "The job lifecycle"."""
from __future__ import annotations

import asyncio
import logging
import time
import traceback
from datetime import timedelta

from core import redaction
from core.budgets import image_price
from core.errors import NotFound, ProviderError, StorageError
from core.images import thumbnail
from core.models import Job
from core.provider import GenerationRequest, GenerationResult, Provider, ReferenceImage
from core.retry import backoff_delay
from core.data import utcnow
from core.engine.recording import Recording, _timed

log = logging.getLogger("core.engine.runner")


class Execution(Recording):
    """Runs one claimed job from its request to its result (the runner's state is on `Runner`)."""
    async def _execute(self, job: Job) -> None:
        started = time.perf_counter()
        provider_wall = 0.0
        timings: dict[str, float] = {}
        try:
            if job.status == "storing":
                await self._store_from_spool(job)
                return
            try:
                provider = self.ctx.catalog.provider(job.provider_id)
                if job.request.reference_key:  # reads the reference from storage
                    request = await asyncio.to_thread(self._build_request, job)
                else:
                    request = self._build_request(job)
                t0 = time.perf_counter()
                timings["prepare"] = (t0 - started) * 1000
                result = await self._call_provider(provider, job, request)
                provider_wall = time.perf_counter() - t0
                timings["provider_call"] = provider_wall * 1000
            except ProviderError as exc:
                if exc.kind == "model_retired":  # every job would fail alike: marked before the slot frees
                    await asyncio.to_thread(self.ctx.catalog.retire, job.model_id, exc.message)
                raise
            finally:
                self._release_slot(job.provider_id)  # storing does not hold the provider's slot
            if not result.images:
                raise ProviderError(f"{provider.display_name} returned no image", retryable=False)
            image = result.images[0]
            # The thumbnail is made in a thread of its own while the bytes are spooled and stored:
            # decoding and encoding, like the file writes, run outside the GIL.
            thumb = self._executor.submit(_timed, thumbnail, image.pixels if image.pixels is not None else image.data)
            provider_ms = result.provider_ms if result.provider_ms is not None else provider_wall * 1000
            answered = job.request.model_copy(update={
                "inputs": result.inputs or job.request.inputs,
                "seed": result.seed if result.seed is not None else request.seed,
                "provider_metadata": result.metadata,
                "cost": result.cost if result.cost is not None else image_price(
                    request.capabilities, request.width, request.height)})
            stored_job = job.model_copy(update={"request": answered, "provider_ms": provider_ms})
            await self._store(stored_job, image.data, thumb, spool=True, started_wall=started, provider_wall=provider_wall,
                              timings=timings)
        except asyncio.CancelledError:
            if not self._stopping:
                log.info("job %s canceled", job.id)
            raise
        except ProviderError as exc:
            await asyncio.to_thread(self._provider_failed, job, exc)
        except StorageError as exc:  # the reference image could not be read: nothing was paid yet
            await asyncio.to_thread(self._provider_failed, job, ProviderError(
                f"Reading the reference image failed: {exc.message}", retryable=True, kind="storage"))
        except Exception as exc:  # noqa: BLE001 - a bug fails the job, not the runner
            log.error("job %s crashed: %s", job.id, traceback.format_exc())
            await self._set(job.id, status="failed", stage="failed", finished_at=utcnow(),
                            last_error=f"Internal error: {type(exc).__name__}: {exc}")

    async def _call_provider(self, provider: Provider, job: Job, request: GenerationRequest) -> GenerationResult:
        """Generate (one-shot) or submit, poll and fetch (resumable). Once a submission succeeded the
        job is paid for: transient poll and fetch errors are retried here, with backoff, until the
        job's deadline (`_retry_paid`), never by submitting again."""
        if not provider.resumable:
            return await provider.generate(request)
        request_id = job.provider_request_id
        if not request_id:
            submission = await self._submit(provider, job.id, request)
            request_id = submission.request_id
            # Stored before polling starts: a restart resumes instead of paying twice.
            job.request = job.request.model_copy(update={"inputs": submission.inputs, "submitted_at": utcnow()})
            if not await self._set(job.id, provider_request_id=request_id, stage="submitted", request=job.request):
                self._provider_cancel(provider.id, request_id)
                raise asyncio.CancelledError
            job.provider_request_id = request_id
        errors = 0
        while True:
            try:
                progress = await provider.poll(request_id, request)
            except ProviderError as exc:
                errors = await self._retry_paid(provider, job, request_id, exc, errors, "polling")
                continue
            if progress.state == "completed":
                break
            if progress.state == "failed":
                raise ProviderError(provider.scrub(progress.error or f"{provider.display_name} reported a failure"), retryable=False)
            if progress.state == "canceled":
                raise ProviderError(f"{provider.display_name} canceled the job", retryable=False)
            stage = "in provider queue" if progress.state == "queued" else "generating"
            message = redaction.clip(provider.scrub(progress.message), 500) if progress.message else None
            still = await self._set(job.id, stage=stage, queue_position=progress.queue_position,
                                    percent=progress.percent, progress_message=message)
            await self._stop_unless(still, provider, request_id, job.id)
            self._notify()
            await asyncio.sleep(provider.poll_interval)
        while True:
            still = await self._set(job.id, stage="downloading", percent=None, queue_position=None, progress_message=None)
            await self._stop_unless(still, provider, request_id, job.id)
            try:
                return await provider.result(request_id, request)
            except ProviderError as exc:
                errors = await self._retry_paid(provider, job, request_id, exc, errors, "fetching the result")

    async def _retry_paid(self, provider: Provider, job: Job, request_id: str, exc: ProviderError, errors: int,
                          doing: str) -> int:
        """After a poll or fetch error of a submitted job: re-raise a permanent error, or one past the
        job's deadline (STUDIO_JOB_DEADLINE from its submission); else wait (backoff; a 429 waits as
        asked and does not count as an error) and return the error count so far."""
        if not exc.retryable:
            raise exc
        since = job.request.submitted_at or job.started_at or utcnow()
        left = (since + timedelta(seconds=self.ctx.settings.job_deadline) - utcnow()).total_seconds()
        if left <= 0:
            raise ProviderError(f"{exc.message} (still failing {self.ctx.settings.job_deadline} s after the job was "
                                f"submitted, while {doing}; gave up)", retryable=False, status=exc.status, kind=exc.kind)
        if _rate_limited(exc):
            delay = self.backoff(1, exc.retry_after)
        else:
            errors += 1
            delay = self.backoff(errors, exc.retry_after)
        still = await self._set(job.id, stage=f"retrying ({doing})", last_error=exc.message)
        await self._stop_unless(still, provider, request_id, job.id)
        self._notify()
        await asyncio.sleep(min(delay, left))
        return errors

    async def _set(self, job_id: str, **fields) -> bool:
        """`JobStore.set` in a thread, on the shared queue only while this server holds the job's lease."""
        return await asyncio.to_thread(self.jobs.set, job_id, owner=self.lease_owner, **fields)

    async def _stop_unless(self, still_running: bool, provider: Provider, request_id: str, job_id: str) -> None:
        """A job whose row stopped being `running` (canceled, or deleted with its character or
        scene) stops here even if no `cancel` reached this runner, and the provider is told. A job
        this server lost its lease on (it paused past the lease) stops too, but the provider is not
        told: the server that took the job over polls the same request."""
        if not still_running:
            if self.lease_owner is None or not await asyncio.to_thread(self.jobs.taken_over, job_id, self.lease_owner):
                self._provider_cancel(provider.id, request_id)
            else:
                log.warning("job %s was taken over by another server; this one stops working on it", job_id)
            raise asyncio.CancelledError

    async def _submit(self, provider: Provider, job_id: str, request: GenerationRequest):
        """Submit, shielded: if the job is canceled mid-call, the provider is told once the id is known."""
        inner = asyncio.ensure_future(provider.submit(request))
        try:
            submission = await asyncio.shield(inner)
        except asyncio.CancelledError:
            def _cancel_late(fut: asyncio.Future) -> None:
                if not fut.cancelled() and fut.exception() is None:
                    self._provider_cancel(provider.id, fut.result().request_id)
            inner.add_done_callback(_cancel_late)
            raise
        self._request_ids[job_id] = submission.request_id
        return submission

    def _build_request(self, job: Job) -> GenerationRequest:
        r = job.request
        model = self.ctx.catalog.get_model(job.model_id)
        if model.retired and not job.provider_request_id:  # a job already submitted is still fetched
            raise ProviderError(f"{model.display_name} was retired: {model.retired_reason}",
                                retryable=False, kind="model_retired")
        refs = []
        if r.reference_key:
            data = self.ctx.store.read(r.reference_key)
            content_type = "image/webp" if r.reference_key.endswith(".webp") else "image/png"
            refs.append(ReferenceImage(data=data, content_type=content_type, sha256=r.reference_hash or "",
                                       url=self.ctx.store.signed_url(r.reference_key)))
        return GenerationRequest(
            job_id=job.id, model_key=job.model_key, prompt=r.final_prompt, width=r.width, height=r.height,
            seed=r.seed, references=refs, capabilities=model.capabilities, input_defaults=model.input_defaults,
            safety_checker=r.content_rating == "sfw", content_rating=r.content_rating)

    def _provider_failed(self, job: Job, exc: ProviderError) -> None:
        try:
            current = self.jobs.get(job.id)
        except NotFound:  # deleted with its character meanwhile
            return
        if current.status != "running":
            return
        # A 429 waits as the provider asks without using up an attempt, until the job's deadline.
        throttled = (exc.retryable and _rate_limited(exc)
                     and utcnow() < current.created_at + timedelta(seconds=self.ctx.settings.job_deadline))
        if throttled or (exc.retryable and current.attempts < current.max_attempts):
            delay = self.backoff(1 if throttled else current.attempts, exc.retry_after)
            if self.jobs.set(job.id, owner=self.lease_owner, status="queued", stage="waiting (rate limited)" if throttled else "retrying",
                             last_error=exc.message, next_attempt_at=utcnow() + timedelta(seconds=delay),
                             attempts=current.attempts - 1 if throttled else current.attempts):
                self._waiting_again.add(job.id)
        else:
            self.jobs.set(job.id, owner=self.lease_owner, status="failed", stage="failed", last_error=exc.message,
                          finished_at=utcnow())
        self._notify()

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with jitter; a provider's Retry-After wins when it asks for longer."""
        delay = backoff_delay(attempt, self.retry_base, self.retry_cap)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry_cap * 5))
        return delay


def _rate_limited(exc: ProviderError) -> bool:
    return exc.status == 429 or exc.kind == "rate_limited"

