"""The Compare grid as one PNG sheet: a row per prompt, a column per model and seed, labelled."""
from __future__ import annotations

import io
import textwrap
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageFont, ImageOps

from core.compare.models import Comparison

CELL = 256  # pixels per cell image
LABEL_W = 240  # the prompt column
HEADER_H = 56  # the model / seed header
PAD = 8
BACKGROUND, INK, MUTED, EMPTY = (255, 255, 255), (20, 20, 20), (110, 110, 110), (232, 232, 232)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow before 10.1 has one bitmap size
        return ImageFont.load_default()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def contact_sheet(comparison: Comparison, read: Callable[[str], bytes | None]) -> bytes:
    """The sheet's PNG. `read(key)` gives a stored image's bytes (None: unreadable, drawn as a blank cell);
    cells without an image show their status (and a failed cell its error's start)."""
    plan = comparison.plan
    columns = [(m, s) for m in range(len(plan.models)) for s in range(len(plan.seeds))]
    width = LABEL_W + len(columns) * (CELL + PAD) + PAD
    height = HEADER_H + len(plan.prompts) * (CELL + PAD) + PAD
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    bold, small = _font(15), _font(12)
    for col, (m, s) in enumerate(columns):
        x = LABEL_W + PAD + col * (CELL + PAD)
        model = plan.models[m]
        draw.text((x, PAD), _clip(model.name, 34), fill=INK, font=bold)
        seed = f"seed {plan.seeds[s]}" if model.takes_seed else "seed: not taken by this model"
        draw.text((x, PAD + 22), _clip(seed, 40), fill=MUTED, font=small)
    for p, variant in enumerate(plan.prompts):
        y = HEADER_H + PAD + p * (CELL + PAD)
        label = variant.text or "(no prompt)"
        lines = textwrap.wrap(label, 30)[:10] + (["(AI-enhanced)"] if variant.enhancement else [])
        draw.multiline_text((PAD, y), "\n".join(lines), fill=INK, font=small, spacing=4)
    for cell in comparison.items:
        col = cell.model_index * len(plan.seeds) + cell.seed_index
        x, y = LABEL_W + PAD + col * (CELL + PAD), HEADER_H + PAD + cell.prompt_index * (CELL + PAD)
        data = read(cell.image_key) if cell.image_key else None
        if data is not None:
            with Image.open(io.BytesIO(data)) as img:
                sheet.paste(ImageOps.fit(img.convert("RGB"), (CELL, CELL)), (x, y))
            continue
        draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=EMPTY)
        words = cell.status if cell.status != "failed" else "failed: " + (cell.last_error or "")
        draw.multiline_text((x + PAD, y + PAD), "\n".join(textwrap.wrap(words, 32)[:8]), fill=MUTED, font=small)
    out = io.BytesIO()
    sheet.save(out, "PNG", optimize=False)
    return out.getvalue()
