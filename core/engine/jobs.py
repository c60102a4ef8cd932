"""Durable job rows: create, claim, move through their states, list for the UI."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from core.budgets import Budgets
from core.context import Actor, Context, new_id, not_found
from core.data import Cursor, dumps, loads, marks, utcnow
from core.errors import NotFound, StudioError, WaitTimedOut
from core.models import ACTIVE_STATUSES, FINAL_STATUSES, Job, JobStatus, NewJob, Page
from core.validation import Id, Limit, Offset, Seconds, checked
from core.redaction import redact

JOBS_CHANNEL = "studio_jobs"  # NOTIFY channel: payload is the announcing server's id ("" from a facade)

# Jobs with their live place in their provider's queue (one pass over the queued rows).
_SELECT = """SELECT j.*, q.pos AS queue_position_live FROM jobs j LEFT JOIN (
    SELECT id, row_number() OVER (PARTITION BY provider_id ORDER BY seq) AS pos FROM jobs WHERE status = 'queued'
) q ON q.id = j.id"""


def row_to_job(row: dict[str, Any]) -> Job:
    data = dict(row)
    data["request"] = loads(data["request"], {})
    live = data.pop("queue_position_live", None)
    if live is not None:
        data["queue_position"] = live
    return Job.model_validate(data)


def cancel_active(cur: Cursor, column: str, value: str, reason: str) -> list[Job]:
    """Cancel the queued, running and storing jobs of one character, scene or batch (`column` is
    `character_id`, `scene_id` or `batch_id`: a comparison's cells) inside the caller's transaction, with `reason` as their last
    error. Returns them as they were, for `Runner.cancel` once the transaction has committed."""
    if column not in ("character_id", "scene_id", "batch_id"):
        raise ValueError(f"cannot cancel jobs by {column}")
    where = f"{column} = ? AND status IN ({marks(ACTIVE_STATUSES)})"
    jobs = [row_to_job(r) for r in cur.rows(f"SELECT * FROM jobs WHERE {where} ORDER BY seq", [value, *ACTIVE_STATUSES])]
    if jobs:
        cur.execute(f"UPDATE jobs SET status = 'canceled', stage = 'canceled', finished_at = ?, last_error = ?, "
                    f"next_attempt_at = NULL WHERE {where}", [utcnow(), reason, value, *ACTIVE_STATUSES])
    return jobs


def delete_ended(cur: Cursor, column: str, value: str) -> None:
    """Delete the jobs of a character, scene or batch (`column`: `character_id`, `scene_id` or `batch_id`)
    that have ended."""
    if column not in ("character_id", "scene_id", "batch_id"):
        raise ValueError(f"cannot delete jobs by {column}")
    cur.execute(f"DELETE FROM jobs WHERE {column} = ? AND status IN ({marks(FINAL_STATUSES)})", [value, *FINAL_STATUSES])


def delete_all_of_character(cur: Cursor, character_id: str) -> None:
    """Delete every job of a character (its active ones canceled first with `cancel_active`)."""
    cur.execute("DELETE FROM jobs WHERE character_id = ?", [character_id])


def complete(cur: Cursor, job_id: str, *, result_id: str, now: datetime, overhead_ms: float | None,
             provider_ms: float | None, cost: float | None, owner: str | None = None) -> bool:
    """Mark a running or storing job completed with its result (inside the result's transaction);
    False when it is no longer active (canceled, or deleted with its character) or, with `owner`
    (a server on the shared queue), no longer leased to that server."""
    held, params = _held_by(owner)
    return bool(cur.changed(
        "UPDATE jobs SET status = 'completed', stage = 'completed', percent = 100, result_id = ?, "
        "finished_at = ?, overhead_ms = ?, provider_ms = ?, cost = ?, last_error = NULL "
        f"WHERE id = ? AND status IN ('running', 'storing'){held}",
        [result_id, now, overhead_ms, provider_ms, cost, job_id, *params]))


def taken_over(cur: Cursor, job_id: str, owner: str) -> bool:
    """Whether a job is still active but no longer leased to `owner`: its lease expired and the
    queue took it back, or another server holds it now. That server finishes it; `owner` only stops."""
    return cur.execute(f"SELECT 1 FROM jobs WHERE id = ? AND status IN ({marks(ACTIVE_STATUSES)}) "
                       "AND (lease_owner IS NULL OR lease_owner <> ?)", [job_id, *ACTIVE_STATUSES, owner]).fetchone() is not None


def _held_by(owner: str | None) -> tuple[str, list[str]]:
    """The condition that keeps a server's write to the jobs it leased (none off the shared queue)."""
    return (" AND lease_owner = ?", [owner]) if owner is not None else ("", [])


def set_result(cur: Cursor, job_id: str, result_id: str) -> None:
    cur.execute("UPDATE jobs SET result_id = ? WHERE id = ?", [result_id, job_id])


def lease_to(cur: Cursor, job_ids: list[str], owner: str, expires_at: datetime) -> None:
    """Set the lease of jobs (`studio db copy` hands in-flight jobs over as expired leases)."""
    for job_id in job_ids:
        cur.execute("UPDATE jobs SET lease_owner = ?, lease_expires_at = ? WHERE id = ?", [owner, expires_at, job_id])


def reference_in_use(cur: Cursor, key: str) -> bool:
    """Whether a queued, running or storing job will read the reference image `key`."""
    return cur.execute(
        f"SELECT 1 FROM jobs WHERE {cur.dialect.json_text('request', 'reference_key')} = ? "
        f"AND status IN ({marks(ACTIVE_STATUSES)}) LIMIT 1", [key, *ACTIVE_STATUSES]).fetchone() is not None


def _requeue(cur: Cursor, where: str, params: list[Any] = ()) -> tuple[int, int]:
    """Running jobs matching `where` back to the queue: (resumed by request id, to be submitted again)."""
    resumed = cur.changed(
        "UPDATE jobs SET status = 'queued', stage = 'resuming', next_attempt_at = NULL, lease_owner = NULL "
        f"WHERE status = 'running' AND provider_request_id IS NOT NULL AND {where}", params)
    resubmitted = cur.changed(
        "UPDATE jobs SET status = 'queued', stage = 'queued', attempts = greatest(attempts - 1, 0), "
        f"next_attempt_at = NULL, lease_owner = NULL WHERE status = 'running' AND provider_request_id IS NULL AND {where}",
        params)
    return resumed, resubmitted


class JobStore:
    """The jobs table: every write to it is in this module (this class, and the functions above that
    work inside another module's transaction); so are the queue's reads. (Statistics and
    maintenance read it too.)"""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.db = ctx.db

    def create(self, rows: list[NewJob]) -> list[Job]:
        """Insert queued jobs in one statement; returns them in order, with their queue positions."""
        now = utcnow()
        values, params = [], []
        for r in rows:
            values.append("(?, nextval('job_seq'), ?, ?, ?, ?, ?, 'queued', 'queued', ?, ?, ?, ?, ?, ?)")
            params += [new_id(), r.kind, r.owner, r.character_id, r.scene_id, r.batch_id,
                       r.provider_id, r.model_id, r.model_key, dumps(r.request.stored()), r.max_attempts, now]
        created = sorted(self.db.returning(
            "INSERT INTO jobs (id, seq, kind, owner, character_id, scene_id, batch_id, status, stage, provider_id, "
            f"model_id, model_key, request, max_attempts, created_at) VALUES {', '.join(values)} RETURNING *", params),
            key=lambda r: r["seq"])
        for pid in {r["provider_id"] for r in created}:
            mine = [r for r in created if r["provider_id"] == pid]
            ahead = self._ahead(pid, mine[0]["seq"])
            for i, r in enumerate(mine):
                r["queue_position"] = ahead + i + 1
        self.announce()  # other servers sharing the database may have a free slot
        return [row_to_job(r) for r in created]

    def get(self, job_id: str) -> Job:
        row = self.db.fetchone("SELECT * FROM jobs WHERE id = ?", [job_id])
        if row is None:
            raise not_found("job", job_id)
        if row["status"] == "queued":
            row["queue_position"] = self._ahead(row["provider_id"], row["seq"]) + 1
        return row_to_job(row)

    def _ahead(self, provider_id: str, seq: int) -> int:
        """How many queued jobs of a provider come before `seq`."""
        return self.db.scalar("SELECT count(*) FROM jobs WHERE status = 'queued' AND provider_id = ? AND seq < ?",
                              [provider_id, seq])

    def list(self, *, owner: str | None = None, character_id: str | None = None, statuses: tuple[str, ...] | None = None,
             batch_id: str | None = None, limit: int = 100, offset: int = 0) -> Page[Job]:
        clause, params = self._where(owner, character_id, statuses, batch_id)
        total = self.db.scalar(f"SELECT count(*) FROM jobs j WHERE {clause}", params)
        return Page[Job](items=self._rows(clause, params, limit, offset), total=total, offset=offset, limit=limit)

    def active(self, *, owner: str | None = None, character_id: str | None = None) -> list[Job]:
        """Queued, running and storing jobs (oldest first): the cheap query the UI polls (no count)."""
        clause, params = self._where(owner, character_id, ACTIVE_STATUSES, None)
        return list(reversed(self._rows(clause, params, 500, 0)))

    @staticmethod
    def _where(owner: str | None, character_id: str | None, statuses: tuple[str, ...] | None,
               batch_id: str | None) -> tuple[str, list[Any]]:
        where, params = ["TRUE"], []
        for col, val in (("owner", owner), ("character_id", character_id), ("batch_id", batch_id)):
            if val is not None:
                where.append(f"j.{col} = ?")
                params.append(val)
        if statuses:
            where.append(f"j.status IN ({marks(statuses)})")
            params += list(statuses)
        return " AND ".join(where), params

    def _rows(self, clause: str, params: list[Any], limit: int, offset: int) -> list[Job]:
        rows = self.db.fetchall(f"{_SELECT} WHERE {clause} ORDER BY j.seq DESC LIMIT ? OFFSET ?", [*params, limit, offset])
        return [row_to_job(r) for r in rows]

    # -- runner side -------------------------------------------------------------------
    def claim_due(self, now: datetime, free: dict[str, int], one_shot: set[str], exclude: set[str],
                  created: dict[str, Job] | None = None) -> tuple[list[Job], datetime | None, bool]:
        """Start what is due, in order: storing jobs whose retry time has come, and per provider up
        to its `free` slots of queued jobs, marked running (a job canceled meanwhile is skipped).
        Also returns when the next waiting job falls due (None: none is waiting), and whether due
        jobs were left waiting for a free slot.

        Only a few narrow columns of the waiting rows are read, so a long queue is cheap; the rows
        of the jobs started are read too, unless all of them are among the `created` handed over.
        A handed-over copy is the row as `create` returned it, so it is used only while the row has
        never been started (`started_at IS NULL`): starting a job is the first change the runner
        makes to its row, and a never-started row can otherwise only be canceled (not claimed) and
        retried (which writes back what `create` wrote). So no job starts from a copy older than its row.
        The stage says what comes next: a `one_shot` provider generates; a resumable one submits,
        or resumes polling when the job already has a request id."""
        waiting = self.db.fetchall(
            "SELECT id, provider_id, status, next_attempt_at, provider_request_id IS NOT NULL AS has_request, "
            "started_at IS NULL AS never_started FROM jobs WHERE status IN ('queued', 'storing') ORDER BY seq")
        storing, stages, room, next_at, backlog, pristine = [], {}, dict(free), None, False, set()
        for w in waiting:
            job_id, provider_id, status, due_at = w["id"], w["provider_id"], w["status"], w["next_attempt_at"]
            has_request, never_started = w["has_request"], w["never_started"]
            if job_id in exclude:
                continue
            if due_at is not None and due_at > now:
                next_at = due_at if next_at is None else min(next_at, due_at)
            elif status == "storing":
                storing.append(job_id)
            elif room.get(provider_id, 0) > 0:
                room[provider_id] -= 1
                stages[job_id] = "generating" if provider_id in one_shot else "resuming" if has_request else "submitting"
                if never_started:
                    pristine.add(job_id)
            else:
                backlog = True
        handed = {i: job for i, job in (created or {}).items() if i in pristine}
        started = self._start(stages, now, handed) if stages else []
        ready = self.db.fetchall(f"SELECT * FROM jobs WHERE id IN ({marks(storing)}) ORDER BY seq", storing) if storing else []
        return [row_to_job(r) for r in ready] + started, next_at, backlog

    def _start(self, stages: dict[str, str], now: datetime, created: dict[str, Job]) -> list[Job]:
        """queued -> running (one UPDATE per stage, usually one), counting an attempt."""
        changed = 0
        for stage in set(stages.values()):
            ids = [i for i, s in stages.items() if s == stage]
            changed += self.db.execute(
                "UPDATE jobs SET status = 'running', stage = ?, attempts = attempts + 1, started_at = coalesce(started_at, ?), "
                f"next_attempt_at = NULL, percent = NULL WHERE id IN ({marks(ids)}) AND status = 'queued'",
                [stage, now, *ids])
        if changed == len(stages) and all(i in created for i in stages):
            return [created[i].model_copy(update={  # the runner changes `request`: its own copy
                "request": created[i].request.model_copy(deep=True), "status": "running", "stage": stage,
                "attempts": created[i].attempts + 1, "queue_position": None,
                "started_at": created[i].started_at or now, "next_attempt_at": None, "percent": None,
            }) for i, stage in stages.items()]
        # Some were not handed over, or were canceled meanwhile (those are not selected, so not run).
        ids = list(stages)
        return [row_to_job(r) for r in self.db.fetchall(
            f"SELECT * FROM jobs WHERE id IN ({marks(ids)}) AND status = 'running' ORDER BY seq", ids)]

    def set(self, job_id: str, *, only_if: tuple[str, ...] = ("running",), owner: str | None = None,
            **fields: Any) -> bool:
        """Update fields of a job still in one of `only_if` states (a cancel wins a race) and, with
        `owner` (a server on the shared queue), still leased to that server: a server that lost its
        lease never overwrites the new holder's progress."""
        if "request" in fields:
            fields["request"] = dumps(fields["request"].stored())
        if fields.get("last_error"):  # any error text, a crash's included, is stored without secrets
            fields["last_error"] = redact(fields["last_error"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        held, params = _held_by(owner)
        n = self.db.execute(
            f"UPDATE jobs SET {sets} WHERE id = ? AND status IN ({marks(only_if)}){held}",
            [*fields.values(), job_id, *only_if, *params])
        return bool(n)

    def taken_over(self, job_id: str, owner: str) -> bool:
        """See `taken_over`."""
        with self.db.transaction() as cur:
            return taken_over(cur, job_id, owner)

    def announce(self, server_id: str = "") -> None:
        """Tell the other servers on a shared database that a job was created or a slot freed."""
        self.db.notify(JOBS_CHANNEL, server_id)

    def status(self, job_id: str) -> str | None:
        return self.db.scalar("SELECT status FROM jobs WHERE id = ?", [job_id])

    def recover(self, spooled: set[str] = frozenset()) -> dict[str, int]:
        """After a crash (one server): running jobs whose image was spooled finish storing; other running
        jobs go back to the queue (keeping their provider request id, so they are polled, not resubmitted)."""
        with self.db.transaction() as cur:
            for job_id in spooled:
                cur.execute("UPDATE jobs SET status = 'storing', stage = 'storing' WHERE id = ? AND status = 'running'", [job_id])
            resumed, resubmitted = _requeue(cur, "TRUE")
            storing = cur.changed("UPDATE jobs SET next_attempt_at = NULL WHERE status = 'storing'")
        return {"resumed": resumed, "resubmitted": resubmitted, "storing": storing}

    # -- the shared queue (PostgreSQL; several servers) --------------------------------
    def recover_expired(self) -> dict[str, int]:
        """Jobs of servers that stopped renewing their leases (they died): a running job whose image is
        in the shared spool finishes storing, other running jobs go back to the queue as in `recover`,
        and storing jobs become free for any server to claim."""
        return self._take_back(f"lease_expires_at < {self.db.dialect.now_utc}", [])

    def release(self, server_id: str) -> dict[str, int]:
        """A server stopping hands its jobs back at once (as `recover_expired` would after the lease)."""
        return self._take_back("lease_owner = ?", [server_id])

    def _take_back(self, where: str, params: list[Any]) -> dict[str, int]:
        with self.db.transaction() as cur:
            storing = cur.changed(
                "UPDATE jobs SET status = 'storing', stage = 'storing', next_attempt_at = NULL, lease_owner = NULL "
                f"WHERE status = 'running' AND {where} AND id IN (SELECT job_id FROM job_spool)", params)
            resumed, resubmitted = _requeue(cur, where, params)
            storing += cur.changed(f"UPDATE jobs SET lease_owner = NULL WHERE status = 'storing' AND {where}", params)
        return {"resumed": resumed, "resubmitted": resubmitted, "storing": storing}

    def claim_shared(self, server_id: str, lease: float, limits: dict[str, int], one_shot: set[str],
                     capacity: int | None, calling: dict[str, int]) -> tuple[list[Job], datetime | None, bool]:
        """`claim_due` for servers sharing one PostgreSQL database. One read finds, per provider, the
        due queued jobs, the due storing jobs nobody holds, when the next waiting job falls due, and
        whether a lease expired (then `recover_expired` runs first, and the read again). Per provider
        with due jobs, under a transaction-scoped advisory lock that serialises that provider's claims
        across servers, the provider calls in flight are counted and at most the rest of its limit (as
        stored now; `limits` names the providers this server runs) and of this server's `capacity` is
        claimed, `FOR UPDATE SKIP LOCKED`, leased to `server_id` for `lease` seconds. Due storing
        jobs nobody holds are leased too.

        Calls in flight: this server's own are `calling` (per provider, as its runner counts them:
        a slot frees the moment the provider answers, before the row changes); another server's are
        its running rows whose image is not spooled yet (an image in `job_spool` has left the provider)."""
        now = utcnow()
        pending = self._pending(now, server_id)
        if any(p["expired"] for p in pending):
            self.recover_expired()
            pending = self._pending(now, server_id)
        until = f"{self.db.dialect.now_utc} + ? * INTERVAL '1 second'"
        due = "(next_attempt_at IS NULL OR next_attempt_at <= ?)"
        started: list[dict[str, Any]] = []
        backlog = False
        for p in pending:
            provider_id, waiting = p["provider_id"], p["queued"]
            if not waiting:
                continue
            room = capacity - len(started) if capacity is not None else waiting
            if room <= 0:
                backlog = True
                break
            free = (p["provider_limit"] or 0) - p["others"] - calling.get(provider_id, 0)
            if provider_id not in limits or free <= 0:
                backlog = True  # not ours, or full as the read found it: no need to queue for the lock
                continue
            stage = "CASE WHEN provider_request_id IS NOT NULL THEN 'resuming' ELSE 'submitting' END"
            if provider_id in one_shot:
                stage = "'generating'"
            with self.db.transaction() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(?))", [f"studio:claim:{provider_id}"])
                # The limit as the shared table has it now (another server may have just changed it),
                # read after the lock: this statement's snapshot holds every claim committed before.
                limit, others = cur.execute(
                    "SELECT concurrency_limit, (SELECT count(*) FROM jobs j WHERE provider_id = ? AND status = 'running' "
                    "AND lease_owner IS DISTINCT FROM ? AND NOT EXISTS (SELECT 1 FROM job_spool s WHERE s.job_id = j.id)) "
                    "FROM api_providers WHERE id = ?", [provider_id, server_id, provider_id]).fetchone() or (0, 0)
                n = min(room, limit - others - calling.get(provider_id, 0))
                if n > 0:
                    # The picked rows in a materialised CTE: a subquery under `IN` may be run again by
                    # the planner, and its LIMIT would then not bound the rows updated.
                    started += cur.rows(
                        "WITH picked AS MATERIALIZED (SELECT id FROM jobs WHERE provider_id = ? AND status = 'queued' "
                        f"AND {due} ORDER BY seq LIMIT ? FOR UPDATE SKIP LOCKED) "
                        f"UPDATE jobs SET status = 'running', stage = {stage}, attempts = attempts + 1, "
                        "started_at = coalesce(started_at, ?), next_attempt_at = NULL, percent = NULL, "
                        f"lease_owner = ?, lease_expires_at = {until} FROM picked WHERE jobs.id = picked.id "
                        "RETURNING jobs.*", [provider_id, now, n, now, server_id, lease])
                backlog = backlog or waiting > max(n, 0)
        storing = []
        if any(p["storing"] for p in pending):
            storing = self.db.returning(
                "WITH picked AS MATERIALIZED (SELECT id FROM jobs WHERE status = 'storing' AND lease_owner IS NULL "
                f"AND {due} FOR UPDATE SKIP LOCKED) UPDATE jobs SET lease_owner = ?, lease_expires_at = {until} "
                "FROM picked WHERE jobs.id = picked.id RETURNING jobs.*", [now, server_id, lease])
        next_at = min((p["next_at"] for p in pending if p["next_at"] is not None), default=None)
        jobs = sorted(storing, key=lambda r: r["seq"]) + sorted(started, key=lambda r: r["seq"])
        return [row_to_job(r) for r in jobs], next_at, backlog

    def _pending(self, now: datetime, server_id: str) -> list[dict[str, Any]]:
        """Per provider with work (one pass over the unfinished rows): due queued jobs, due storing
        jobs nobody holds, the next time a waiting job falls due, leases expired, and other servers'
        provider calls in flight next to the provider's limit (the claim counts again under its lock)."""
        due = "(next_attempt_at IS NULL OR next_attempt_at <= ?)"
        return self.db.fetchall(
            f"SELECT provider_id, count(*) FILTER (WHERE status = 'queued' AND {due}) AS queued, "
            f"count(*) FILTER (WHERE status = 'storing' AND lease_owner IS NULL AND {due}) AS storing, "
            "min(next_attempt_at) FILTER (WHERE status IN ('queued', 'storing') AND next_attempt_at > ?) AS next_at, "
            "count(*) FILTER (WHERE status IN ('running', 'storing') AND lease_owner IS NOT NULL "
            f"AND lease_expires_at < {self.db.dialect.now_utc}) AS expired, "
            "count(*) FILTER (WHERE status = 'running' AND lease_owner IS DISTINCT FROM ? AND s.job_id IS NULL) AS others, "
            "(SELECT concurrency_limit FROM api_providers a WHERE a.id = j.provider_id) AS provider_limit "
            "FROM jobs j LEFT JOIN job_spool s ON s.job_id = j.id "
            "WHERE status IN ('queued', 'running', 'storing') GROUP BY provider_id ORDER BY provider_id",
            [now, now, now, server_id])

    def renew(self, server_id: str, lease: float, job_ids: list[str]) -> int:
        """Extend this server's leases on the jobs it is working on."""
        if not job_ids:
            return 0
        return self.db.execute(
            f"UPDATE jobs SET lease_expires_at = {self.db.dialect.now_utc} + ? * INTERVAL '1 second' "
            f"WHERE lease_owner = ? AND status IN ('running', 'storing') AND id IN ({marks(job_ids)})",
            [lease, server_id, *job_ids])


class Jobs:
    """The jobs API a user sees: list, show, wait, cancel, retry."""

    def __init__(self, ctx: Context, actor: Actor, store: JobStore, runner):
        self.ctx = ctx
        self.actor = actor
        self.store = store
        self.runner = runner

    @checked
    def get(self, job_id: Id) -> Job:
        job = self.store.get(job_id)
        if job.owner != self.actor.id and not self.actor.is_admin:
            raise not_found("job", job_id)
        return job

    @checked
    def list(self, *, character_id: Id | None = None, status: JobStatus | tuple[JobStatus, ...] | None = None,
             limit: Limit = 100, offset: Offset = 0, all_users: bool = False) -> Page[Job]:
        statuses = (status,) if isinstance(status, str) else status
        owner = None if (all_users and self.actor.is_admin) else self.actor.id
        return self.store.list(owner=owner, character_id=character_id, statuses=statuses, limit=limit, offset=offset)

    @checked
    def active(self, *, character_id: Id | None = None) -> list[Job]:
        return self.store.active(owner=self.actor.id, character_id=character_id)

    @checked
    def cancel(self, job_id: Id) -> Job:
        """Cancel a queued or running job (the provider's cancel is called where it has one)."""
        job = self.get(job_id)
        if job.status == "storing":
            raise StudioError("This job's image is already generated and being stored; it cannot be canceled.")
        if job.status not in ("queued", "running"):
            raise StudioError(f"Only queued or running jobs can be canceled; this one is {job.status}.")
        if self.store.set(job_id, only_if=("queued", "running"), status="canceled", stage="canceled", finished_at=utcnow()):
            self.runner.cancel([job])
        return self.get(job_id)

    def retryable(self, jobs: list[Job]) -> set[Id]:
        """The ids of those `jobs` that `retry` takes: the actor's own (an admin's: any), failed or canceled,
        and their scene (if any) still exists."""
        jobs = [j for j in jobs if j.owner == self.actor.id or self.actor.is_admin]
        scene_ids = sorted({j.scene_id for j in jobs if j.scene_id})
        scenes = {r["id"] for r in self.ctx.db.fetchall(
            f"SELECT id FROM character_scenes WHERE id IN ({marks(scene_ids)})", scene_ids)} if scene_ids else set()
        return {j.id for j in jobs if j.status in ("failed", "canceled") and (j.scene_id is None or j.scene_id in scenes)}

    @checked
    def retry(self, job_id: Id) -> Job:
        """Queue a failed or canceled job again, as a fresh generation."""
        job = self.get(job_id)
        if job.status not in ("failed", "canceled"):
            raise StudioError(f"Only failed or canceled jobs can be retried; this one is {job.status}.")
        if not self.retryable([job]):
            raise NotFound(f"Job {job.id} cannot be retried: its scene was deleted (generate a new scene instead).")
        estimate = job.request.estimated_cost or 0.0
        with Budgets(self.ctx, Actor(job.owner)).admit(estimate, "the image again"):  # the owner's month
            self.store.set(job_id, only_if=("failed", "canceled"), status="queued", stage="queued", attempts=0,
                           provider_request_id=None, last_error=None, next_attempt_at=None, finished_at=None,
                           percent=None)
        self.runner.wake()
        return self.get(job_id)

    @checked
    def wait(self, job_ids: list[Id] | Id, timeout: Seconds | None = None, poll: Seconds = 1.0) -> list[Job]:
        """Block until the jobs are completed, failed or canceled (for notebooks and scripts)."""
        ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
        deadline = None if timeout is None else utcnow() + timedelta(seconds=timeout)
        seen = self.runner.generation  # taken before reading, so no change is missed
        while True:
            jobs = [self.get(i) for i in ids]
            if all(not j.is_active for j in jobs):
                return jobs
            if deadline is not None and utcnow() > deadline:
                raise WaitTimedOut(f"{sum(j.is_active for j in jobs)} of {len(ids)} jobs still running after {timeout} s")
            seen = self.runner.wait_for_change(poll, seen)
