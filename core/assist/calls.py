"""Running one text-model call for a user: the per-user rate, the deadline, streaming across threads,
and the `assist_calls` row that records it (this module owns that table).

The provider's coroutine runs on the job runner's event loop when it runs (else on a loop of its own in
a worker thread); its pieces reach the caller's thread through a queue, so a caller iterates plain text
chunks and may stop at any time (the call is then cancelled).
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from core import redaction
from core.assist.textmodel import TextDelta, TextProvider, TextRequest
from core.context import Actor, Context, new_id
from core.data import utcnow
from core.errors import AssistFailed, AssistRateLimited, ProviderError, StudioError
from core.models import CatalogModel

log = logging.getLogger(__name__)
_END = object()


@dataclass
class CallRecord:
    kind: str  # suggest | enhance_prompt
    subject: str  # the field, or the template id
    character_id: str | None
    model: CatalogModel
    cost: float | None = None  # USD, summed from what the service reported (set while the call runs)


class Calls:
    """Text-model calls for one actor."""

    def __init__(self, ctx: Context, actor: Actor, loop_of_runner):
        self.ctx = ctx
        self.actor = actor
        self._runner_loop = loop_of_runner  # () -> the runner's running loop, or None

    def check_rate(self, offline: set[str]) -> None:
        """Refuse a call over the user's rate (STUDIO_ASSIST_RATE calls per minute) before anything is sent.
        Calls to the `offline` providers (local, free) are neither limited nor counted."""
        limit = self.ctx.settings.assist_rate
        if not limit:
            return
        since = utcnow() - timedelta(minutes=1)
        skip = "".join(" AND provider_id <> ?" for _ in offline)
        row = self.ctx.db.fetchone("SELECT count(*) AS n, min(created_at) AS first FROM assist_calls "
                                   f"WHERE owner = ? AND created_at >= ?{skip}", [self.actor.id, since, *sorted(offline)])
        if row and row["n"] >= limit:
            wait = max(1, int(60 - (utcnow() - row["first"]).total_seconds()) + 1) if row["first"] else 60
            raise AssistRateLimited(f"You made {row['n']} AI assist calls in the last minute (the limit is {limit}); "
                                    f"try again in {wait} s.")

    def stream(self, provider: TextProvider, request: TextRequest, record: CallRecord) -> Iterator[str]:
        """The answer's text pieces as they come; the call is recorded when it ends (cost, or the error).
        Raises AssistFailed on a provider error or when the whole call takes longer than STUDIO_ASSIST_TIMEOUT."""
        timeout = self.ctx.settings.assist_timeout
        name = record.model.display_name
        started = utcnow()
        pieces: queue.Queue = queue.Queue()
        cancel = _start(provider, request, pieces, self._runner_loop())
        deadline = time.monotonic() + timeout
        cost: float | None = None
        error: str | None = None
        try:
            while True:
                try:
                    item = pieces.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise AssistFailed(f"The text model {name} did not answer within {timeout:g} s; nothing was "
                                       "changed. Try again, or pick another text model.") from None
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise _failure(name, item) from None
                if item.cost is not None:
                    cost = record.cost = (cost or 0.0) + item.cost
                if item.text:
                    yield redaction.redact(item.text)
        except AssistFailed as exc:
            error = exc.message
            raise
        except GeneratorExit:
            error = "stopped by the caller"
            raise
        finally:
            cancel()
            self._record(record, started, cost, error)

    def _record(self, record: CallRecord, started, cost: float | None, error: str | None) -> None:
        try:
            self.ctx.db.execute(
                "INSERT INTO assist_calls (id, owner, kind, subject, character_id, model_id, provider_id, model_key, "
                "status, cost, error, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [new_id(), self.actor.id, record.kind, record.subject, record.character_id, record.model.id,
                 record.model.provider_id, record.model.model_key, "failed" if error else "ok", cost,
                 redaction.clip(error, 500) if error else None, started, utcnow()])
        except StudioError as exc:  # the answer is the user's even when the record cannot be written
            log.warning("recording an assist call failed: %s", exc)


def _start(provider: TextProvider, request: TextRequest, pieces: queue.Queue, loop) -> Any:
    """Run the provider's stream, putting TextDeltas, then _END or the exception, into `pieces`.
    Returns a function that cancels the call."""

    async def pump() -> None:
        try:
            async for delta in provider.stream(request):
                if isinstance(delta, TextDelta):
                    pieces.put(delta)
            pieces.put(_END)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            pieces.put(exc)

    if loop is not None:
        future = asyncio.run_coroutine_threadsafe(pump(), loop)
        return future.cancel

    state: dict[str, Any] = {}

    async def own_loop() -> None:
        state["task"] = asyncio.current_task()
        state["loop"] = asyncio.get_running_loop()
        try:
            await pump()
        finally:  # this loop's client only: the runner's (if any) stays open
            client = provider._clients.pop(id(asyncio.get_running_loop()), None)
            if client is not None:
                await client.aclose()

    started = threading.Event()

    def run() -> None:
        try:
            asyncio.run(_signal(own_loop(), started))
        except asyncio.CancelledError:
            pass

    threading.Thread(target=run, name="assist-call", daemon=True).start()

    def cancel() -> None:
        started.wait(5)
        loop_, task = state.get("loop"), state.get("task")
        if loop_ is not None and task is not None and not loop_.is_closed():
            try:
                loop_.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed meanwhile: the call had ended
                pass

    return cancel


async def _signal(coro, started: threading.Event) -> None:
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(0)
    started.set()
    await task


def _failure(name: str, exc: BaseException) -> AssistFailed:
    if isinstance(exc, ProviderError):
        if exc.kind == "rate_limited":
            wait = f" in {exc.retry_after:g} s" if exc.retry_after is not None else " in a moment"
            return AssistFailed(f"The text model {name} is rate limited; try again{wait}. Nothing was changed. ({exc.message})")
        return AssistFailed(f"The text model {name} failed: {exc.message}. Nothing was changed.")
    if isinstance(exc, StudioError):
        return AssistFailed(f"The text model {name} failed: {exc.message}. Nothing was changed.")
    return AssistFailed(f"The text model {name} failed ({type(exc).__name__}: {exc}). Nothing was changed.")
