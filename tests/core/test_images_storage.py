"""Upload validation, thumbnails, content addressing and keys that cannot escape the root."""
from __future__ import annotations

import io
import platform
import sys

import pytest
from PIL import Image

from core.errors import InvalidImage, StorageError
from core import images
from core.images import decode, thumbnail, validate_upload
from core.storage import ImageStore, check_key
from tests.conftest import png_bytes


def test_a_non_image_is_refused(studio):
    with pytest.raises(InvalidImage, match="not an image"):
        studio.uploads.add(b"%PDF-1.4 definitely not a picture")


def test_a_truncated_png_is_refused():
    data = png_bytes((300, 300))
    with pytest.raises(InvalidImage, match="damaged or truncated"):
        validate_upload(data[: len(data) // 2])


def test_an_oversized_file_is_refused():
    with pytest.raises(InvalidImage, match="limit is 20 MB"):
        validate_upload(png_bytes() + b"\0" * (20 * 1024 * 1024))


def test_too_many_pixels_are_refused_before_decoding():
    big = io.BytesIO()
    Image.new("1", (8000, 6000)).save(big, "PNG")  # 48 MP, a few KB on disk
    with pytest.raises(InvalidImage, match="megapixels"):
        validate_upload(big.getvalue())


def test_other_formats_are_refused():
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, "GIF")
    with pytest.raises(InvalidImage, match="GIF images are not accepted"):
        validate_upload(gif.getvalue())


def test_exif_orientation_is_applied_and_jpeg_becomes_webp():
    img = Image.new("RGB", (40, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    checked = validate_upload(out.getvalue())
    assert (checked.width, checked.height, checked.ext) == (20, 40, "webp")
    assert Image.open(io.BytesIO(checked.data)).size == (20, 40)


def test_uploads_are_content_addressed_and_stored_once(studio):
    data = png_bytes()
    key1 = studio.uploads.add(data)
    key2 = studio.uploads.add(data)
    assert key1 == key2 and key1.startswith("local/references/") and key1.endswith(".png")
    assert [k for k, _, _ in studio.ctx.store.keys("local/references")] == [key1]
    assert studio.ctx.db.scalar("SELECT count(*) FROM uploads") == 1


@pytest.mark.parametrize("key", ["../escape.png", "/etc/passwd", "a/../../b.png", "a//b.png", "a/./b.png", "a b.png",
                                 "a\\b.png", "", "x/" * 12 + "y.png", "a/\u00e9.png"])
def test_keys_that_could_escape_the_root_are_refused(tmp_path, key):
    store = ImageStore((tmp_path / "images").as_uri())
    with pytest.raises(StorageError, match="invalid storage key"):
        store.write(key, b"x")
    with pytest.raises(StorageError):
        check_key(key)


def test_store_roundtrip_delete_is_repeatable_and_writes_are_atomic(tmp_path):
    store = ImageStore((tmp_path / "images").as_uri())
    store.write("u/portraits/c/j.png", b"abc")
    assert store.read("u/portraits/c/j.png") == b"abc" and store.exists("u/portraits/c/j.png")
    assert [k for k, *_ in store.keys()] == ["u/portraits/c/j.png"]
    assert not list((tmp_path / "images").rglob("*.part"))
    store.delete("u/portraits/c/j.png")
    store.delete("u/portraits/c/j.png")
    assert not store.exists("u/portraits/c/j.png")
    with pytest.raises(StorageError, match="missing"):
        store.read("u/portraits/c/j.png")
    assert store.signed_url("u/portraits/c/j.png") is None  # local disk serves bytes


# Where pyspng has wheels, the test extra installs it (see pyproject.toml), so CI tests both decoders.
FAST_PNG_WHEELS = (sys.platform == "linux" and platform.machine() == "x86_64") or sys.platform in ("win32", "darwin")


def test_the_test_extra_brings_the_fast_png_decoder_where_it_has_wheels():
    if FAST_PNG_WHEELS:
        assert images.fast_png() is not None


@pytest.mark.parametrize("png_decoder", ["as installed", "pillow"])
def test_thumbnails_are_webp_about_256px(png_decoder, monkeypatch):
    if png_decoder == "pillow":
        monkeypatch.setattr(images, "fast_png", lambda: None)
    for mode in ("RGB", "RGBA"):
        thumb = thumbnail(_gradient(mode, (1024, 768)))
        img = Image.open(io.BytesIO(thumb))
        assert img.format == "WEBP" and img.size == (256, 192) and img.mode == mode


def _gradient(mode: str, size: tuple[int, int]) -> bytes:
    img = Image.linear_gradient("L").resize(size).convert(mode)
    if mode == "RGBA":
        img.putalpha(Image.linear_gradient("L").rotate(90).resize(size))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1", "I;16"])
def test_decoding_gives_pillows_pixels_whichever_decoder_is_installed(mode):
    data = _gradient(mode, (40, 30)) if mode in ("RGB", "RGBA") else png_bytes((40, 30))
    if mode not in ("RGB", "RGBA"):
        out = io.BytesIO()
        Image.open(io.BytesIO(data)).convert(mode).save(out, "PNG")
        data = out.getvalue()
    fast, slow = decode(data), Image.open(io.BytesIO(data))
    assert (fast.mode, fast.size, fast.tobytes()) == (slow.mode, slow.size, slow.tobytes())


def test_portrait_images_display_in_notebooks(studio, character):
    [job] = studio.jobs.wait([studio.portraits.generate(character.id)[0].id], timeout=30)
    img = studio.portraits.image(job.result_id)
    assert isinstance(img, Image.Image) and img.size == (1024, 1024)
    assert hasattr(img, "_repr_png_") and img._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
