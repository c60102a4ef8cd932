"""Scenes: the character's scenes as cards; create/edit in a dialog; generate a scene image; delete."""
from __future__ import annotations

import streamlit as st

from core.errors import StudioError
from core.models import Scene, SceneCreate
from core.validation import text_limit
from ui import app, lightbox
from ui.widgets import field_error, image, job_tile, literal, placeholder

app.require_frame()
s = app.studio()
COLS = 3


def open_editor(scene_id: str | None) -> None:
    st.session_state["sc_edit"] = scene_id or "new"
    st.session_state.pop("sc_errors", None)


def close_editor() -> None:
    st.session_state.pop("sc_edit", None)
    st.session_state.pop("sc_errors", None)


def generate(scene_id: str) -> None:
    job = app.attempt_later(app.studio().scenes.generate_image, scene_id)
    if job is not None:
        st.session_state.setdefault("sc_watch", {})[scene_id] = job.id


def ask_delete(scene_id: str) -> None:
    st.session_state["sc_confirm_delete"] = scene_id


def clear_delete() -> None:
    st.session_state.pop("sc_confirm_delete", None)


def delete_scene(scene_id: str) -> None:
    clear_delete()
    app.attempt_later(app.studio().scenes.delete, scene_id, success="Scene deleted.")


def save_scene(cid: str, scene_id: str | None) -> None:
    """Form callback: create or update; errors stay in the dialog next to their fields."""
    prefix = f"sc.{scene_id or 'new'}"
    get = st.session_state.get
    data = {"name": get(f"{prefix}.name", ""), "description": get(f"{prefix}.description", ""),
            "prompt": get(f"{prefix}.prompt", ""),
            "starters": [x.strip() for x in (get(f"{prefix}.starters") or "").splitlines() if x.strip()],
            "system_prompt": get(f"{prefix}.system_prompt") or None, "priority": int(get(f"{prefix}.priority") or 0)}
    studio = app.studio()

    def save() -> None:
        if scene_id:
            studio.scenes.update(scene_id, data)
        else:
            studio.scenes.create(cid, data)

    if not app.save_with_errors("sc_errors", save):
        return
    close_editor()
    app.flash("Scene saved." if scene_id else "Scene created.")


def most(field: str) -> int:
    """The longest text the core takes for a scene field (shown as the field's counter)."""
    return text_limit(SceneCreate, field)


@st.dialog("Scene", width="large", on_dismiss=close_editor)
def editor_dialog(cid: str, scene: Scene | None) -> None:
    if not st.session_state.get("sc_edit"):
        st.rerun()  # saved: close the dialog
    errs = st.session_state.get("sc_errors", {})
    prefix = f"sc.{scene.id if scene else 'new'}"
    with st.form(f"{prefix}.form", border=False):
        st.text_input("Name", value=scene.name if scene else "", key=f"{prefix}.name", max_chars=most("name"),
                      placeholder="e.g. Rainy morning at the cafe")
        field_error(errs, "name")
        st.text_area("Description", value=scene.description if scene else "", key=f"{prefix}.description", height=100,
                     max_chars=most("description"))
        field_error(errs, "description")
        st.text_area("Image prompt", value=scene.prompt if scene else "", key=f"{prefix}.prompt",
                     placeholder="What the scene image shows", height=80, max_chars=most("prompt"))
        field_error(errs, "prompt")
        st.text_area("Conversation starters (one per line)", value="\n".join(scene.starters) if scene else "",
                     key=f"{prefix}.starters")
        field_error(errs, "starters")
        st.text_area("System prompt", value=(scene.system_prompt or "") if scene else "", key=f"{prefix}.system_prompt",
                     max_chars=most("system_prompt"))
        field_error(errs, "system_prompt")
        st.number_input("Priority (higher shows first)", min_value=-1000, max_value=1000,
                        value=scene.priority if scene else 0, step=1, key=f"{prefix}.priority")
        field_error(errs, "priority")
        field_error(errs, "_")
        st.form_submit_button("Save scene" if scene else "Create scene", type="primary", on_click=save_scene,
                              args=(cid, scene.id if scene else None))


@st.dialog("Delete scene?", on_dismiss=clear_delete)
def delete_dialog(scene: Scene) -> None:
    if st.session_state.get("sc_confirm_delete") != scene.id:
        st.rerun()  # answered: close the dialog
    st.write(f"Delete the scene **{literal(scene.name)}** and its image? This cannot be undone.")
    c1, c2 = st.columns(2)
    c1.button("Delete", type="primary", key="sc_delete_yes", on_click=delete_scene, args=(scene.id,), width="stretch")
    c2.button("Cancel", key="sc_delete_no", on_click=clear_delete, width="stretch")


def scene_jobs(cid: str) -> dict[str, object]:
    """The latest job per scene that this session started or that is running."""
    out = {j.scene_id: j for j in s.jobs.active(character_id=cid) if j.kind == "scene"}
    for scene_id, job_id in st.session_state.get("sc_watch", {}).items():
        if scene_id not in out:
            try:
                job = s.jobs.get(job_id)
            except StudioError:
                continue
            if job.character_id == cid and job.status != "completed":
                out[scene_id] = job
    return out


def cards(cid: str, polling: bool) -> None:
    scenes = s.scenes.list(cid)
    jobs = scene_jobs(cid)
    now_active = {sid for sid, j in jobs.items() if j.is_active}
    before = st.session_state.get(f"sc_active.{cid}")
    st.session_state[f"sc_active.{cid}"] = now_active
    if (before is not None and before - now_active) or (now_active and not polling):
        st.rerun()  # a scene image finished (show it), or a job started here (start polling)
    if not scenes:
        st.info("No scenes yet: press **New scene** to describe a place or situation for this character.",
                icon=":material/landscape:")
        return
    cols = st.columns(COLS)
    for i, scene in enumerate(scenes):
        with cols[i % COLS].container(border=True):
            job = jobs.get(scene.id)
            if job is not None and job.status != "completed":
                job_tile(s, job, key=f"sc.tile.{scene.id}")
            elif scene.thumbnail_key:
                image(s, scene.thumbnail_key, width="stretch")
            else:
                st.image(placeholder(256, 144), width="stretch")
            if scene.image_key:
                seed = f" · seed {scene.recipe.seed if scene.recipe.seed is not None else '?'}" if lightbox.takes_seed(s, scene.recipe) else ""
                st.caption(f":material/image: Scene image{seed}")
            elif job is None:
                st.caption("No image yet: press **Generate scene image**.")
            st.markdown(f"**{literal(scene.name)}**" + (f"  :gray-badge[priority {scene.priority}]" if scene.priority else ""))
            if scene.description:
                st.caption(scene.description[:160] + ("…" if len(scene.description) > 160 else ""))
            if scene.starters:
                st.caption(f"{len(scene.starters)} starter(s): “{scene.starters[0][:60]}”")
            busy = job is not None and job.is_active
            st.button("Generate scene image", key=f"gen.{scene.id}", on_click=generate, args=(scene.id,),
                      icon=":material/auto_awesome:", type="primary", disabled=busy, width="stretch")
            b0, b1, b2 = st.columns(3)
            # The cards are a fragment and the dialogs belong to the whole page: a click opens its dialog
            # with a rerun of the page, not of the fragment alone.
            if scene.image_key and b0.button("Open", key=f"open.{scene.id}", width="stretch",
                                             icon=":material/open_in_full:"):
                lightbox.open_image("scene", scene.id)
                st.rerun()
            if b1.button("Edit", key=f"edit.{scene.id}", width="stretch", icon=":material/edit:"):
                open_editor(scene.id)
                st.rerun()
            if b2.button("Delete", key=f"del.{scene.id}", width="stretch", icon=":material/delete:"):
                ask_delete(scene.id)
                st.rerun()


st.title("Scenes")
character = app.require_character(s, "add scenes")
if character is not None:
    cid = character.id
    head, btn = st.columns([4, 1], vertical_alignment="center")
    head.markdown(f"Scenes of **{literal(character.name)}**. A scene image uses the primary portrait as reference when an "
                  "image-to-image model is available.")
    btn.button("New scene", type="primary", icon=":material/add:", on_click=open_editor, args=(None,),
               width="stretch")
    with app.guarded("the scenes"):
        active = any(j.kind == "scene" for j in s.jobs.active(character_id=cid))
        st.fragment(run_every=1.0 if active else None)(cards)(cid, active)
    editing = st.session_state.get("sc_edit")
    if editing:
        scene = None
        if editing != "new":
            scene = app.attempt(s.scenes.get, editing)
        if editing == "new" or scene is not None:
            editor_dialog(cid, scene)
    elif st.session_state.get(lightbox.SHOWN) is not None:
        lightbox.image_dialog(s)
    elif st.session_state.get("sc_confirm_delete"):
        scene = app.attempt(s.scenes.get, st.session_state["sc_confirm_delete"])
        if scene is not None:
            delete_dialog(scene)
        else:
            clear_delete()
