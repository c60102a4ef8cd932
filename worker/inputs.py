"""The job input: checked in full before any work, with a message the studio shows as the job's error."""
from __future__ import annotations

import base64
import binascii
import io
import random
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image, UnidentifiedImageError

from worker.config import WorkerConfig

MAX_PROMPT_CHARS = 10_000


class InputError(ValueError):
    """The job's input cannot be run; the message says which field and why."""


@dataclass(frozen=True)
class JobInput:
    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    steps: int
    guidance: float
    seed: int
    strength: float
    reference: str | None  # base64, a data URI or an http(s) URL; decoded by `load_reference`


def parse_input(raw: Any, config: WorkerConfig) -> JobInput:
    """Validate a job's `input`; raises InputError naming the field. Unknown fields are ignored
    (a catalog's `input_defaults` may carry fields meant for other workers)."""
    if not isinstance(raw, dict):
        raise InputError("the job input must be a JSON object")
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("prompt is required: a non-empty string")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(f"prompt is {len(prompt)} characters; at most {MAX_PROMPT_CHARS}")
    negative = raw.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        raise InputError("negative_prompt must be a string")
    if negative is not None and len(negative) > MAX_PROMPT_CHARS:
        raise InputError(f"negative_prompt is {len(negative)} characters; at most {MAX_PROMPT_CHARS}")
    width = _int(raw, "width", 1024, 64, config.max_side)
    height = _int(raw, "height", 1024, 64, config.max_side)
    for name, value in (("width", width), ("height", height)):
        if value % 8:
            raise InputError(f"{name} must be a multiple of 8, not {value}")
    if width * height > config.max_pixels:
        raise InputError(f"{width}x{height} is {width * height:,} pixels; this worker makes at most "
                         f"{config.max_pixels:,} (WORKER_MAX_PIXELS)")
    steps = _int(raw, "steps", config.default_steps, 1, config.max_steps)
    guidance = _float(raw, "guidance", config.default_guidance, 0.0, 50.0)
    seed = raw.get("seed")
    if seed is None or seed == -1:
        seed = random.randrange(2**32)
    seed = _int({"seed": seed}, "seed", 0, 0, 2**64 - 1)
    strength = _float(raw, "strength", config.default_strength, 0.01, 1.0)
    image = raw.get("image")
    if image is not None and (not isinstance(image, str) or not image.strip()):
        raise InputError("image must be a base64 string, a data URI or an http(s) URL")
    if image is not None and int(steps * strength) < 1:  # image-to-image runs steps x strength of them
        raise InputError(f"with a reference, steps x strength must be at least 1 ({steps} x {strength:g})")
    if isinstance(image, str) and not image.startswith(("http://", "https://")):
        # base64 grows bytes by a third: refuse an oversized reference before decoding it
        if len(image) > config.max_reference_bytes * 4 // 3 + 1024:
            raise InputError(f"the reference image is larger than {config.max_reference_bytes:,} bytes "
                             "(WORKER_MAX_REFERENCE_BYTES)")
    return JobInput(prompt=prompt, negative_prompt=negative or None, width=width, height=height, steps=steps,
                    guidance=guidance, seed=seed, strength=strength, reference=image)


def load_reference(value: str, config: WorkerConfig) -> Image.Image:
    """The reference as an RGB image: base64, a data URI, or an http(s) URL downloaded here."""
    if value.startswith(("http://", "https://")):
        data = _download(value, config)
    else:
        encoded = value.split(",", 1)[1] if value.startswith("data:") else value
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InputError("the reference image is not valid base64 (nor a data URI or an http(s) URL)") from None
    if len(data) > config.max_reference_bytes:
        raise InputError(f"the reference image is {len(data):,} bytes; at most {config.max_reference_bytes:,} "
                         "(WORKER_MAX_REFERENCE_BYTES)")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.width * probe.height > 4 * config.max_pixels:
                raise InputError(f"the reference image is {probe.width}x{probe.height}; too large to decode")
            probe.load()
            return probe.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError):
        raise InputError("the reference image cannot be read (not a PNG, JPEG or WebP image, or truncated)") from None


def _download(url: str, config: WorkerConfig) -> bytes:
    shown = url.split("?", 1)[0]  # a presigned URL's query is a credential: never in a message
    try:
        with httpx.stream("GET", url, timeout=config.reference_timeout, follow_redirects=True) as response:
            if response.status_code != 200:
                raise InputError(f"the reference image URL {shown} answered HTTP {response.status_code}")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > config.max_reference_bytes:
                    raise InputError(f"the reference image at {shown} is larger than "
                                     f"{config.max_reference_bytes:,} bytes (WORKER_MAX_REFERENCE_BYTES)")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise InputError(f"the reference image URL {shown} cannot be read: {type(exc).__name__}") from None


def _int(raw: dict, name: str, default: int, low: int, high: int) -> int:
    value = raw.get(name)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be an integer, not {value!r}")
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _float(raw: dict, name: str, default: float, low: float, high: float) -> float:
    value = raw.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number, not {value!r}")
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low:g} and {high:g}, not {value:g}")
    return float(value)
