"""Small rendering helpers shared by the pages: images, job tiles, field errors, labels."""
from __future__ import annotations

import io
import re
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import streamlit as st
from PIL import Image

from core import Studio
from core.errors import StudioError
from core.models import ACTIVE_STATUSES, CatalogModel, Job

from ui import app

STAGES = {
    "queued": "Queued", "starting": "Starting", "submitting": "Submitting to the provider",
    "submitted": "Submitted", "generating": "Generating", "in_queue": "Waiting in the provider's queue",
    "in_progress": "Generating", "downloading": "Downloading the image", "storing": "Storing the image",
    "retrying": "Waiting to retry", "resuming": "Resuming after a restart", "completed": "Done",
    "failed": "Failed", "canceled": "Canceled",
}
STATUS_COLORS = {"queued": "gray", "running": "blue", "storing": "violet", "completed": "green",
                 "failed": "red", "canceled": "orange"}


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>:$])")


def literal(text: str) -> str:
    """User text (a name, a prompt) for Streamlit's Markdown: shown as typed, not as formatting,
    colour directives (`:red[...]`) or LaTeX."""
    return _MARKDOWN.sub(r"\\\1", text)


def plural(n: int, word: str) -> str:
    """"1 portrait", "2 portraits" (English nouns that take an s)."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def image(s: Studio, key: str | None, *, listed: bool = False, **kwargs: Any) -> None:
    """A stored image (URL or bytes); a neutral placeholder when it is missing or unreadable.
    `listed`: the key comes from a row the studio just listed for this actor (so they may see it)."""
    st.image(display_source(s, key, kwargs.get("width"), listed=listed), **kwargs)


class _Shown:
    """Stored images as `st.image` serves them, kept in memory by (key, width).

    Given bytes, `st.image` decodes them on every run and re-encodes any that are not JPEG, PNG or GIF
    of the kind it wants (a WebP thumbnail, an RGB PNG), or wider than it shows them; it then serves
    them from a URL named by their hash. Prepared once here, the bytes pass through untouched, so a
    rerun costs a hash, and the URL stays the same, so the browser fetches nothing new. Stored images
    never change under a key (a new image gets a new key), so an entry never goes stale.
    """

    LIMIT = 96 * 1_048_576  # bytes held, all entries together

    def __init__(self) -> None:
        self._items: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: tuple[str, int], data: bytes) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = data
            self._size += len(data)
            while self._size > self.LIMIT and len(self._items) > 1:
                self._size -= len(self._items.popitem(last=False)[1])


_SHOWN = _Shown()
_WIDEST = 2 * 730  # st.image's widest rendering (its MAXIMUM_CONTENT_WIDTH): wider images are scaled to it


def prepared(data: bytes, width: int) -> bytes:
    """`data` as st.image would turn it into for this width (so that it then keeps the bytes as they are)."""
    img = Image.open(io.BytesIO(data))
    if img.format == "GIF":
        return data
    fmt = "PNG" if img.mode in {"RGBA", "LA", "P"} else "JPEG"
    if img.width <= width and img.format == fmt:
        return data
    if img.width > width:
        img = img.resize((width, int(img.height * width / img.width)), Image.BILINEAR)
    out = io.BytesIO()
    img.save(out, format=fmt, quality=90)
    return out.getvalue()


def display_source(s: Studio, key: str | None, width: Any = None, *, listed: bool = False) -> str | bytes:
    """What `st.image` gets for a stored image: a presigned URL where the store makes them, else bytes
    prepared once (see `_Shown`); the placeholder where the key is missing, hidden or unreadable.
    A prepared image is served again after the actor's access is checked, or when `listed` says the key
    comes from a listing made for this actor (a gallery page: one query for all its tiles)."""
    target = width if isinstance(width, int) and width > 0 else _WIDEST
    if key and isinstance(key, str):
        hit = _SHOWN.get((key, target))
        if hit is not None and (listed or s.images.may_see(key)):
            return hit
    src = s.images.src(key)
    if isinstance(src, str) or not key:
        return src
    try:  # src holds the bytes or a placeholder: read again to tell them apart, once per key
        data = prepared(s.images.read(key), target)
    except (StudioError, OSError, ValueError):  # hidden, unreadable, or not an image Pillow knows
        return src
    _SHOWN.put((key, target), data)
    return data


@lru_cache(maxsize=4)
def placeholder(width: int, height: int) -> bytes:
    """A neutral grey image of the given shape (e.g. 16:9 for scenes without an image yet)."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 200, 205)).save(out, "PNG")
    return out.getvalue()


def field_error(errors: dict[str, str], field: str) -> None:
    msg = errors.get(field)
    if msg:
        st.error(msg, icon=":material/error:")


def model_label(m: CatalogModel) -> str:
    tags = []
    if m.supports_i2i:
        tags.append("image-to-image")
    if m.provider_id == "offline":
        tags.append("preview")
    return m.display_name + (f"  ·  {', '.join(tags)}" if tags else "")


def stage_text(job: Job) -> str:
    stage = job.stage or job.status
    label = STAGES.get(stage, stage.replace("_", " ").capitalize())
    if job.status == "queued" and job.queue_position and stage == "queued":
        label += f" (position {job.queue_position})"
    if job.percent is not None and job.status in ACTIVE_STATUSES:
        label += f" · {job.percent:.0f}%"
    if job.progress_message and job.status == "running":  # the provider's own words (Progress.message)
        label += f" · {job.progress_message}"
    if stage == "retrying" and job.next_attempt_at is not None:
        wait = (job.next_attempt_at.replace(tzinfo=job.next_attempt_at.tzinfo or timezone.utc)
                - datetime.now(timezone.utc)).total_seconds()
        if wait > 0:
            label += f" in {wait:.0f} s"
    return label


def status_badge(status: str) -> str:
    return f":{STATUS_COLORS.get(status, 'gray')}-badge[{status}]"


def _cancel(job_id: str) -> None:
    app.attempt_later(app.studio().jobs.cancel, job_id, success="Job canceled.")


def _retry(job_id: str) -> None:
    app.attempt_later(app.studio().jobs.retry, job_id, success="Job queued again.")


def result_thumbnail_key(s: Studio, job: Job) -> str | None:
    if job.status != "completed" or not job.result_id:
        return None
    try:
        if job.kind == "portrait":
            return s.portraits.get(job.result_id).thumbnail_key
        if job.scene_id:
            return s.scenes.get(job.scene_id).thumbnail_key
    except StudioError:
        return None
    return None


def takes_seed(s: Studio, model_id: str | None, inputs: dict[str, Any] | None = None) -> bool:
    """Whether a model takes a seed: its catalog capabilities; a model no longer in the catalog by
    what was sent to it (`inputs`), else yes."""
    if model_id:
        try:
            return s.models.get(model_id).capabilities.supports_seed
        except StudioError:
            pass
    return "seed" in inputs if inputs else True


def seed_note(s: Studio, job: Job) -> str:
    """" · seed N" for a model that takes a seed."""
    return f" · seed {job.request.seed}" if takes_seed(s, job.model_id) else ""


def job_tile(s: Studio, job: Job, *, key: str) -> None:
    """One job as a tile: its real stage and percent while active, the image when done,
    the provider's message and Retry when failed."""
    with st.container(border=True, key=f"jobtile-{key}-{job.id}"):
        if job.is_active:
            if job.percent is not None:
                st.progress(min(100, max(0, int(job.percent))), text=stage_text(job))
            else:
                st.markdown(f":material/hourglass_top: **{stage_text(job)}**")
            st.caption(f"{job.request.model_name or job.model_key}{seed_note(s, job)}"
                       + (f" · attempt {job.attempts}/{job.max_attempts}" if job.attempts > 1 else ""))
            if job.last_error and job.stage == "retrying":
                st.caption(f"Last error: {job.last_error}")
            st.button("Cancel", key=f"{key}.cancel.{job.id}", on_click=_cancel, args=(job.id,),
                      disabled=job.status == "storing", icon=":material/close:")
        elif job.status == "completed":
            image(s, result_thumbnail_key(s, job), width="stretch")
            st.caption(f":green[:material/check_circle:] Done{seed_note(s, job)}")
        elif job.status == "failed":
            st.error(job.last_error or "The job failed.", icon=":material/error:")
            st.button("Retry", key=f"{key}.retry.{job.id}", on_click=_retry, args=(job.id,), icon=":material/refresh:")
        else:
            st.caption(":orange[:material/cancel:] Canceled")
            st.button("Retry", key=f"{key}.retry.{job.id}", on_click=_retry, args=(job.id,), icon=":material/refresh:")


def when(dt: datetime | None) -> str:
    if dt is None:
        return ""
    return dt.strftime("%Y-%m-%d %H:%M:%S")
