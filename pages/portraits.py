"""Portraits: the studio workspace. Presets, prompt, reference, model; live job tiles; the paged gallery."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import streamlit as st

from core.errors import InvalidInput, StudioError
from core.models import BATCH_MAX, PROMPT_MAX, Character
from core.portraits import ZIP_MAX
from core.presets import PRESET_KINDS
from ui import app, assist, lightbox
from ui.widgets import field_error, image, job_tile, literal, model_label

app.require_frame()
s = app.studio()
PAGE_SIZE = 16
COLS = 4
AUTO = "__auto__"
SELECT, ARRANGE = "select", "arrange"  # the gallery's modes (none: viewing)


# -- state helpers -----------------------------------------------------------------------
def k(cid: str, name: str) -> str:
    return f"pt.{cid}.{name}"


def watch(cid: str, job_ids: list[str]) -> None:
    watched = st.session_state.setdefault("pt_watch", {}).setdefault(cid, [])
    watched.extend(j for j in job_ids if j not in watched)


def options_for(cid: str, character: Character) -> dict[str, Any]:
    presets = {kind: st.session_state.get(k(cid, kind)) for kind in PRESET_KINDS}
    model = st.session_state.get("pt.model")
    use_ref = bool(character.reference_image_key) and st.session_state.get(k(cid, "use_ref"), True)
    seed = st.session_state.get("pt.seed")
    prompt = st.session_state.get(k(cid, "prompt"), "") or ""
    return {
        "prompt": prompt,
        "presets": {kk: v for kk, v in presets.items() if v},
        "model_id": None if model in (None, AUTO) else model,
        "reference": "character" if use_ref else "none",
        "seed": int(seed) if seed is not None else None,
        "n": int(st.session_state.get("pt.n", 1) or 1),
        "enhancement": assist.enhancement_for(cid, prompt),
    }


# -- callbacks ---------------------------------------------------------------------------
def generate(cid: str) -> None:
    st.session_state.pop(k(cid, "gen_error"), None)
    st.session_state.pop(k(cid, "n_error"), None)
    studio = app.studio()
    try:
        character = studio.characters.get(cid)
        jobs = studio.portraits.generate(cid, options_for(cid, character))
    except InvalidInput as exc:
        if "n" in exc.errors:  # shown next to the Images field
            st.session_state[k(cid, "n_error")] = exc.errors["n"]
        rest = {f: m for f, m in exc.errors.items() if f != "n"}
        if rest:
            st.session_state[k(cid, "gen_error")] = app.error_text(InvalidInput(rest))
        return
    except StudioError as exc:
        st.session_state[k(cid, "gen_error")] = app.error_text(exc)
        return
    watch(cid, [j.id for j in jobs])


def set_primary(pid: str) -> None:
    app.attempt_later(app.studio().portraits.set_primary, pid, success="Primary portrait set.")


def set_public(pid: str, key: str) -> None:
    public = bool(st.session_state.get(key))
    app.attempt_later(app.studio().portraits.set_public, pid, public,
                      success="Portrait shown to others." if public else "Portrait private: only you see it.")


def visibility_toggle(p, key: str) -> None:
    """The owner's switch between showing a portrait to others and keeping it private."""
    if p.owner == s.actor.id or s.actor.is_admin:
        st.toggle("Public", value=p.is_public, key=key, on_change=set_public, args=(p.id, key),
                  help="Others see a public character's portraits unless made private here. "
                       "Off: only you see this portrait.")


def use_as_reference(pid: str) -> None:
    if app.attempt_later(app.studio().portraits.use_as_reference, pid, success="Reference image set.") is not None:
        st.session_state.pop("pt_pick_ref", None)


def open_view(pid: str) -> None:
    """Show this portrait in the lightbox (by id: new or deleted portraits never change which one)."""
    st.session_state["pt_view"] = pid
    st.session_state.pop("pt_view_confirm", None)


def close_view() -> None:
    st.session_state.pop("pt_view", None)
    st.session_state.pop("pt_view_confirm", None)


def upload_reference(cid: str, key: str) -> None:
    file = st.session_state.get(key)
    st.session_state.pop(k(cid, "upload_error"), None)
    if file is None:
        return
    # Either way the uploader is made anew (a new key): a refused file is dropped, its error shown beside it.
    st.session_state[k(cid, "upload_n")] = st.session_state.get(k(cid, "upload_n"), 0) + 1
    try:
        app.studio().characters.set_reference_upload(cid, file.getvalue())
    except StudioError as exc:
        st.session_state[k(cid, "upload_error")] = f"{file.name}: {app.error_text(exc)}"
        return
    app.flash("Reference image uploaded.")
    st.session_state[k(cid, "use_ref")] = True


def clear_reference(cid: str) -> None:
    app.attempt_later(app.studio().characters.clear_reference, cid, success="Reference image removed.")


def clear_finished(cid: str) -> None:
    watched = st.session_state.setdefault("pt_watch", {}).get(cid, [])
    studio = app.studio()
    keep = []
    for jid in watched:
        try:
            if studio.jobs.get(jid).is_active:
                keep.append(jid)
        except StudioError:
            pass
    st.session_state["pt_watch"][cid] = keep
    st.session_state.setdefault("pt_dismissed", set()).update(j.id for j in recent_failures(cid))


def download_data(pid: str):
    """Read lazily when the button is clicked (Streamlit runs this on another thread; it touches no st.*)."""
    studio = s
    return lambda: studio.portraits.download(pid)[0]


# -- dialogs -----------------------------------------------------------------------------
@st.dialog("Pick a reference from the portraits", width="large",
           on_dismiss=lambda: st.session_state.pop("pt_pick_ref", None))
def pick_reference_dialog(cid: str) -> None:
    if st.session_state.get("pt_pick_ref") != cid:
        st.rerun()  # picked: close the dialog
    offset = st.session_state.get("pt_pick_offset", 0)
    page = s.portraits.list(cid, limit=12, offset=offset)
    if not page.items:
        st.info("This character has no portraits yet. Generate one first, or upload a reference image.")
        return
    cols = st.columns(4)
    for i, p in enumerate(page.items):
        with cols[i % 4]:
            image(s, p.thumbnail_key, width="stretch")
            st.button("Use", key=f"pickref.{p.id}", on_click=use_as_reference, args=(p.id,), width="stretch")
    c1, c2, c3 = st.columns([1, 2, 1])
    c1.button("Previous", disabled=offset == 0, key="pickref_prev", on_click=st.session_state.__setitem__,
              args=("pt_pick_offset", max(0, offset - 12)))
    c2.caption(f"{offset + 1}-{offset + len(page.items)} of {page.total}")
    c3.button("Next", disabled=offset + 12 >= page.total, key="pickref_next", on_click=st.session_state.__setitem__,
              args=("pt_pick_offset", offset + 12))


@st.dialog("Portrait", width="large", on_dismiss=close_view)
def view_dialog(cid: str) -> None:
    pid = st.session_state.get("pt_view")
    if pid is None:
        st.rerun()  # closed by an action inside the dialog
    try:
        p = s.portraits.get(pid)
        where = s.portraits.neighbours(pid)
    except StudioError:  # deleted meanwhile (elsewhere)
        close_view()
        st.rerun()
    if p.character_id != cid:
        close_view()
        st.rerun()
    left, right = st.columns([3, 2], gap="medium")
    with left:
        image(s, p.image_key, width="stretch")
        c1, c2, c3 = st.columns([1, 2, 1], vertical_alignment="center")
        # ← and → step through the gallery, Esc closes (the dialog's own); keys typed into a field stay there.
        c1.button("Previous", icon=":material/chevron_left:", disabled=where.previous_id is None, key="view_prev",
                  on_click=open_view, args=(where.previous_id,), width="stretch", shortcut="Left")
        c2.markdown(f"<div style='text-align:center'>{where.index + 1} of {where.total}</div>", unsafe_allow_html=True)
        c3.button("Next", icon=":material/chevron_right:", icon_position="right", disabled=where.next_id is None,
                  key="view_next", on_click=open_view, args=(where.next_id,), width="stretch", shortcut="Right")
    with right:
        if p.is_primary:
            st.markdown(":orange-badge[:material/star: Primary portrait]")
        lightbox.recipe(s, lightbox.Picture(p.image_key, "Portrait", p.prompt, p.recipe, p.width, p.height,
                                            p.created_at))
        visibility_toggle(p, f"view_public.{p.id}")
        a1, a2 = st.columns(2)
        a1.button("Set as primary", icon=":material/star:", disabled=p.is_primary, key="view_primary",
                  on_click=set_primary, args=(p.id,), width="stretch")
        a2.button("Use as reference", icon=":material/image_search:", key="view_ref",
                  on_click=use_as_reference, args=(p.id,), width="stretch")
        lightbox.download_button(download_data(p.id), f"portrait-{p.id[:8]}.png", key="view_download", where=a1)
        if st.session_state.get("pt_view_confirm") == p.id:
            st.warning("Delete this portrait? This cannot be undone.")
            d1, d2 = st.columns(2)
            d1.button("Delete", type="primary", key="view_delete_yes", width="stretch", on_click=view_delete,
                      args=(p.id, where.next_id or where.previous_id))
            d2.button("Cancel", key="view_delete_no", width="stretch", on_click=st.session_state.pop,
                      args=("pt_view_confirm", None))
        else:
            a2.button("Delete", icon=":material/delete:", key="view_delete", width="stretch",
                      on_click=st.session_state.__setitem__, args=("pt_view_confirm", p.id))
        st.divider()
        # What was typed here comes back when the user steps away and returns (Streamlit forgets the state
        # of a widget that a run did not show).
        drafts = st.session_state.setdefault("pt_regen_drafts", {})
        st.text_area("Prompt for regenerate", value=drafts.get(f"regen.{p.id}", p.prompt), max_chars=PROMPT_MAX,
                     key=f"regen.{p.id}", on_change=keep_draft, args=(f"regen.{p.id}",))
        if lightbox.takes_seed(s, p.recipe):
            st.checkbox("New seed", value=drafts.get(f"regen_seed.{p.id}", False), key=f"regen_seed.{p.id}",
                        on_change=keep_draft, args=(f"regen_seed.{p.id}",))
        st.button("Regenerate", type="primary", icon=":material/refresh:", key="view_regen", width="stretch",
                  on_click=regenerate, args=(cid, p.id))


def keep_draft(key: str) -> None:
    st.session_state.setdefault("pt_regen_drafts", {})[key] = st.session_state.get(key)


def view_delete(pid: str, then: str | None) -> None:
    """Delete the shown portrait and show the one after it (or before it; none left: close)."""
    st.session_state.pop("pt_view_confirm", None)
    try:
        app.studio().portraits.delete(pid)
    except StudioError as exc:
        app.flash(app.error_text(exc), "error")
        return
    app.flash("Portrait deleted.")
    if then:
        open_view(then)
    else:
        close_view()


def regenerate(cid: str, pid: str) -> None:
    try:
        jobs = app.studio().portraits.regenerate(pid, prompt=st.session_state.get(f"regen.{pid}"),
                                                  new_seed=bool(st.session_state.get(f"regen_seed.{pid}")))
    except StudioError as exc:
        app.flash(app.error_text(exc), "error")
        return
    watch(cid, [j.id for j in jobs])
    close_view()


# -- sections ----------------------------------------------------------------------------
def controls(character: Character) -> None:
    cid = character.id
    defaults = character.default_presets
    for kind in PRESET_KINDS:
        if k(cid, kind) not in st.session_state:
            st.session_state[k(cid, kind)] = getattr(defaults, kind)
    keep = {"persist_state": "session"}  # choices and the typed prompt survive a page switch
    poses = s.presets.options("pose")
    st.pills("Pose", [p["key"] for p in poses], key=k(cid, "pose"),
             format_func=lambda key: next(p["label"] for p in poses if p["key"] == key), **keep)
    cols = st.columns(3)
    for col, kind in zip(cols, ("expression", "outfit", "camera")):
        opts = s.presets.options(kind)
        labels = {p["key"]: p["label"] for p in opts}
        col.selectbox(kind.capitalize(), [None] + list(labels), key=k(cid, kind),
                      format_func=lambda key, labels=labels: "Any" if key is None else labels.get(key, key),
                      placeholder="Any", **keep)
    prompt = st.text_area("Custom prompt", key=k(cid, "prompt"), max_chars=PROMPT_MAX, height=80,
                          placeholder="e.g. golden hour light, rooftop garden", **keep)
    st.caption(f"{len(prompt or '')}/{PROMPT_MAX} characters")

    # Reference image
    i2i = s.models.i2i_count()
    ref_box = st.container(border=True)
    with ref_box:
        r1, r2 = st.columns([1, 3], vertical_alignment="top")
        with r1:
            if character.reference_image_key:
                image(s, character.reference_image_key, width=96)
            else:
                st.markdown(":gray[:material/image: no reference]")
        with r2:
            color = "violet" if i2i else "red"
            st.markdown(f"**Reference image** :{color}-badge[:material/join_inner: Image match: {i2i} "
                        f"image-to-image model{'s' if i2i != 1 else ''} available]")
            if character.reference_image_key:
                st.session_state.setdefault(k(cid, "use_ref"), True)
                st.checkbox("Use the reference image (keeps the face)", key=k(cid, "use_ref"), **keep)
                if not i2i:
                    st.caption(":red[No image-to-image model is active: activate one on the Models page, "
                               "or untick the reference.]")
            n = st.session_state.get(k(cid, "upload_n"), 0)
            up_key = k(cid, f"upload.{n}")
            st.file_uploader("Upload a reference image", type=["png", "jpg", "jpeg", "webp"], key=up_key,
                             on_change=upload_reference, args=(cid, up_key))
            field_error({"upload": st.session_state.get(k(cid, "upload_error"))}, "upload")
            b1, b2 = st.columns(2)
            if b1.button("Pick from portraits", icon=":material/photo_library:", width="stretch"):
                st.session_state["pt_pick_ref"] = cid
                st.session_state["pt_pick_offset"] = 0
            b2.button("Remove reference", icon=":material/close:", on_click=clear_reference, args=(cid,),
                      disabled=not character.reference_image_key, width="stretch")

    # Model, number, seed
    models = s.models.list(active_only=True, usable_only=True)
    ids = [AUTO] + [m.id for m in models]
    labels = {m.id: model_label(m) for m in models}
    if st.session_state.get("pt.model") not in ids:
        st.session_state["pt.model"] = AUTO
    c1, c2, c3 = st.columns([3, 1, 1.4])
    c1.selectbox("Model", ids, key="pt.model",
                 format_func=lambda i: "Automatic (best available)" if i == AUTO else labels.get(i, i),
                 help="Models marked image-to-image can use the reference image.", **keep)
    # No max_value: the browser would keep showing a larger number while sending the old one.
    c2.number_input("Images", min_value=1, value=1, step=1, key="pt.n", **keep)
    c2.caption(f"At most {BATCH_MAX}")
    with c2:
        field_error({"n": st.session_state.get(k(cid, "n_error"))}, "n")
    c3.number_input("Seed", min_value=0, value=None, step=1, key="pt.seed", placeholder="random", **keep)
    if not models:
        st.warning("No active model can run: activate one on the **Models** page or configure a provider key.")
    model_choice = st.session_state.get("pt.model")
    assist.prompt_enhancer(s, cid, k(cid, "prompt"), None if model_choice in (None, AUTO) else model_choice)
    st.button("Generate portrait", type="primary", icon=":material/auto_awesome:", on_click=generate, args=(cid,),
              width="stretch", key="generate_portrait")
    err = st.session_state.get(k(cid, "gen_error"))
    if err:
        st.error(err, icon=":material/error:")


def summary(character: Character) -> None:
    """Name and final prompt (the primary portrait is shown by the gallery, which a star changes alone)."""
    with st.container(border=True):
        st.markdown(f"### {literal(character.name)}")
        if not character.description.strip():
            st.warning("Add a description on the Characters page: a portrait needs one.")
        try:
            preview = s.portraits.preview_prompt(character.id, {
                kk: v for kk, v in options_for(character.id, character).items() if kk != "n"})
        except InvalidInput as exc:
            st.caption(f"Final prompt: {app.error_text(exc)}")
        except StudioError as exc:
            st.caption(f"Final prompt unavailable: {exc.message}")
        else:
            st.markdown("**Final prompt**")
            st.code(preview, language=None, wrap_lines=True)


def recent_failures(cid: str) -> list:
    """Failed portrait jobs of the last day (shown with the provider's message and Retry until cleared)."""
    since = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=1)
    return [j for j in s.jobs.list(character_id=cid, status="failed", limit=6).items
            if j.kind == "portrait" and j.created_at >= since]


def jobs_panel(cid: str, polling: bool) -> None:
    watched = st.session_state.setdefault("pt_watch", {}).setdefault(cid, [])
    dismissed = st.session_state.setdefault("pt_dismissed", set())
    active = [j for j in s.jobs.active(character_id=cid) if j.kind == "portrait"]
    jobs = {j.id: j for j in active}
    for j in recent_failures(cid):
        if j.id not in dismissed:
            jobs[j.id] = j
    for jid in watched:
        if jid not in jobs:
            try:
                jobs[jid] = s.jobs.get(jid)
            except StudioError:
                continue
    now_active = {j.id for j in jobs.values() if j.is_active}
    before = st.session_state.get(k(cid, "active"))
    st.session_state[k(cid, "active")] = now_active
    finished = before is not None and before - now_active
    # A job finished (refresh the gallery), or all did (stop polling): both wait while the lightbox is open,
    # so nothing moves under the user. A job was retried here: start polling.
    settled = finished or (polling and not now_active)
    if (settled and st.session_state.get("pt_view") is None) or (now_active and not polling):
        st.rerun()
    if not jobs:
        return
    head, btn = st.columns([4, 1], vertical_alignment="center")
    head.markdown(f"**Generation** · {len(now_active)} running" if now_active else "**Generation** · all done")
    btn.button("Clear finished", key=f"clear_finished.{cid}", on_click=clear_finished, args=(cid,),
               disabled=len(now_active) == len(jobs), width="stretch")
    # Newest batch first; within a batch in the order the images were asked for.
    ordered = sorted(jobs.values(), key=lambda j: (-j.created_at.timestamp(), j.seq))[:12]
    cols = st.columns(COLS)
    for i, job in enumerate(ordered):
        with cols[i % COLS]:
            job_tile(s, job, key=f"pt.tile.{cid}")


def selection(cid: str) -> list[str]:
    """The ids ticked in the gallery, in the order they were ticked."""
    return st.session_state.setdefault(k(cid, "selected"), [])


def toggle_selected(cid: str, pid: str) -> None:
    chosen = selection(cid)
    if st.session_state.get(f"sel.{pid}"):
        if pid not in chosen:
            chosen.append(pid)
    elif pid in chosen:
        chosen.remove(pid)


def clear_selection(cid: str) -> None:
    for pid in selection(cid):
        st.session_state.pop(f"sel.{pid}", None)
    st.session_state[k(cid, "selected")] = []


def delete_selected(cid: str) -> None:
    chosen = list(selection(cid))
    st.session_state.pop("pt_confirm_bulk", None)
    try:
        n = app.studio().portraits.delete_many(chosen)
    except StudioError as exc:
        app.flash(app.error_text(exc), "error")
        return
    clear_selection(cid)
    app.flash(f"{n} portrait{'s' if n != 1 else ''} deleted.")


def zip_data(ids: list[str]):
    """The zip, built when the button is clicked (on another thread; it touches no st.*)."""
    studio = s
    return lambda: studio.portraits.zip(ids)[0]


def move(pid: str, position: int) -> None:
    app.attempt_later(app.studio().portraits.move, pid, max(0, position))


@st.dialog("Delete portraits?", on_dismiss=lambda: st.session_state.pop("pt_confirm_bulk", None))
def confirm_bulk_delete_dialog(cid: str) -> None:
    chosen = selection(cid)
    if not st.session_state.get("pt_confirm_bulk") or not chosen:
        st.rerun()  # answered: close the dialog
    st.write(f"Delete the {len(chosen)} selected portrait{'s' if len(chosen) != 1 else ''} and their images? "
             "This cannot be undone.")
    c1, c2 = st.columns(2)
    c1.button(f"Delete {len(chosen)}", type="primary", key="pt_bulk_delete_yes", on_click=delete_selected,
              args=(cid,), width="stretch")
    c2.button("Cancel", key="pt_bulk_delete_no", on_click=st.session_state.pop, args=("pt_confirm_bulk", None),
              width="stretch")


def selection_bar(cid: str, name: str) -> None:
    chosen = selection(cid)
    if not chosen:
        return
    with st.container(border=True, key="pt-selection"):
        c0, c1, c2, c3 = st.columns([2, 2, 2, 1.2], vertical_alignment="center")
        c0.markdown(f"**{len(chosen)} selected**")
        if len(chosen) > ZIP_MAX:
            c1.caption(f"Download takes at most {ZIP_MAX} at once.")
        else:
            c1.download_button("Download selected", data=zip_data(list(chosen)), file_name=f"{name}-portraits.zip",
                               mime="application/zip", icon=":material/folder_zip:", key="pt_zip", width="stretch")
        c2.button("Delete selected", icon=":material/delete:", key="pt_bulk_delete", width="stretch",
                  on_click=st.session_state.__setitem__, args=("pt_confirm_bulk", True))
        c3.button("Clear", key="pt_clear_selection", on_click=clear_selection, args=(cid,), width="stretch")


def tile(cid: str, p, index: int, total: int, slot: int, mode: str | None) -> None:
    """A gallery tile: few widgets (a page has 16 of them, rendered on every run of the gallery); the
    portrait's other actions are in the lightbox, the tick only while selecting, the arranging buttons
    only while arranging."""
    with st.container(border=True, key=f"tile-{slot}"):
        image(s, p.thumbnail_key, width="stretch", listed=True)
        top, pick = st.columns([3, 1], vertical_alignment="center") if mode == SELECT else (st.container(), None)
        with top:
            if p.is_primary:
                st.markdown(":orange-badge[:material/star: Primary]")
            else:
                st.button("Set as primary", icon=":material/star_border:", key=f"primary.{p.id}", type="tertiary",
                          on_click=set_primary, args=(p.id,))
        if pick is not None:
            st.session_state[f"sel.{p.id}"] = p.id in selection(cid)
            pick.checkbox("Select", key=f"sel.{p.id}", on_change=toggle_selected, args=(cid, p.id),
                          label_visibility="collapsed", help="Select for download or delete")
        if mode == ARRANGE:
            m1, m2, m3 = st.columns(3)
            m1.button("", key=f"mvfirst.{p.id}", on_click=move, args=(p.id, 0), disabled=index == 0,
                      icon=":material/first_page:", help="Move to the front of the gallery", width="stretch")
            m2.button("", key=f"mvup.{p.id}", on_click=move, args=(p.id, index - 1), disabled=index == 0,
                      icon=":material/chevron_left:", help="Move one place earlier", width="stretch")
            m3.button("", key=f"mvdown.{p.id}", on_click=move, args=(p.id, index + 1), disabled=index + 1 >= total,
                      icon=":material/chevron_right:", help="Move one place later", width="stretch")
        else:
            st.button("Open", key=f"view.{p.id}", width="stretch", on_click=open_view, args=(p.id,))


def gallery(character: Character) -> None:
    """The paged gallery. A fragment: its own actions (primary, select, move) rerun only the gallery."""
    cid = character.id
    page_key = k(cid, "page")
    page_no = st.session_state.get(page_key, 0)
    page = s.portraits.list(cid, limit=PAGE_SIZE, offset=page_no * PAGE_SIZE)
    if page.total and not page.items and page_no > 0:
        st.session_state[page_key] = page_no = max(0, (page.total - 1) // PAGE_SIZE)
        page = s.portraits.list(cid, limit=PAGE_SIZE, offset=page_no * PAGE_SIZE)
    pages = max(1, -(-page.total // PAGE_SIZE))
    star, head, nav = st.columns([0.5, 2, 3], vertical_alignment="center")
    primary = next((p for p in page.items if p.is_primary), None)
    if primary is None and page.total:  # on another page of the gallery (or none yet)
        primary = s.portraits.primary(cid)
    with star:
        if primary is not None:
            image(s, primary.thumbnail_key, width="stretch", listed=True, caption="★ Primary portrait")
    head.subheader(f"Gallery · {page.total} portrait{'s' if page.total != 1 else ''}")
    if page.total == 0:
        st.info("No portraits yet: pick a pose above and press **Generate portrait**.", icon=":material/photo_camera:")
        return
    with nav:
        p1, p2, p3 = st.columns([1.3, 1.4, 1.3], vertical_alignment="center")
        p1.button("Previous", disabled=page_no == 0, key="gal_prev", width="stretch", icon=":material/chevron_left:",
                  on_click=st.session_state.__setitem__, args=(page_key, page_no - 1))
        p2.markdown(f"<div style='text-align:center'>Page {page_no + 1} of {pages}</div>", unsafe_allow_html=True)
        p3.button("Next", disabled=page_no + 1 >= pages, key="gal_next", icon=":material/chevron_right:",
                  icon_position="right", width="stretch", on_click=st.session_state.__setitem__,
                  args=(page_key, page_no + 1))
    mode = st.segmented_control("Gallery mode", [SELECT, ARRANGE], key=k(cid, "mode"), label_visibility="collapsed",
                                format_func={SELECT: ":material/check_box: Select",
                                             ARRANGE: ":material/swap_horiz: Arrange"}.get,
                                help="Select: tick portraits to download or delete together. "
                                     "Arrange: move portraits earlier or later in the gallery.")
    selection_bar(cid, re.sub(r"[^a-z0-9]+", "-", character.name.lower()).strip("-") or "portraits")
    cols = st.columns(COLS)
    for i, p in enumerate(page.items):
        with cols[i % COLS]:
            tile(cid, p, page_no * PAGE_SIZE + i, page.total, i, mode)
    # The gallery's dialogs belong to its fragment: opening one reruns the gallery, not the page.
    if st.session_state.get("pt_view") is not None:
        view_dialog(cid)
    elif st.session_state.get("pt_confirm_bulk"):
        confirm_bulk_delete_dialog(cid)


# -- page ------------------------------------------------------------------------------
st.title("Portraits")
character = app.require_character(s, "generate portraits")
if character is not None:
    cid = character.id
    with app.guarded("the workspace"):
        left, right = st.columns([1, 2], gap="large")
        with left:
            summary(character)
        with right:
            if character.owner == s.actor.id or s.actor.is_admin:
                controls(character)
            else:
                st.info("This is another user's public character: you can look at its portraits; only its owner "
                        "generates them. Use **Duplicate to my characters** on the Characters page to make a copy "
                        "of your own and generate portraits for it.", icon=":material/visibility:")
    with app.guarded("the jobs"):
        active_now = any(j.kind == "portrait" for j in s.jobs.active(character_id=cid))
        dismissed = st.session_state.get("pt_dismissed", set())
        if active_now or st.session_state.get("pt_watch", {}).get(cid) or any(
                j.id not in dismissed for j in recent_failures(cid)):
            # Polls the job rows while something runs; a finished job reruns the page (see jobs_panel).
            st.fragment(run_every=1.0 if active_now else None)(jobs_panel)(cid, active_now)
    with app.guarded("the gallery"):
        st.fragment(gallery)(character)
    if st.session_state.get("pt_view") is None and st.session_state.get("pt_pick_ref") == cid:
        pick_reference_dialog(cid)
