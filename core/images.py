"""Image checks and conversions: upload validation, thumbnails, hashing."""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import ImageTooLarge, InvalidImage

# The limits of every image the studio takes in: uploads and provider results alike.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
UPLOAD_FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}
THUMBNAIL_SIZE = 256
CONTENT_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg", "jpg": "image/jpeg"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class CheckedImage:
    """An image ready to store: normalised bytes plus what we know about them."""

    data: bytes
    ext: str
    content_type: str
    width: int
    height: int
    sha256: str


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says, read without decoding a pixel."""

    format: str
    width: int
    height: int


def read_header(data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_PIXELS) -> ImageHeader:
    """The format and size of image bytes, with the byte and pixel limits checked from the header
    alone: a decompression bomb (a small file of huge dimensions) is refused before it is decoded.

    Raises ImageTooLarge over a limit, InvalidImage when the bytes are not an image Pillow reads.
    """
    if not data:
        raise InvalidImage("The image is empty.")
    if len(data) > max_bytes:
        raise ImageTooLarge(f"The image is {len(data) / 1_048_576:.1f} MB; the limit is {max_bytes // 1_048_576} MB.")
    limit = f"the limit is {max_pixels // 1_000_000} megapixels"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is lower
            img = Image.open(io.BytesIO(data))  # lazy: reads the header only
    except Image.DecompressionBombError:  # Pillow's hard limit, far above ours
        raise ImageTooLarge(f"The image has too many pixels to open; {limit}.") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise InvalidImage("The file is not an image the studio can read (PNG, JPEG or WebP expected).") from None
    width, height = img.size
    fmt = img.format or "unknown"
    img.close()
    if width * height > max_pixels:
        raise ImageTooLarge(f"The image has {width}x{height} pixels; {limit}.")
    return ImageHeader(fmt, width, height)


def validate_upload(data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_PIXELS) -> CheckedImage:
    """Check an uploaded reference image and normalise it (EXIF orientation applied).

    PNG stays PNG; JPEG and WebP are stored as WebP. The hash is of the uploaded bytes, so the
    same upload is stored once.
    """
    if not data:
        raise InvalidImage("The upload is empty.")
    header = read_header(data, max_bytes=max_bytes, max_pixels=max_pixels)
    fmt = header.format
    if fmt not in UPLOAD_FORMATS:
        raise InvalidImage(f"{fmt} images are not accepted; upload PNG, JPEG or WebP.")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception:  # noqa: BLE001 - truncated or corrupt files raise several types
        raise InvalidImage("The image is damaged or truncated and cannot be read.") from None
    img = ImageOps.exif_transpose(img)
    out = io.BytesIO()
    if fmt == "PNG":
        img.save(out, "PNG", optimize=False)
        ext = "png"
    else:
        if img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        img.save(out, "WEBP", quality=92, method=4)
        ext = "webp"
    return CheckedImage(out.getvalue(), ext, CONTENT_TYPES[ext], img.width, img.height, sha256(data))


def thumbnail(source: bytes | Image.Image, size: int = THUMBNAIL_SIZE) -> bytes:
    """A WebP thumbnail about `size` px on the long side, from image bytes or a decoded image."""
    return _thumbnail(source if isinstance(source, Image.Image) else decode(source), size)


@lru_cache(maxsize=1)
def fast_png():
    """pyspng, when installed (the `fast` extra): it decodes PNG in about half Pillow's time.
    Imported on first use, as it brings numpy (some 50-100 ms at start-up)."""
    try:
        import pyspng
    except ImportError:
        return None
    return pyspng


def decode(data: bytes) -> Image.Image:
    """The pixels of image bytes. 8-bit RGB and RGBA PNGs (what providers return) go through
    pyspng when it is installed; everything else, and any PNG it refuses, through Pillow."""
    # IHDR follows the signature: width, height, bit depth, colour type (2 RGB, 6 RGBA).
    spng = fast_png() if data[:8] == PNG_SIGNATURE and data[24:26] in (b"\x08\x02", b"\x08\x06") else None
    if spng is not None:
        try:
            return Image.fromarray(spng.load(data))
        except Exception:  # noqa: BLE001 - Pillow decides what is really broken
            pass
    return open_image(data)


def _thumbnail(img: Image.Image, size: int) -> bytes:
    mode = "RGBA" if "A" in img.getbands() else "RGB"
    if img.mode != mode:
        img = img.convert(mode)
    factor = max(img.size) // size
    # An integer box reduce first (antialiased, a fraction of LANCZOS's cost); both make a new image.
    img = img.reduce(factor) if factor > 1 else img.copy()
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, "WEBP", quality=80, method=2)
    return out.getvalue()


def to_png(data: bytes) -> tuple[bytes, int, int]:
    """Result bytes as PNG (re-encoded only when they are not PNG already)."""
    with Image.open(io.BytesIO(data)) as img:
        if img.format == "PNG":
            return data, img.width, img.height
        out = io.BytesIO()
        img.save(out, "PNG")
        return out.getvalue(), img.width, img.height


def open_image(data: bytes) -> Image.Image:
    """A PIL image (displays itself in notebooks)."""
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@lru_cache(maxsize=1)
def placeholder(size: int = THUMBNAIL_SIZE) -> bytes:
    """A neutral grey image shown where a stored image cannot be read."""
    img = Image.new("RGB", (size, size), (200, 200, 205))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()
