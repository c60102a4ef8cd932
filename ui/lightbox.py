"""The lightbox: one stored image shown large with its recipe and a download, pinned to the image's id.

Portraits open it from the gallery (with their actions and previous/next, pages/portraits.py), scene
images from their cards and finished jobs from the Queue (`open_image` + `image_dialog`). What is shown
is named by id, never by a place in a list, so a job that finishes while it is open moves nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import streamlit as st

from core import Studio
from core.errors import StudioError
from core.models import Recipe
from ui import widgets
from ui.widgets import image, literal, when

SHOWN = "lightbox"  # session state: the `Shown` image of `image_dialog`, or absent


@dataclass(frozen=True)
class Shown:
    kind: Literal["portrait", "scene", "cell"]
    id: str  # a portrait id, a scene id (a scene has one image) or a comparison cell's job id


@dataclass(frozen=True)
class Picture:
    """What the lightbox shows of one stored image."""

    image_key: str
    title: str
    prompt: str
    recipe: Recipe
    width: int | None
    height: int | None
    created_at: datetime | None


def takes_seed(s: Studio, recipe: Recipe) -> bool:
    """Whether the image's model takes a seed (see `ui.widgets.takes_seed`)."""
    return widgets.takes_seed(s, recipe.model_id, recipe.inputs)


def recipe_lines(s: Studio, r: Recipe, width: int | None, height: int | None,
                 created_at: datetime | None) -> list[tuple[str, str]]:
    rows = [("Model", f"{r.model_name or r.model_key or '?'} ({r.provider or '?'})"),
            ("Mode", "image-to-image" if r.mode == "i2i" else "text-to-image")]
    if takes_seed(s, r):
        rows.append(("Seed", "" if r.seed is None else str(r.seed)))
    if width and height:
        rows.append(("Size", f"{width} × {height}"))
    rows += [("Provider time", f"{r.provider_ms / 1000:.1f} s" if r.provider_ms is not None else "unknown"),
             ("Created", when(created_at))]
    if r.presets:
        rows.append(("Presets", ", ".join(f"{k}: {v}" for k, v in r.presets.items())))
    if r.reference_hash:
        rows.append(("Reference", f"sha256 {r.reference_hash[:12]}…"))
    return rows


def recipe(s: Studio, pic: Picture) -> None:
    """The recipe list, the prompt and the final prompt."""
    st.markdown("\n".join(f"- **{label}:** {value}"
                          for label, value in recipe_lines(s, pic.recipe, pic.width, pic.height, pic.created_at)))
    st.markdown("**Prompt:** " + (literal(pic.prompt) if pic.prompt else "_(none)_"))
    with st.expander("Final prompt sent to the provider"):
        st.code(pic.recipe.final_prompt, language=None, wrap_lines=True)


def download_button(read, file_name: str, *, key: str, where: Any = st) -> None:
    """A download read only when clicked (`read` returns the bytes; Streamlit calls it on another thread)."""
    where.download_button("Download", data=read, file_name=file_name, mime="image/png", icon=":material/download:",
                          key=key, width="stretch")


# -- scene images and finished jobs -------------------------------------------------------
def open_image(kind: Literal["portrait", "scene", "cell"], item_id: str) -> None:
    st.session_state[SHOWN] = Shown(kind, item_id)


def close_image() -> None:
    st.session_state.pop(SHOWN, None)


def _picture(s: Studio, shown: Shown) -> Picture | None:
    try:
        if shown.kind == "portrait":
            p = s.portraits.get(shown.id)
            return Picture(p.image_key, "Portrait", p.prompt, p.recipe, p.width, p.height, p.created_at)
        if shown.kind == "cell":
            c = s.compare.cell(shown.id)
            if not c.done:
                return None
            return Picture(c.image_key, f"Comparison cell: {c.model_name}", c.recipe.prompt, c.recipe, c.width,
                           c.height, c.finished_at)
        scene = s.scenes.get(shown.id)
    except StudioError:
        return None
    if not scene.image_key:
        return None
    return Picture(scene.image_key, scene.name, scene.recipe.prompt or scene.prompt, scene.recipe,
                   scene.recipe.width, scene.recipe.height, scene.updated_at)


def _read(s: Studio, shown: Shown):
    def read() -> bytes:
        if shown.kind == "portrait":
            return s.portraits.download(shown.id)[0]
        if shown.kind == "cell":
            return s.compare.download(shown.id)[0]
        return s.images.read(s.scenes.get(shown.id).image_key)
    return read


@st.dialog("Image", width="large", on_dismiss=close_image)
def image_dialog(s: Studio) -> None:
    """The open scene image or job result (call when `SHOWN` is set)."""
    shown = st.session_state.get(SHOWN)
    pic = _picture(s, shown) if shown is not None else None
    if pic is None:
        close_image()
        st.warning("This image is no longer there.")
        return
    left, right = st.columns([3, 2], gap="medium")
    with left:
        image(s, pic.image_key, width="stretch")
    with right:
        st.markdown(f"**{literal(pic.title)}**")
        recipe(s, pic)
        download_button(_read(s, shown), f"{shown.kind}-{shown.id[:8]}.png", key="lightbox_download")
        if shown.kind == "cell":
            cell_actions(s, shown.id)


def cell_actions(s: Studio, job_id: str) -> None:
    """A comparison cell's "Keep" (a portrait of the character) and "Set as primary"."""
    from ui import app

    kept = s.compare.cell(job_id).kept_portrait_id
    a1, a2 = st.columns(2)
    a1.button("Kept in the gallery" if kept else "Keep", key="lightbox_keep", disabled=bool(kept),
              icon=":material/bookmark_add:", width="stretch",
              on_click=lambda: app.attempt_later(app.studio().compare.keep, job_id, success="Kept in the gallery."))
    a2.button("Set as primary", key="lightbox_primary", icon=":material/star:", width="stretch",
              on_click=lambda: app.attempt_later(app.studio().compare.set_primary, job_id,
                                                 success="Kept and set as the primary portrait."))
