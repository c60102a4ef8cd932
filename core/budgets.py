"""Costs and monthly budgets: a model's catalog price, what a user spent this month, and the check
that refuses a generation the rest of the month's budget does not cover (owner of `user_budgets`)."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime

from typing import Annotated

from pydantic import BaseModel, Field, Strict

from core.context import Actor, Context
from core.data import marks, utcnow
from core.errors import BudgetExceeded, Forbidden, NotFound
from core.models import ACTIVE_STATUSES, Capabilities
from core.validation import Id, checked

# DuckDB (one process): a budget's check and the insert of the jobs it admits run one at a time.
# PostgreSQL: a transaction-scoped advisory lock per user does that across threads and servers.
_ADMIT = threading.Lock()
_EPSILON = 1e-9  # float sums of prices
Usd = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]  # an amount in US dollars


def image_price(capabilities: Capabilities, width: int, height: int) -> float | None:
    """The catalog price of one image: the price per image where set, else the price per megapixel
    of the requested size; None where the model has no price (it counts as free)."""
    if capabilities.price_per_image is not None:
        return capabilities.price_per_image
    if capabilities.price_per_megapixel is not None:
        return capabilities.price_per_megapixel * width * height / 1_000_000
    return None


def usd(amount: float) -> str:
    """$0.30, $12.50, and small prices in full: $0.0025."""
    text = f"{amount:.2f}" if abs(amount) >= 0.1 or amount == 0 else f"{amount:.4f}".rstrip("0")
    return f"${text}" if len(text.split(".")[1]) >= 2 else f"${amount:.2f}"


def month_start(now: datetime) -> datetime:
    """The first moment of `now`'s calendar month (UTC, naive like every stored timestamp)."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class BudgetStatus(BaseModel):
    """One user's month: the budget that applies, what completed jobs cost, what queued and running
    jobs are estimated to cost, and what is left (None: unlimited)."""

    user_id: str
    monthly_budget: float | None
    overridden: bool  # set for this user (Users page); else STUDIO_DEFAULT_BUDGET applies
    spent: float
    reserved: float
    remaining: float | None


def _status(user_id: str, budget: float | None, overridden: bool, spent: float, reserved: float) -> BudgetStatus:
    return BudgetStatus(user_id=user_id, monthly_budget=budget, overridden=overridden, spent=spent, reserved=reserved,
                        remaining=None if budget is None else budget - spent - reserved)


class UserAccount(BaseModel):
    """A user as the Users page lists them."""

    id: str
    display_name: str
    email: str | None
    is_admin: bool
    budget: BudgetStatus


class Budgets:
    """Monthly budgets: one's own (`mine`); everyone's, and setting them, for admins."""

    def __init__(self, ctx: Context, actor: Actor):
        self.ctx = ctx
        self.actor = actor

    def mine(self) -> BudgetStatus:
        return self._status(self.actor.id)

    @checked
    def get(self, user_id: Id) -> BudgetStatus:
        """A user's budget: one's own, or anyone's for an admin."""
        if user_id != self.actor.id:
            self._require_admin()
        return self._status(user_id)

    def list(self) -> list[UserAccount]:
        """Every user the studio has seen, with their month (admins only)."""
        self._require_admin()
        users = self.ctx.db.fetchall("SELECT id, display_name, email FROM users ORDER BY lower(display_name), id")
        overrides = {r["user_id"]: r["monthly_usd"] for r in self.ctx.db.fetchall("SELECT * FROM user_budgets")}
        spent, reserved = self._month(None)
        settings = self.ctx.settings
        return [UserAccount(id=u["id"], display_name=u["display_name"], email=u["email"],
                            is_admin=settings.is_admin(u["id"], u["email"]),
                            budget=_status(u["id"], overrides.get(u["id"], settings.default_budget), u["id"] in overrides,
                                           spent.get(u["id"], 0.0), reserved.get(u["id"], 0.0)))
                for u in users]

    @checked
    def set(self, user_id: Id, monthly_usd: Usd | None) -> BudgetStatus:
        """Give a user their own monthly budget in USD (None: unlimited), instead of the default."""
        self._require_admin()
        self._require_user(user_id)
        self.ctx.db.execute(
            "INSERT INTO user_budgets VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
            "monthly_usd = excluded.monthly_usd, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            [user_id, None if monthly_usd is None else float(monthly_usd), self.actor.id, utcnow()])
        return self._status(user_id)

    @checked
    def reset(self, user_id: Id) -> BudgetStatus:
        """Back to the default budget (STUDIO_DEFAULT_BUDGET)."""
        self._require_admin()
        self._require_user(user_id)
        self.ctx.db.execute("DELETE FROM user_budgets WHERE user_id = ?", [user_id])
        return self._status(user_id)

    @contextmanager
    def admit(self, cost: float, what: str) -> Iterator[None]:
        """Run the body (the insert of the jobs) only if `cost` fits in what is left of the actor's
        month, else raise BudgetExceeded. The check and the body hold a lock, so two generations at
        once cannot both pass a budget that fits one of them."""
        if self._budget(self.actor.id)[0] is None:
            yield
            return
        db = self.ctx.db
        with (nullcontext() if db.shared else _ADMIT), db.transaction() as cur:
            if db.shared:  # held until the jobs' insert commits, across servers
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(?))", [f"studio:budget:{self.actor.id}"])
            status = self._status(self.actor.id)  # read under the lock: earlier admissions are committed
            if status.remaining is not None and cost > 0 and cost > status.remaining + _EPSILON:
                raise BudgetExceeded(
                    f"This would cost about {usd(cost)} ({what}), more than the {usd(max(status.remaining, 0))} "
                    f"left of your monthly budget of {usd(status.monthly_budget)}; nothing was queued. "
                    "Generate fewer images, pick a cheaper model, or ask an administrator for a larger budget.")
            yield

    # -- reading ---------------------------------------------------------------------------
    def _budget(self, user_id: str) -> tuple[float | None, bool]:
        """(monthly budget or None for unlimited, whether it is this user's own)."""
        row = self.ctx.db.fetchone("SELECT monthly_usd FROM user_budgets WHERE user_id = ?", [user_id])
        return (row["monthly_usd"], True) if row is not None else (self.ctx.settings.default_budget, False)

    def _status(self, user_id: str) -> BudgetStatus:
        budget, overridden = self._budget(user_id)
        spent, reserved = self._month(user_id)
        return _status(user_id, budget, overridden, spent.get(user_id, 0.0), reserved.get(user_id, 0.0))

    def _month(self, user_id: str | None) -> tuple[dict[str, float], dict[str, float]]:
        """This month's (cost of finished jobs and assist calls, estimate of active jobs) by user; one user or all."""
        db = self.ctx.db
        since = month_start(utcnow())
        who, params = ("owner = ? AND ", [user_id]) if user_id is not None else ("", [])
        spent = {r["owner"]: float(r["spent"]) for r in db.fetchall(
            f"SELECT owner, sum(cost) AS spent FROM jobs WHERE {who}created_at >= ? AND cost IS NOT NULL "
            "GROUP BY owner", [*params, since])}
        for r in db.fetchall(  # AI assist's text-model calls count too (core/assist/calls.py owns that table)
                f"SELECT owner, sum(cost) AS spent FROM assist_calls WHERE {who}created_at >= ? AND cost IS NOT NULL "
                "GROUP BY owner", [*params, since]):
            spent[r["owner"]] = spent.get(r["owner"], 0.0) + float(r["spent"])
        reserved: dict[str, float] = {}
        estimate = db.dialect.json_text("request", "estimated_cost")
        for r in db.fetchall(f"SELECT owner, {estimate} AS estimate FROM jobs WHERE {who}created_at >= ? "
                             f"AND status IN ({marks(ACTIVE_STATUSES)})", [*params, since, *ACTIVE_STATUSES]):
            try:
                reserved[r["owner"]] = reserved.get(r["owner"], 0.0) + float(r["estimate"] or 0)
            except ValueError:  # a damaged estimate counts as free
                continue
        return spent, reserved

    def _require_admin(self) -> None:
        if not self.actor.is_admin:
            raise Forbidden("Only administrators can see and set other users' budgets.")

    def _require_user(self, user_id: str) -> None:
        if self.ctx.db.fetchone("SELECT 1 FROM users WHERE id = ?", [user_id]) is None:
            raise NotFound(f"No user with id {user_id!r} (a user appears once they have used the studio).")
