"""The offline preview provider: no key, no network; deterministic images drawn with Pillow."""
from __future__ import annotations

import asyncio
import io
import random
import textwrap
import time

from PIL import Image, ImageDraw, ImageFont, ImageOps

from core.hookspecs import hookimpl
from core.models import Capabilities, ModelSpec, ReferenceMapping
from core.provider import GeneratedImage, GenerationRequest, GenerationResult, Provider

plugin_api_version = "1.2"  # the plugin API the built-ins are written for, declared as a third party does

TXT2IMG = "offline/preview"
I2I = "offline/preview-i2i"


class OfflineProvider(Provider):
    """Renders a preview from prompt, seed and size; blends the reference in image-to-image mode."""

    id = "offline"
    display_name = "Offline preview"
    preview = True
    default_concurrency = 8

    def default_models(self) -> list[ModelSpec]:
        return [
            ModelSpec(model_key=TXT2IMG, display_name="Offline preview", priority=-100,
                      capabilities=Capabilities(supports_txt2img=True),
                      notes="Preview images drawn locally; add a provider key for real portraits."),
            ModelSpec(model_key=I2I, display_name="Offline preview (reference blend)", priority=-100,
                      capabilities=Capabilities(supports_txt2img=True, supports_i2i=True, max_references=1,
                                                reference=ReferenceMapping(field="image", form="single", limit=1)),
                      notes="Blends the reference image into the preview."),
        ]

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        inputs = {**request.input_defaults, "prompt": request.prompt, "width": request.width,
                  "height": request.height, "seed": request.seed}
        if request.references:
            inputs["image"] = f"sha256:{request.references[0].sha256}"
        reference = request.references[0].data if request.references else None
        started = time.perf_counter()
        img, data = await asyncio.to_thread(_render, request.prompt, request.seed, request.width, request.height, reference)
        elapsed = (time.perf_counter() - started) * 1000
        return GenerationResult(images=[GeneratedImage(data, "image/png", request.width, request.height, pixels=img)],
                                inputs=inputs, seed=request.seed, provider_ms=elapsed)


def _color(rng: random.Random, lo: int = 30, hi: int = 230) -> tuple[int, int, int]:
    return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))


def render(prompt: str, seed: int, width: int, height: int, reference: bytes | None = None) -> bytes:
    """A deterministic PNG: same inputs give identical bytes; another seed another picture."""
    return _render(prompt, seed, width, height, reference)[1]


def _render(prompt: str, seed: int, width: int, height: int, reference: bytes | None) -> tuple[Image.Image, bytes]:
    """The drawn image and its PNG bytes."""
    rng = random.Random(f"{seed}\x00{prompt}")
    gradient = Image.linear_gradient("L").rotate(rng.randint(0, 359)).resize((width, height))
    img = ImageOps.colorize(gradient, _color(rng, 10, 120), _color(rng, 120, 250)).convert("RGB")
    draw = ImageDraw.Draw(img, "RGBA")
    short = min(width, height)
    for _ in range(12):
        x, y = rng.randint(0, width), rng.randint(0, height)
        r = rng.randint(short // 20, short // 5)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(*_color(rng), rng.randint(40, 110)))
    # A head-and-shoulders silhouette, so a preview reads as a portrait.
    cx, cy, head = width // 2, int(height * 0.42), short // 7
    tone = (*_color(rng, 20, 90), 230)
    draw.ellipse((cx - head, cy - int(head * 1.25), cx + head, cy + int(head * 1.25)), fill=tone)
    draw.rounded_rectangle((cx - head * 2.4, cy + head * 1.4, cx + head * 2.4, height + head), radius=head, fill=tone)
    if reference is not None:
        with Image.open(io.BytesIO(reference)) as ref:
            ref_img = ImageOps.fit(ref.convert("RGB"), (width, height))
        img = Image.blend(img, ref_img, 0.55)
        draw = ImageDraw.Draw(img, "RGBA")
    font = ImageFont.load_default(size=max(12, short // 40))
    lines = textwrap.wrap(prompt, width=max(20, width // max(7, short // 70)))[:6]
    caption = [f"PREVIEW - offline - seed {seed}", *lines]
    line_h = max(14, short // 32)
    top = height - line_h * (len(caption) + 1)
    draw.rectangle((0, top - line_h // 2, width, height), fill=(0, 0, 0, 150))
    for i, line in enumerate(caption):
        draw.text((line_h, top + i * line_h), line, fill=(255, 255, 255, 255), font=font)
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=3)
    return img, out.getvalue()


@hookimpl
def register_providers(register):
    register(OfflineProvider)
