"""Generation statistics and budgets as the Queue and Users pages show them."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core.budgets import BudgetStatus, usd
from core.stats import Outcomes


def seconds(value: float | None) -> str:
    return f"{value / 1000:.2f} s" if value is not None else "–"


def budget_text(budget: BudgetStatus) -> str:
    if budget.monthly_budget is None:
        return f"This month: {usd(budget.spent)} spent, {usd(budget.reserved)} in running jobs; no budget limit."
    return (f"This month: {usd(budget.spent)} spent, {usd(budget.reserved)} in running jobs, "
            f"{usd(max(budget.remaining or 0.0, 0.0))} left of a {usd(budget.monthly_budget)} monthly budget.")


def outcome_metrics(stats: Outcomes) -> None:
    m = st.columns(6)
    m[0].metric("Jobs", stats.total)
    m[1].metric("Completed", stats.completed)
    m[2].metric("Failed", stats.failed)
    m[3].metric("Avg processing", seconds(stats.avg_provider_ms))
    m[4].metric("p95 processing", seconds(stats.p95_provider_ms))
    m[5].metric("Spend", usd(stats.spend))


def outcome_table(rows: Sequence[Outcomes], keys: dict[str, Callable[[Any], Any]]) -> pd.DataFrame:
    """One line per row: its `keys` columns, then counts, processing times and spend."""
    return pd.DataFrame([{
        **{name: get(r) for name, get in keys.items()},
        "Jobs": r.total, "Completed": r.completed, "Failed": r.failed,
        "Failure rate %": round(r.failure_rate * 100, 1),
        "Avg s": None if r.avg_provider_ms is None else round(r.avg_provider_ms / 1000, 2),
        "p95 s": None if r.p95_provider_ms is None else round(r.p95_provider_ms / 1000, 2),
        "Spend USD": round(r.spend, 4),
    } for r in rows], columns=[*keys, "Jobs", "Completed", "Failed", "Failure rate %", "Avg s", "p95 s", "Spend USD"])
