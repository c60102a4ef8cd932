"""Generation statistics (per user or overall)."""
from __future__ import annotations

from typing import Any

from core.data import Database


def generation_stats(db: Database, owner: str | None = None) -> dict[str, Any]:
    """Totals by status, failure rate, average and p95 provider time, average overhead, per provider and model."""
    where, params = ("WHERE owner = ?", [owner]) if owner else ("", [])
    p95 = db.dialect.percentile("provider_ms", 0.95)
    totals = db.fetchone(
        f"""SELECT count(*) AS total,
                   count(*) FILTER (WHERE status = 'completed') AS completed,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   count(*) FILTER (WHERE status = 'canceled') AS canceled,
                   count(*) FILTER (WHERE status IN ('queued', 'running', 'storing')) AS active,
                   avg(provider_ms) FILTER (WHERE status = 'completed') AS avg_provider_ms,
                   {p95} FILTER (WHERE status = 'completed') AS p95_provider_ms,
                   avg(overhead_ms) FILTER (WHERE status = 'completed') AS avg_overhead_ms
            FROM jobs {where}""", params)
    finished = (totals["completed"] or 0) + (totals["failed"] or 0)
    totals["failure_rate"] = (totals["failed"] / finished) if finished else 0.0
    per_model = db.fetchall(
        f"""SELECT provider_id, model_key, count(*) AS total,
                   count(*) FILTER (WHERE status = 'completed') AS completed,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   avg(provider_ms) FILTER (WHERE status = 'completed') AS avg_provider_ms,
                   {p95} FILTER (WHERE status = 'completed') AS p95_provider_ms
            FROM jobs {where} GROUP BY provider_id, model_key ORDER BY total DESC""", params)
    return {**totals, "per_model": per_model}
