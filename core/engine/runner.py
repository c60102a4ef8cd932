"""The job runner: an asyncio loop in one background thread that claims and runs due jobs.

It never touches Streamlit. Per-provider concurrency limits come from the catalog; retryable
provider errors back off (honouring Retry-After); result bytes are spooled (see `core.engine.spool`)
before the job enters `storing`, so a storage outage or a crash never loses a paid-for image.

On PostgreSQL several servers share the queue: claims are leased to this server (`server_id`) and
renewed while it works; per-provider limits hold across all servers; a new job or a freed slot is
announced with NOTIFY, and the claim loop polls as well (see `JobStore.claim_shared`).

The runner is split in three: this module holds the claim loop (start, stop, claims, leases,
wake-ups, cancels); `core.engine.execution` the execution of one job (submit, poll, fetch) and
`core.engine.recording` the recording of its result. Every database call made from a coroutine
runs in a thread, never on the event loop.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from core.context import Context, new_id
from core.data import utcnow
from core.engine.execution import Execution
from core.engine.jobs import JOBS_CHANNEL, JobStore
from core.engine.spool import open_spool
from core.models import Job

log = logging.getLogger(__name__)


class Runner(Execution):
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
        # On the shared queue every write to a leased job carries this server's id (JobStore.set `owner`).
        self.lease_owner: str | None = self.server_id if self.shared else None
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
            # A canceled task's database call keeps running in its thread: wait for those calls (the
            # database closes after `stop` returns); calls not yet started are dropped (their jobs
            # resume from their rows on the next start).
            self._executor.shutdown(wait=True, cancel_futures=True)
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
        if self.shared:  # other servers' calls in flight from the rows, this one's from its slots
            cap = self.ctx.settings.runner_slots
            capacity = max(0, cap - sum(slots.values())) if cap else None
            return self.jobs.claim_shared(self.server_id, self.ctx.settings.lease_seconds, limits, one_shot, capacity,
                                          slots)
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
