"""Users (admin): everyone's month against their budget, budgets per user, and statistics per user."""
from __future__ import annotations

import streamlit as st

from core.budgets import usd
from ui import app
from ui.stats import outcome_metrics, outcome_table
from ui.widgets import literal

app.require_frame()
s = app.studio()


def save_budget(user_id: str, key: str) -> None:
    value = st.session_state.get(key)
    app.attempt_later(app.studio().budgets.set, user_id, None if value is None else float(value),
                      success="Budget saved." if value is not None else "Budget removed: unlimited.")


def reset_budget(user_id: str) -> None:
    app.attempt_later(app.studio().budgets.reset, user_id, success="Back to the default budget.")


def budgets_section() -> None:
    default = s.ctx.settings.default_budget
    st.subheader("Budgets this month")
    st.caption("Default monthly budget (`STUDIO_DEFAULT_BUDGET`): "
               + (usd(default) if default is not None else "unlimited")
               + ". A generation that would spend more than what is left is refused before anything is submitted.")
    for user in s.budgets.list():
        b = user.budget
        with st.container(border=True):
            c = st.columns([2.4, 2.6, 1.8, 1.2], vertical_alignment="center")
            badges = " :violet-badge[admin]" if user.is_admin else ""
            c[0].markdown(f"**{literal(user.display_name)}**{badges}  \n:gray[{literal(user.email or user.id)}]")
            left = "unlimited" if b.remaining is None else f"{usd(max(b.remaining, 0.0))} left"
            c[1].markdown(f"{usd(b.spent)} spent · {usd(b.reserved)} in running jobs  \n:gray[{left}]")
            key = f"u.budget.{user.id}"
            c[2].number_input("Monthly budget (USD)", value=b.monthly_budget, min_value=0.0, step=5.0, format="%.2f",
                              key=key, placeholder="unlimited", on_change=save_budget, args=(user.id, key),
                              help="Empty: unlimited.")
            c[3].button("Default", key=f"u.reset.{user.id}", disabled=not b.overridden, on_click=reset_budget,
                        args=(user.id,), help="Use the default budget again.", width="stretch")


def statistics_section() -> None:
    stats = s.stats(all_users=True)
    st.subheader("Statistics, all users")
    outcome_metrics(stats)
    if not stats.per_user:
        st.caption("Statistics appear after the first generation.")
        return
    st.markdown("**Per user**")
    st.dataframe(outcome_table(stats.per_user, {"User": lambda r: r.user_id}), hide_index=True, width="stretch")
    st.markdown("**Per provider and model**")
    st.dataframe(outcome_table(stats.per_model, {"Provider": lambda r: r.provider_id, "Model": lambda r: r.model_key}),
                 hide_index=True, width="stretch")


st.title("Users")
with app.guarded("the users page"):
    if not s.actor.is_admin:
        st.error("Only administrators can see the Users page.")
    else:
        budgets_section()
        st.divider()
        statistics_section()
