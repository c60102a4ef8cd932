"""Small list thumbnails, made once per stored image and width (not decoded and resized on every rerun).

`st.image(bytes, width=64)` makes Streamlit open, resize and re-encode the image on every script run;
a list of 30 characters paid that 30 times per rerun. Stored image keys never change content (each
names one job's result), so the small copy is cached by key. URLs (S3, presigned) pass through.
"""
from __future__ import annotations

import io
import threading

import streamlit as st
from PIL import Image

from core import Studio

# Exactly the shown width: a larger image makes Streamlit decode, resize and re-encode it on every run again.
SCALE = 1
MAX_CACHED = 4096  # about 10 KB each
_SMALL: dict[tuple[str, int], bytes] = {}  # (image key, pixels) -> PNG, shared by all sessions of the process
_LOCK = threading.Lock()


def small_image(s: Studio, key: str | None, width: int) -> None:
    """Show a stored image `width` CSS pixels wide; a placeholder when missing or not the user's to see."""
    if not key or not s.images.may_see(key):
        key = ""  # the placeholder, cached like an image
    pixels = width * SCALE
    small = _SMALL.get((key, pixels))
    if small is None:
        src = s.images.src(key or None)
        if isinstance(src, str):  # a URL (S3, presigned and expiring): the browser fetches and caches it
            st.image(src, width=width)
            return
        small = _shrink(src, pixels)
        if small is None:
            st.image(src, width=width)
            return
        with _LOCK:
            if len(_SMALL) >= MAX_CACHED:
                _SMALL.pop(next(iter(_SMALL)))  # the oldest
            _SMALL[(key, pixels)] = small
    st.image(small, width=width)


def _shrink(data: bytes, pixels: int) -> bytes | None:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.thumbnail((pixels, pixels * 4))
            out = io.BytesIO()
            # The format Streamlit's "auto" picks for such an image (PNG with alpha, else JPEG), so it passes as is.
            if img.mode in ("RGBA", "LA", "P"):
                img.convert("RGBA").save(out, "PNG")
            else:
                img.convert("RGB").save(out, "JPEG", quality=88)
    except (OSError, ValueError):  # not decodable: shown as it is (Streamlit's own error path)
        return None
    return out.getvalue()
