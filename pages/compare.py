"""Compare: one character across prompt variants x models x seeds, side by side. The setup previews the
cell count and cost; Run queues the cells as one batch; the grid fills in live (a fragment that polls
while cells are at work); a cell opens in the shared lightbox with Keep and Set as primary."""
from __future__ import annotations

from typing import Any

import streamlit as st

from core.compare import CELLS_MAX, Comparison
from core.compare.models import MODELS_MAX, PROMPTS_MAX, SEEDS_MAX
from core.errors import InvalidInput, StudioError
from core.presets import PRESET_KINDS
from ui import app, assist, lightbox
from ui.widgets import field_error, image, literal, model_label, plural

app.require_frame()
s = app.studio()
OPEN = "cmp_open"  # session state: the comparison shown


def k(cid: str, name: str) -> str:
    return f"cmp.{cid}.{name}"


def _seeds(text: str) -> list[int]:
    try:
        return [int(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise InvalidInput({"seeds": "whole numbers separated by commas or spaces (empty: one random seed)"}) from None



def spec_for(cid: str) -> dict[str, Any]:
    get = st.session_state.get
    n = int(get(k(cid, "n_prompts"), 1) or 1)
    texts = [get(k(cid, f"prompt.{i}"), "") or "" for i in range(n)]
    prompts = [{"text": text, "enhancement": assist.enhancement_for(k(cid, f"slot.{i}"), text)}
               for i, text in enumerate(texts)]
    sr = [p.strip() for p in (get(k(cid, "sr"), "") or "").split(",") if p.strip()]
    return {"character_id": cid, "name": get(k(cid, "name"), "") or "", "prompts": prompts, "replace": sr,
            "models": list(get(k(cid, "models"), []) or []), "seeds": _seeds(get(k(cid, "seeds"), "1, 2") or ""),
            "presets": {kind: get(k(cid, kind)) for kind in PRESET_KINDS if get(k(cid, kind))}}


def run(cid: str) -> None:
    st.session_state.pop(k(cid, "run_error"), None)
    studio = app.studio()
    try:
        comparison = studio.compare.run(spec_for(cid), confirm=bool(st.session_state.get(k(cid, "confirm"))))
    except StudioError as exc:
        st.session_state[k(cid, "run_error")] = app.error_text(exc)
        return
    st.session_state[OPEN] = comparison.id
    st.session_state.pop(k(cid, "confirm"), None)


def delete(comparison_id: str) -> None:
    app.attempt_later(app.studio().compare.delete, comparison_id, success="Comparison deleted.")
    st.session_state.pop(OPEN, None)
    st.session_state.pop("cmp_confirm_delete", None)


def retry(job_id: str) -> None:
    app.attempt_later(app.studio().compare.retry, job_id, success="Cell queued again.")


def _plan(cid: str):
    """The plan of what the fields say now, and the problems by field (the fields' values are current at
    the start of a run, so each problem is shown next to its field)."""
    try:
        return s.compare.plan(spec_for(cid)), {}
    except InvalidInput as exc:
        return None, {field.split(".")[0]: msg for field, msg in exc.errors.items()}
    except StudioError as exc:
        return None, {"_": app.error_text(exc)}


def setup(cid: str) -> None:
    """The axes, the plan's preview (cells, estimated cost) and Run."""
    models = [m for m in s.models.list(active_only=True, usable_only=True) if not m.retired]
    by_id = {m.id: m for m in models}
    if k(cid, "models") not in st.session_state and models:
        st.session_state[k(cid, "models")] = [models[0].id]
    st.session_state.setdefault(k(cid, "n_prompts"), 1)
    st.session_state.setdefault(k(cid, "seeds"), "1, 2")
    plan, errors = _plan(cid)
    st.text_input("Name (optional)", key=k(cid, "name"), max_chars=80)
    n = st.number_input(f"Prompt variants (up to {PROMPTS_MAX})", min_value=1, max_value=PROMPTS_MAX, step=1,
                        key=k(cid, "n_prompts"))
    for i in range(int(n)):
        with st.container(border=True):
            st.text_area(f"Prompt {i + 1}", key=k(cid, f"prompt.{i}"), height=68, max_chars=200,
                         placeholder="e.g. laughing in the rain")
            assist.prompt_enhancer(s, cid, k(cid, f"prompt.{i}"), None, slot=k(cid, f"slot.{i}"),
                                   use_label="Run comparison")
    field_error(errors, "prompts")
    st.text_input("Prompt S/R (optional)", key=k(cid, "sr"), placeholder="red coat, blue scarf, green hat",
                  help="As AUTOMATIC1111's Prompt S/R: the first phrase is in your one prompt; each further "
                       "phrase replaces it in a new variant.")
    field_error(errors, "replace")
    st.multiselect(f"Models (up to {MODELS_MAX})", list(by_id), key=k(cid, "models"),
                   format_func=lambda i: model_label(by_id[i]), max_selections=MODELS_MAX)
    field_error(errors, "models")
    st.text_input(f"Seeds (up to {SEEDS_MAX})", key=k(cid, "seeds"),
                  help="Comma-separated; each seed is a column for every model. Empty: one random seed.")
    field_error(errors, "seeds")
    cols = st.columns(len(PRESET_KINDS))
    for col, kind in zip(cols, PRESET_KINDS):
        options = [None] + [o["key"] for o in s.presets.options(kind)]
        col.selectbox(kind.capitalize(), options, key=k(cid, kind), format_func=lambda v: "-" if v is None else v)
    field_error(errors, "presets")
    if plan is not None:
        cost = f"about ${plan.estimated_cost:.2f}" + (f" ({', '.join(plan.unpriced)} unpriced)" if plan.unpriced else "")
        st.markdown(f"**{plural(plan.cells, 'cell')}** ({plural(len(plan.prompts), 'prompt')} × "
                    f"{plural(len(plan.models), 'model')} × {plural(len(plan.seeds), 'seed')}, at most {CELLS_MAX}) "
                    f"· estimated cost {cost}")
        if plan.needs_confirmation:
            st.checkbox(f"Spend about ${plan.estimated_cost:.2f} on this comparison", key=k(cid, "confirm"))
    shown = {"prompts", "replace", "models", "seeds", "presets"}
    for field, msg in errors.items():
        if field not in shown:  # the cell count, the character, anything not tied to one field
            st.error(msg if field in ("_", "cells") else f"{field.capitalize()}: {msg}", icon=":material/error:")
    st.button("Run comparison", key="cmp_run", type="primary", icon=":material/grid_view:", on_click=run, args=(cid,),
              disabled=plan is None or (plan.needs_confirmation and not st.session_state.get(k(cid, "confirm"))))
    if message := st.session_state.get(k(cid, "run_error")):
        st.error(message, icon=":material/error:")


def cell_tile(c, comparison: Comparison) -> None:
    with st.container(border=True):
        if c.done:
            image(s, c.thumbnail_key, listed=True, width="stretch")
            seconds = f" · {c.provider_ms / 1000:.1f} s" if c.provider_ms is not None else ""
            cost = f" · ${c.cost:.3f}" if c.cost is not None else ""
            st.caption(f"{literal(c.model_name)}" + (f" · seed {c.seed}" if c.takes_seed else "") + seconds + cost
                       + (" · :orange[kept]" if c.kept_portrait_id else ""))
            st.button("Open", key=f"cmp.open.{c.job_id}", icon=":material/open_in_full:", width="stretch",
                      on_click=lightbox.open_image, args=("cell", c.job_id))
        elif c.status == "failed" or c.status == "canceled":
            st.error(f"{literal(c.model_name)}: {literal(c.last_error or c.status)}", icon=":material/error:")
            st.button("Retry", key=f"cmp.retry.{c.job_id}", on_click=retry, args=(c.job_id,), width="stretch")
        else:
            st.caption(f"{literal(c.model_name)}" + (f" · seed {c.seed}" if c.takes_seed else ""))
            st.info(c.stage or c.status, icon=":material/hourglass_top:")


def grid(comparison_id: str) -> None:
    """The grid: a row per prompt, a column per model and seed."""
    try:
        comparison = s.compare.get(comparison_id)
    except StudioError:
        st.session_state.pop(OPEN, None)
        return
    plan = comparison.plan
    done = sum(c.done for c in comparison.items)
    st.markdown(f"**{literal(comparison.name)}** · {done} of {comparison.cells} done")
    width = len(plan.models) * len(plan.seeds)
    for p, variant in enumerate(plan.prompts):
        st.markdown(f"**Prompt {p + 1}:** {literal(variant.text) or '_(none)_'}"
                    + (" · :violet[AI-enhanced]" if variant.enhancement else ""))
        cols = st.columns(width)
        for c in comparison.items[p * width:(p + 1) * width]:
            with cols[c.model_index * len(plan.seeds) + c.seed_index]:
                cell_tile(c, comparison)
    if st.session_state.get(lightbox.SHOWN) is not None:
        lightbox.image_dialog(s)
    if comparison.finished and st.session_state.get("cmp_polling"):
        st.session_state["cmp_polling"] = False
        st.rerun()  # stop polling
    if not comparison.finished and not st.session_state.get("cmp_polling"):
        st.session_state["cmp_polling"] = True
        st.rerun()


def saved(cid: str) -> str | None:
    """The character's saved comparisons: pick one to reopen, export or delete."""
    mine = s.compare.list(cid)
    if not mine:
        return None
    ids = [c.id for c in mine]
    if st.session_state.get(OPEN) not in ids:
        st.session_state[OPEN] = ids[0]
    names = {c.id: f"{c.name} ({c.cells} cells, {c.created_at:%Y-%m-%d %H:%M})" for c in mine}
    c1, c2, c3 = st.columns([4, 1.4, 1], vertical_alignment="bottom")
    chosen = c1.selectbox("Saved comparisons", ids, key=OPEN, format_func=names.get)
    c2.download_button("Download sheet", data=lambda: s.compare.sheet(chosen)[0], file_name=f"comparison-{chosen[:8]}.png",
                       mime="image/png", key="cmp_sheet", icon=":material/download:", width="stretch")
    c3.button("Delete", key="cmp_delete", on_click=st.session_state.__setitem__, args=("cmp_confirm_delete", chosen),
              width="stretch")
    if st.session_state.get("cmp_confirm_delete") == chosen:
        with st.container(border=True):
            st.warning(f"Delete {literal(names[chosen])}? Its cells and their images go; portraits you kept from it "
                       "stay in the gallery.", icon=":material/delete:")
            d1, d2, _ = st.columns([1, 1, 3])
            d1.button("Delete comparison", key="cmp_delete_yes", type="primary", on_click=delete, args=(chosen,),
                      width="stretch")
            d2.button("Cancel", key="cmp_delete_no", on_click=st.session_state.pop, args=("cmp_confirm_delete", None),
                      width="stretch")
    return chosen


with app.guarded("the Compare page"):
    character = app.require_character(s, "compare portraits")
    if character is not None:
        st.title(f"Compare: {character.name}")
        if character.owner != s.actor.id and not s.actor.is_admin:
            st.info("This is another user's public character: duplicate it on the Characters page to compare "
                    "its portraits.", icon=":material/lock:")
        else:
            with st.expander("Set up a comparison", expanded=not s.compare.list(character.id), icon=":material/tune:"):
                setup(character.id)
            chosen = saved(character.id)
            if chosen is not None:
                polling = bool(st.session_state.get("cmp_polling"))
                st.fragment(run_every=1.0 if polling else None)(grid)(chosen)
