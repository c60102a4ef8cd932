"""Queue: active and recent jobs across characters (cancel, retry, filter) and generation statistics."""
from __future__ import annotations

import streamlit as st

from core.models import ACTIVE_STATUSES, FINAL_STATUSES, Job
from ui import app, layout, lightbox
from ui.stats import budget_text, outcome_metrics, outcome_table
from ui.widgets import stage_text, status_badge, when

app.require_frame()
s = app.studio()
STATUSES = list(ACTIVE_STATUSES + FINAL_STATUSES)
PAGE_SIZE = 25
WIDTHS = [1.1, 1.6, 2.2, 2.6, 0.8, 1.6, 1.1]
LABELS = ["Status", "Character", "Model", "Stage", "Tries", "Created / time", ""]


def cancel(job_id: str) -> None:
    app.attempt_later(app.studio().jobs.cancel, job_id, success="Job canceled.")


def retry(job_id: str) -> None:
    app.attempt_later(app.studio().jobs.retry, job_id, success="Job queued again.")


def character_names() -> dict[str, str]:
    return {c.id: c.name for c in s.characters.list(limit=500).items}


def job_row(job: Job, names: dict[str, str], key: str, retryable: set[str] = frozenset()) -> None:
    with st.container(key=f"{layout.QUEUE_ROW}{key}-{job.id}"):
        c = st.columns(WIDTHS, vertical_alignment="center")
    for col, label in zip(c, LABELS):
        if label:
            with col:
                layout.cell_label(label)
    c[0].markdown(status_badge(job.status))
    c[1].markdown(f"{names.get(job.character_id, job.character_id[:8])}  \n:gray[{job.kind}]")
    c[2].markdown(f"{job.request.model_name or job.model_key}  \n:gray[{job.provider_id}]")
    with c[3]:
        if job.is_active and job.percent is not None:
            st.progress(min(100, int(job.percent)), text=stage_text(job))
        else:
            st.markdown(stage_text(job))
        if job.last_error:
            st.caption(f":red[{job.last_error[:300]}]")
    c[4].markdown(f"{job.attempts}/{job.max_attempts}")
    timing = f"{job.provider_ms / 1000:.1f} s" if job.provider_ms is not None else ""
    c[5].markdown(f":gray[{when(job.created_at)}]" + (f"  \n{timing}" if timing else ""))
    if job.status in ("queued", "running"):
        c[6].button("Cancel", key=f"{key}.cancel.{job.id}", on_click=cancel, args=(job.id,), width="stretch")
    elif job.id in retryable:
        c[6].button("Retry", key=f"{key}.retry.{job.id}", on_click=retry, args=(job.id,), width="stretch")
    elif job.status == "completed" and job.result_id:
        # A scene shows its latest image: the one this job made unless the scene was generated again.
        shown = {"portrait": ("portrait", job.result_id), "comparison": ("cell", job.id)}.get(job.kind, ("scene", job.scene_id))
        if shown[1]:
            c[6].button("Open", key=f"{key}.open.{job.id}", on_click=lightbox.open_image, args=shown,
                        icon=":material/open_in_full:", width="stretch")


def header(key: str) -> None:
    with st.container(key=f"{layout.QUEUE_HEAD}{key}"):
        c = st.columns(WIDTHS)
    for col, label in zip(c, LABELS):
        if label:
            col.caption(f"**{label}**")


def active_section(all_users: bool, polling: bool) -> None:
    active = s.jobs.list(status=ACTIVE_STATUSES, all_users=all_users, limit=200).items
    if active and not polling:
        st.rerun()  # something started: poll while it runs
    before = st.session_state.get("q_active")
    st.session_state["q_active"] = {j.id for j in active}
    if before is not None and before - st.session_state["q_active"]:
        st.rerun()  # something finished: refresh the history and statistics
    st.subheader(f"Active · {len(active)}")
    if not active:
        st.caption("Nothing is running. Generate portraits on the **Portraits** page or scene images on **Scenes**.")
        return
    names = character_names()
    header("active")
    for job in reversed(active):
        job_row(job, names, "active")


def history(statuses: list[str], all_users: bool) -> None:
    page_no = st.session_state.get("q_page", 0)
    page = s.jobs.list(status=tuple(statuses) or None, all_users=all_users, limit=PAGE_SIZE, offset=page_no * PAGE_SIZE)
    pages = max(1, -(-page.total // PAGE_SIZE))
    head, nav = st.columns([3, 2], vertical_alignment="center")
    head.subheader(f"Jobs · {page.total}")
    if page.total == 0:
        st.caption("No jobs match the filter." if statuses != STATUSES else
                   "No jobs yet: they appear here when you generate portraits or scene images.")
        return
    with nav:
        p1, p2, p3 = st.columns([1, 2, 1], vertical_alignment="center")
        if p1.button("Previous", disabled=page_no == 0, key="q_prev"):
            st.session_state["q_page"] = page_no - 1
            st.rerun()
        p2.markdown(f"<div style='text-align:center'>Page {page_no + 1} of {pages}</div>", unsafe_allow_html=True)
        if p3.button("Next", disabled=page_no + 1 >= pages, key="q_next"):
            st.session_state["q_page"] = page_no + 1
            st.rerun()
    names = character_names()
    retryable = s.jobs.retryable(page.items)
    header("hist")
    for job in page.items:
        job_row(job, names, "hist", retryable)


def statistics(all_users: bool) -> None:
    stats = s.stats(all_users=all_users)
    st.subheader("Statistics" if all_users else "Your statistics")
    outcome_metrics(stats)
    if not all_users:
        budget = s.budgets.mine()
        st.caption(budget_text(budget))
    if not stats.per_model:
        st.caption("Statistics appear after the first generation.")
        return
    df = outcome_table(stats.per_model, {"Provider": lambda r: r.provider_id, "Model": lambda r: r.model_key})
    left, right = st.columns([3, 2])
    left.dataframe(df, hide_index=True, width="stretch")
    chart = df.set_index("Model")[["Completed", "Failed"]]
    right.bar_chart(chart, horizontal=True, color=["#3a9e5b", "#d9534f"], height=220)


st.title("Queue")
with app.guarded("the queue"):
    f1, f2 = st.columns([4, 1], vertical_alignment="bottom")
    statuses = f1.pills("Status", STATUSES, selection_mode="multi", default=STATUSES, key="q_status",
                        help="Show jobs in these states.")
    all_users = f2.toggle("All users", key="q_all", disabled=not s.actor.is_admin,
                          help="Administrators can see every user's jobs.") if s.actor.is_admin else False
    polling = bool(s.jobs.list(status=ACTIVE_STATUSES, all_users=all_users, limit=1).total)
    st.fragment(run_every=1.5 if polling else None)(active_section)(all_users, polling)
    st.divider()
    history(statuses, all_users)
    st.divider()
    statistics(all_users)
if st.session_state.get(lightbox.SHOWN) is not None:
    lightbox.image_dialog(s)
