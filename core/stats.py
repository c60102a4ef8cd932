"""Generation statistics: one user's, or everyone's with a row per user."""
from __future__ import annotations

from pydantic import BaseModel, computed_field

from core.data import Database


class Outcomes(BaseModel):
    """Jobs by outcome, provider processing time of completed ones, and what they cost (USD)."""

    total: int = 0
    completed: int = 0
    failed: int = 0
    canceled: int = 0
    active: int = 0
    avg_provider_ms: float | None = None
    p95_provider_ms: float | None = None
    spend: float = 0.0

    @computed_field
    @property
    def failure_rate(self) -> float:
        """Failed among finished (completed or failed) jobs."""
        finished = self.completed + self.failed
        return self.failed / finished if finished else 0.0


class ModelStats(Outcomes):
    provider_id: str
    model_key: str


class UserStats(Outcomes):
    user_id: str


class GenerationStats(Outcomes):
    avg_overhead_ms: float | None = None
    per_model: list[ModelStats] = []
    per_user: list[UserStats] = []  # everyone's statistics only


def _outcomes(db: Database) -> str:
    done = "FILTER (WHERE status = 'completed')"
    return f"""count(*) AS total,
               count(*) FILTER (WHERE status = 'completed') AS completed,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               count(*) FILTER (WHERE status = 'canceled') AS canceled,
               count(*) FILTER (WHERE status IN ('queued', 'running', 'storing')) AS active,
               avg(provider_ms) {done} AS avg_provider_ms,
               {db.dialect.percentile("provider_ms", 0.95)} {done} AS p95_provider_ms,
               coalesce(sum(cost), 0) AS spend"""


def generation_stats(db: Database, owner: str | None = None) -> GenerationStats:
    """One user's statistics (`owner`), or everyone's (None) with a row per user; per provider and model."""
    where, params = ("WHERE owner = ?", [owner]) if owner else ("", [])
    outcomes = _outcomes(db)
    totals = db.fetchone(f"""SELECT {outcomes}, avg(overhead_ms) FILTER (WHERE status = 'completed') AS avg_overhead_ms
                             FROM jobs {where}""", params)
    per_model = db.fetchall(f"SELECT provider_id, model_key, {outcomes} FROM jobs {where} "
                            "GROUP BY provider_id, model_key ORDER BY total DESC, provider_id, model_key", params)
    per_user = [] if owner else db.fetchall(
        f"SELECT owner AS user_id, {outcomes} FROM jobs GROUP BY owner ORDER BY total DESC, owner")
    return GenerationStats(**{k: v for k, v in totals.items() if v is not None},
                           per_model=[ModelStats(**r) for r in per_model], per_user=[UserStats(**r) for r in per_user])
