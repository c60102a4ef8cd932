"""Stored images as the pages hand them to st.image: prepared once, access checked on every use."""
from __future__ import annotations

import io

from PIL import Image

from core.images import placeholder
from ui.widgets import display_source


def fmt(data: bytes) -> tuple[str, tuple[int, int]]:
    img = Image.open(io.BytesIO(data))
    return img.format, img.size


def test_thumbnails_are_prepared_once_in_the_format_st_image_keeps(studio):
    mia = studio.characters.create({"name": "Mia", "description": "A cheerful barista"})
    [job] = studio.portraits.generate(mia.id)
    p = studio.portraits.get(studio.jobs.wait([job.id], timeout=60)[0].result_id)
    assert fmt(studio.ctx.store.read(p.thumbnail_key))[0] == "WEBP"  # st.image would re-encode it every run
    first = display_source(studio, p.thumbnail_key, "stretch")
    assert fmt(first)[0] == "JPEG"
    small = display_source(studio, p.image_key, 160)
    assert fmt(small) == ("JPEG", (160, 160))  # st.image scales wider images down to the width it shows
    studio.ctx.store.delete(p.thumbnail_key)
    assert display_source(studio, p.thumbnail_key, "stretch") is first  # not read or encoded again


def test_a_prepared_image_is_still_checked_for_each_viewer(studio):
    alice = studio.as_user("alice")
    secret = alice.characters.create({"name": "Sam", "description": "A spy"})
    [job] = alice.portraits.generate(secret.id)
    p = alice.portraits.get(alice.jobs.wait([job.id], timeout=60)[0].result_id)
    assert fmt(display_source(alice, p.thumbnail_key))[0] == "JPEG"  # prepared and kept for alice
    assert display_source(studio.as_user("bob"), p.thumbnail_key) == placeholder()
    assert display_source(alice, "alice/portraits/none.webp") == placeholder()
