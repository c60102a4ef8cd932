"""The job runner: an asyncio loop in one background thread that claims and runs due jobs.

It never touches Streamlit. Per-provider concurrency limits come from the catalog; retryable
provider errors back off (honouring Retry-After); result bytes are spooled (see `core.engine.spool`)
before the job enters `storing`, so a storage outage or a crash never loses a paid-for image.

On PostgreSQL several servers share the queue: claims are leased to this server (`server_id`) and
renewed while it works; per-provider limits hold across all servers; a new job or a freed slot is
announced with NOTIFY, and the claim loop polls as well (see `JobStore.claim_shared`).
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from core import redaction
from core.budgets import image_price
from core.context import Context, new_id
from core.data import dumps, utcnow
from core.errors import ConstraintViolation, NotFound, ProviderError, StorageError
from core.images import sha256, thumbnail, to_png
from core.engine.jobs import JOBS_CHANNEL, JobStore
from core.models import Capabilities, Job
from core.retry import backoff_delay
from core.engine.spool import open_spool
from core.provider import GenerationRequest, GenerationResult, Provider, ReferenceImage
from core.storage import portrait_key, scene_key, thumbnail_key

log = logging.getLogger(__name__)

STORE_RETRY_CAP = 60.0


class Runner:
    """Owns the event loop thread; `wake()` after creating work, `cancel()` to stop a job."""

    def __init__(self, ctx: Context, jobs: JobStore, *, retry_base: float = 2.0, retry_cap: float = 120.0):
        self.ctx = ctx
        self.jobs = jobs
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._tasks: dict[str, asyncio.Task] = {}
        self._slots: dict[str, int] = {}  # provider calls in flight, per provider (storing holds none)
        self._request_ids: dict[str, str] = {}
        self._cancels_sent: OrderedDict[str, None] = OrderedDict()  # request ids, on the loop thread only
        self._background: set[asyncio.Task] = set()  # provider cancels in flight
        self._storing: set[str] = set()  # jobs whose image is being spooled and written right now
        # A claim costs a query, so a slot freed or a job ended only triggers one when it may start
        # something: the last claim left due jobs waiting for a slot, or the job itself went back
        # to waiting (a retry, a storage retry) and its due time must be learnt.
        self._backlog = False
        self._waiting_again: set[str] = set()
        self._created: dict[str, Job] = {}  # handed over by `wake`; forgotten at the next claim
        self._handover = threading.Lock()  # guards `_created` (filled by callers, taken by a claim)
        self._changed = threading.Condition()
        self._generation = 0  # bumped on every job state change the runner makes
        self._ready = threading.Event()
        self.recovered: dict[str, int] = {}  # what `start` found to resume
        self.released: dict[str, int] = {}  # what `stop` handed back to the shared queue
        self.spool = open_spool(ctx.db, ctx.settings.spool_dir)
        self.shared = ctx.db.shared
        self.server_id = f"{socket.gethostname()}:{os.getpid()}:{new_id()[:8]}"
        self._listener: threading.Thread | None = None

    # -- lifecycle (caller's thread) ---------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = False
        self._ready.clear()
        with self._handover:
            self._created.clear()
        if self.shared:  # other servers' jobs are theirs while their leases last
            self.recovered = self.jobs.recover_expired()
        else:
            self.recovered = self.jobs.recover(self.spool.ids())
        self._thread = threading.Thread(target=self._run_loop, name="studio-runner", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self.shared:
            self._listener = threading.Thread(target=self._listen, name="studio-listener", daemon=True)
            self._listener.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; in-flight jobs stay in the database and resume on the next start."""
        if self._thread is None or self.loop is None:
            return
        self._stopping = True
        self.loop.call_soon_threadsafe(self._shutdown)
        self._thread.join(timeout)
        self._thread = None
        if self._listener is not None:
            self._listener.join(timeout)
            self._listener = None
        if self.shared:  # in-flight jobs go back to the queue now, not when their leases expire
            try:
                self.released = self.jobs.release(self.server_id)
            except Exception:  # noqa: BLE001 - their leases expire anyway
                log.exception("handing jobs back on stop failed")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self, created: list[Job] = ()) -> None:
        """Look for due work now. `created`: jobs just inserted, handed over (before the wake is
        scheduled) so that starting them needs no read of their rows. The claim uses a copy only
        while its row was never started (see `JobStore.claim_due`), so a copy that arrives late
        is ignored."""
        if created and self.running:
            with self._handover:
                self._created.update((job.id, job) for job in created)
        if not self._soon(lambda: self._wake.set()):
            with self._handover:  # stopped: the rows keep the work, a copy is not kept for later
                self._created.clear()

    def cancel(self, jobs: Iterable[Job]) -> None:
        """Stop what the runner does for jobs whose rows were just canceled or deleted (`jobs` as
        they were before): a provider call is abandoned and the provider asked to cancel where a
        request id is known; a store in progress finishes and discards its image; a spooled image
        no task is storing is removed."""
        for job in jobs:
            if job.status in ("running", "storing") or job.provider_request_id:
                self._soon(self._cancel_in_loop, job)

    def _soon(self, fn, *args) -> bool:
        """Call `fn` on the loop thread; False when the runner is stopped (the rows keep the work
        for the next start)."""
        loop = self.loop
        if loop is None or not self.running:
            return False
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed meanwhile
            return False
        return True

    @property
    def in_flight(self) -> frozenset[str]:
        """Ids of the jobs the runner is working on now (a provider call or a store in progress)."""
        return frozenset(self._tasks.copy())

    @property
    def generation(self) -> int:
        """Counts the job state changes the runner has announced."""
        return self._generation

    def wait_for_change(self, timeout: float, seen: int | None = None) -> int:
        """Block until a job changed state after generation `seen` (default: from now on), or
        `timeout` seconds; returns the generation to pass next time, so no change is missed
        between a caller's read and its wait."""
        with self._changed:
            seen = self._generation if seen is None else seen
            self._changed.wait_for(lambda: self._generation != seen, timeout)
            return self._generation

    def _notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    # -- the loop ----------------------------------------------------------------------
    def _run_loop(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        # Blocking steps (files, thumbnails, DuckDB) run in threads; the default pool (cores + 4) makes
        # a burst of finishing jobs queue behind each other, so the runner has a pool of its own.
        self._executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="studio-runner")
        self.loop.set_default_executor(self._executor)
        self._wake = asyncio.Event()
        self._ready.set()
        try:
            self.loop.run_until_complete(self._main())
        finally:
            for provider in self.ctx.catalog.instances.values():
                try:
                    self.loop.run_until_complete(provider.aclose())
                except Exception:  # noqa: BLE001
                    pass
            self.loop.close()

    def _shutdown(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._wake.set()

    async def _main(self) -> None:
        renewing = asyncio.get_running_loop().create_task(self._renew_leases()) if self.shared else None
        while not self._stopping:
            self._wake.clear()
            next_at = None
            try:
                next_at = await self._claim()
            except Exception:  # noqa: BLE001 - a bad row must not kill the runner
                log.exception("claiming jobs failed")
            timeout = 5.0
            if next_at is not None:
                timeout = min(timeout, max(0.0, (next_at - utcnow()).total_seconds()))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            except TimeoutError:
                pass
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if renewing is not None:
            renewing.cancel()

    async def _claim(self) -> datetime | None:
        """Start due jobs up to each provider's free slots; returns when the next waiting job falls due.
        The database work runs in a thread, so the loop keeps serving in-flight provider calls while
        a claim waits for the write lock."""
        jobs, next_at, self._backlog = await asyncio.to_thread(self._claim_rows, dict(self._slots), set(self._tasks))
        for job in jobs:
            if job.status == "running":
                self._slots[job.provider_id] = self._slots.get(job.provider_id, 0) + 1
            task = asyncio.get_running_loop().create_task(self._execute(job), name=f"job-{job.id}")
            self._tasks[job.id] = task
            task.add_done_callback(lambda _t, jid=job.id: self._done(jid))
        return next_at

    def _claim_rows(self, slots: dict[str, int], exclude: set[str]) -> tuple[list[Job], datetime | None, bool]:
        """Due storing jobs, and queued jobs marked running (at most the free slots per provider).
        Only `_main` claims, one claim at a time, and slots only free up meanwhile: never too many."""
        catalog = self.ctx.catalog
        limits = catalog.concurrency_limits()
        one_shot = {pid for pid, p in catalog.instances.items() if not p.resumable}
        with self._handover:
            created, self._created = self._created, {}
        if self.shared:  # the rows tell what every server runs; the claim reads them anyway
            cap = self.ctx.settings.runner_slots
            capacity = max(0, cap - sum(slots.values())) if cap else None
            return self.jobs.claim_shared(self.server_id, self.ctx.settings.lease_seconds, limits, one_shot, capacity)
        free = {pid: limit - slots.get(pid, 0) for pid, limit in limits.items()}
        return self.jobs.claim_due(utcnow(), free, one_shot, exclude, created)

    # -- several servers (PostgreSQL) ----------------------------------------------------
    def _lease_released(self) -> dict[str, Any]:
        """Fields that give a job waiting to be stored back to any server (shared queue only)."""
        return {"lease_owner": None} if self.shared else {}

    async def _renew_leases(self) -> None:
        """Renew this server's leases on its jobs, three times per lease: a server that dies stops
        renewing, and another takes its jobs once their leases expire."""
        lease = self.ctx.settings.lease_seconds
        while not self._stopping:
            try:
                await asyncio.to_thread(self.jobs.renew, self.server_id, lease, list(self._tasks))
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("renewing job leases failed")
            await asyncio.sleep(lease / 3)

    def _listen(self) -> None:
        """Wake the claim loop whenever another server (or a facade) announces a job or a freed slot."""
        stop = lambda: self._stopping or not self.running  # noqa: E731
        try:
            for payload in self.ctx.db.listen(JOBS_CHANNEL, 0.5, stop):
                if payload != self.server_id:
                    self._soon(self._wake.set)
        except Exception:  # noqa: BLE001 - polling still finds the work
            log.exception("listening for new jobs failed; the runner polls instead")

    def _release_slot(self, provider_id: str) -> None:
        self._slots[provider_id] = max(0, self._slots.get(provider_id, 0) - 1)
        if self._backlog and self._wake is not None:
            self._wake.set()

    def _done(self, job_id: str) -> None:
        self._tasks.pop(job_id, None)
        self._request_ids.pop(job_id, None)
        self._notify()
        if self.shared and not self._stopping:  # a provider slot is free for every server
            self.loop.run_in_executor(None, self.jobs.announce, self.server_id)
        again = job_id in self._waiting_again
        self._waiting_again.discard(job_id)
        if (again or self._backlog) and self._wake is not None:
            self._wake.set()

    def _cancel_in_loop(self, job: Job) -> None:
        if job.id not in self._storing:  # a store in progress cannot be interrupted: it discards the image itself
            task = self._tasks.get(job.id)
            if task is not None:
                task.cancel()
            if job.status == "storing":  # nothing will read its spooled image again
                self.loop.run_in_executor(None, self.spool.remove, job.id)
        request_id = job.provider_request_id or self._request_ids.get(job.id)
        if request_id and job.status != "storing":
            self._provider_cancel(job.provider_id, request_id)
        self._notify()

    def _provider_cancel(self, provider_id: str, request_id: str) -> None:
        """Ask the provider to cancel, once per request (a user's cancel and the poll loop that finds
        its row canceled can both get here), in a task of its own: canceling the job's task must not
        abort the request that tells the provider."""
        if request_id in self._cancels_sent:
            return
        self._cancels_sent[request_id] = None
        if len(self._cancels_sent) > 4096:
            self._cancels_sent.popitem(last=False)
        task = self.loop.create_task(self._send_cancel(provider_id, request_id))
        self._background.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._background.discard)

    async def _send_cancel(self, provider_id: str, request_id: str) -> None:
        try:
            provider = self.ctx.catalog.provider(provider_id)
            if provider.resumable:
                await provider.cancel(request_id)
        except Exception as exc:  # noqa: BLE001 - cancel is best effort
            log.warning("provider cancel failed for %s: %s", provider_id, exc)

    # -- one job -------------------------------------------------------------------------
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
                if job.request.get("reference_key"):  # reads the reference from storage
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
            recipe_extra = {"inputs": result.inputs or job.request.get("inputs", {}),
                            "seed": result.seed if result.seed is not None else request.seed,
                            "provider_metadata": result.metadata,
                            "cost": result.cost if result.cost is not None else image_price(
                                request.capabilities, request.width, request.height)}
            request_data = {**job.request, **recipe_extra}
            stored_job = job.model_copy(update={"request": request_data, "provider_ms": provider_ms})
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
            self.jobs.set(job.id, status="failed", stage="failed", finished_at=utcnow(),
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
            job.request.update(inputs=submission.inputs, submitted_at=utcnow().isoformat())
            if not self.jobs.set(job.id, provider_request_id=request_id, stage="submitted", request=job.request):
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
            still = self.jobs.set(job.id, stage=stage, queue_position=progress.queue_position, percent=progress.percent,
                                  progress_message=message)
            await self._stop_unless(still, provider, request_id)
            self._notify()
            await asyncio.sleep(provider.poll_interval)
        while True:
            still = self.jobs.set(job.id, stage="downloading", percent=None, queue_position=None, progress_message=None)
            await self._stop_unless(still, provider, request_id)
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
        submitted = job.request.get("submitted_at")
        since = datetime.fromisoformat(submitted) if submitted else (job.started_at or utcnow())
        left = (since + timedelta(seconds=self.ctx.settings.job_deadline) - utcnow()).total_seconds()
        if left <= 0:
            raise ProviderError(f"{exc.message} (still failing {self.ctx.settings.job_deadline} s after the job was "
                                f"submitted, while {doing}; gave up)", retryable=False, status=exc.status, kind=exc.kind)
        if _rate_limited(exc):
            delay = self.backoff(1, exc.retry_after)
        else:
            errors += 1
            delay = self.backoff(errors, exc.retry_after)
        still = self.jobs.set(job.id, stage=f"retrying ({doing})", last_error=exc.message)
        await self._stop_unless(still, provider, request_id)
        self._notify()
        await asyncio.sleep(min(delay, left))
        return errors

    async def _stop_unless(self, still_running: bool, provider: Provider, request_id: str) -> None:
        """A job whose row stopped being `running` (canceled, or deleted with its character or
        scene) stops here even if no `cancel` reached this runner, and the provider is told."""
        if not still_running:
            self._provider_cancel(provider.id, request_id)
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
        if r.get("reference_key"):
            data = self.ctx.store.read(r["reference_key"])
            content_type = "image/webp" if r["reference_key"].endswith(".webp") else "image/png"
            refs.append(ReferenceImage(data=data, content_type=content_type, sha256=r.get("reference_hash") or "",
                                       url=self.ctx.store.signed_url(r["reference_key"])))
        return GenerationRequest(
            job_id=job.id, model_key=job.model_key, prompt=r["final_prompt"], width=r.get("width", 1024),
            height=r.get("height", 1024), seed=r.get("seed", 0), references=refs,
            capabilities=model.capabilities if model else Capabilities(),
            input_defaults=model.input_defaults if model else {},
            safety_checker=r.get("content_rating", "sfw") == "sfw", content_rating=r.get("content_rating", "sfw"))

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
            if self.jobs.set(job.id, status="queued", stage="waiting (rate limited)" if throttled else "retrying",
                             last_error=exc.message, next_attempt_at=utcnow() + timedelta(seconds=delay),
                             attempts=current.attempts - 1 if throttled else current.attempts):
                self._waiting_again.add(job.id)
        else:
            self.jobs.set(job.id, status="failed", stage="failed", last_error=exc.message, finished_at=utcnow())
        self._notify()

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with jitter; a provider's Retry-After wins when it asks for longer."""
        delay = backoff_delay(attempt, self.retry_base, self.retry_cap)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry_cap * 5))
        return delay

    # -- storing -------------------------------------------------------------------------
    async def _store_from_spool(self, job: Job) -> None:
        data = await asyncio.to_thread(self.spool.read, job.id)
        if data is None:
            await asyncio.to_thread(
                self.jobs.set, job.id, only_if=("storing",), status="failed", stage="failed", finished_at=utcnow(),
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
            attempt = (job.request.get("store_attempts") or 0) + 1
            delay = backoff_delay(attempt + 1, self.retry_base, STORE_RETRY_CAP)
            if not await asyncio.to_thread(
                    self.jobs.set, job.id, only_if=("running", "storing"), status="storing",
                    stage="storing (waiting for storage)", last_error=exc.message, percent=None,
                    next_attempt_at=utcnow() + timedelta(seconds=delay), provider_ms=job.provider_ms,
                    request={**job.request, "store_attempts": attempt}, **self._lease_released()):
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
        keyfn = portrait_key if job.kind == "portrait" else scene_key
        key = keyfn(job.owner, job.character_id, job.id)
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
        recipe = {
            "provider": job.provider_id, "model_id": job.model_id, "model_key": job.model_key,
            "model_name": r.get("model_name"), "mode": r.get("mode"), "prompt": r.get("prompt", ""),
            "final_prompt": r.get("final_prompt"), "presets": r.get("presets", {}), "inputs": r.get("inputs", {}),
            "seed": r.get("seed"), "width": width, "height": height, "reference_key": r.get("reference_key"),
            "reference_hash": r.get("reference_hash"), "provider_ms": job.provider_ms,
            "provider_request_id": job.provider_request_id, "job_id": job.id, "batch_id": job.batch_id,
            "content_rating": r.get("content_rating"), "provider_metadata": r.get("provider_metadata") or {},
            "cost": r.get("cost"), "sha256": sha256(png),
        }
        if r.get("enhancement"):  # the AI-enhanced prompt's template and text model (core/assist)
            recipe["enhancement"] = r["enhancement"]
        now = utcnow()
        overhead_ms = None
        if started_wall is not None:
            overhead_ms = max(0.0, (time.perf_counter() - started_wall - provider_wall) * 1000)
        recipe["overhead_ms"] = overhead_ms
        recipe["timings_ms"] = {k: round(v, 3) for k, v in timings.items()}
        try:
            self._record_result(job, key, thumb_key, width, height, recipe, now)
        except _Discarded:  # canceled, or its character or scene deleted, while it was generating
            for k in (key, thumb_key):
                try:
                    self.ctx.store.delete(k)
                except StorageError:
                    pass
            # A job still active here lost its scene (or its earlier result row): it ends, it is not
            # left running for every restart to run again.
            self.jobs.set(job.id, only_if=("running", "storing"), status="canceled", stage="canceled", finished_at=utcnow(),
                          last_error="The image was discarded: what it was made for was deleted meanwhile.")
        self.spool.remove(job.id)
        self._notify()  # from this thread: waiters need not wait for the hop back to the loop

    def _record_result(self, job: Job, key: str, thumb_key: str, width: int, height: int,
                       recipe: dict[str, Any], now: datetime) -> None:
        """The result row and the job's completion, in one transaction of as few statements as can
        be (this runs once per image); raises `_Discarded` when the job may no longer complete."""
        try:
            self._record_result_tx(job, key, thumb_key, width, height, recipe, now, run_again=False)
        except ConstraintViolation:  # rolled back; ON CONFLICT would cost every insert more
            self._record_result_tx(job, key, thumb_key, width, height, recipe, now, run_again=True)

    def _record_result_tx(self, job: Job, key: str, thumb_key: str, width: int, height: int,
                          recipe: dict[str, Any], now: datetime, run_again: bool) -> None:
        r = job.request
        result_id = new_id()
        portrait = job.kind == "portrait"
        table = "character_portraits" if portrait else "scene_images"
        with self.ctx.db.transaction() as cur:
            # Deleting a character deletes its jobs in the same transaction: a job still found
            # running or storing has its character. (Row counts, not RETURNING: that costs more.)
            if not cur.changed(
                    "UPDATE jobs SET status = 'completed', stage = 'completed', percent = 100, result_id = ?, "
                    "finished_at = ?, overhead_ms = ?, provider_ms = ?, cost = ?, last_error = NULL "
                    "WHERE id = ? AND status IN ('running', 'storing')",
                    [result_id, now, recipe["overhead_ms"], job.provider_ms, recipe["cost"], job.id]):
                raise _Discarded
            if run_again:
                # The job completed before and was run again: its row (same image key, whose file
                # was just rewritten) stays, with this run's recipe.
                row = cur.execute(f"UPDATE {table} SET recipe = ?, width = ?, height = ? WHERE job_id = ? RETURNING id",
                                  [dumps(recipe), width, height, job.id]).fetchone()
                if row is None:  # deleted since the insert failed
                    raise _Discarded
                result_id = row[0]
                cur.execute("UPDATE jobs SET result_id = ? WHERE id = ?", [result_id, job.id])
            elif portrait:
                cur.execute("INSERT INTO character_portraits VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                            [result_id, job.character_id, job.owner, key, thumb_key, r.get("prompt", ""),
                             dumps(recipe), job.id, width, height, now])
            else:
                cur.execute("INSERT INTO scene_images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [result_id, job.scene_id, job.character_id, job.owner, key, thumb_key,
                             r.get("final_prompt", ""), dumps(recipe), job.id, width, height, now])
            if portrait:
                cur.execute("UPDATE characters SET primary_portrait_id = ? WHERE id = ? AND primary_portrait_id IS NULL",
                            [result_id, job.character_id])
            elif not cur.changed("UPDATE character_scenes SET image_id = ?, updated_at = ? WHERE id = ?",
                                 [result_id, now, job.scene_id]):
                raise _Discarded  # the scene was deleted: roll the job's completion back too


def _rate_limited(exc: ProviderError) -> bool:
    return exc.status == 429 or exc.kind == "rate_limited"


class _Discarded(Exception):
    """The finished image has no home any more; its files are deleted."""


def _timed(fn, *args):
    """(fn(*args), milliseconds it took)."""
    t = time.perf_counter()
    out = fn(*args)
    return out, (time.perf_counter() - t) * 1000


def _lap(timings: dict[str, float], name: str, since: float) -> float:
    now = time.perf_counter()
    timings[name] = (now - since) * 1000
    return now
