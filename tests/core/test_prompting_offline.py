"""The prompt builder (pure) and the offline provider."""
from __future__ import annotations

import asyncio
import io

from PIL import Image, ImageChops, ImageStat

from core.prompting import CLOSING, IDENTITY, QUALITY_TAGS, build_prompt, build_scene_prompt
from core.provider import GenerationRequest, ReferenceImage
from providers.offline import I2I, OfflineProvider, render
from tests.conftest import png_bytes


def test_prompt_order_and_limits():
    prompt = build_prompt(gender="female", appearance_tags=[f"a{i}" for i in range(10)],
                          clothing_tags=[f"c{i}" for i in range(6)],
                          presets={"camera": "CAM", "pose": "POSE", "expression": "EXPR", "outfit": "OUT"},
                          custom="  on a bridge  ", has_reference=True)
    parts = prompt.split(", ")
    assert prompt.startswith(QUALITY_TAGS + ", 1girl, beautiful woman, a0")
    assert "a7" in parts and "a8" not in parts and "c3" in parts and "c4" not in parts
    assert parts.index("POSE") < parts.index("EXPR") < parts.index("OUT") < parts.index("CAM") < parts.index("on a bridge")
    assert prompt.endswith(IDENTITY + ", " + CLOSING)


def test_prompt_subjects_and_optional_parts():
    assert "1boy, handsome man" in build_prompt(gender="male")
    assert "androgynous" in build_prompt(gender="non-binary")
    assert "1person, portrait" in build_prompt(gender="unspecified")
    bare = build_prompt(gender="unspecified", custom="   ")
    assert IDENTITY not in bare and bare == f"{QUALITY_TAGS}, 1person, portrait, {CLOSING}"
    assert build_prompt(gender="male", custom="x" * 300).count("x") == 200


def test_scene_prompt_wears_the_clothing():
    p = build_scene_prompt(gender="female", appearance_tags=["red hair"], clothing_tags=["apron"],
                           scene_prompt="behind the counter", scene_description="morning rush")
    assert "red hair, wearing apron" in p and "behind the counter" in p and "morning rush" in p


def test_offline_render_is_deterministic_per_seed():
    a = render("a knight", 1, 256, 256)
    assert a == render("a knight", 1, 256, 256)
    b = render("a knight", 2, 256, 256)
    assert a != b
    diff = ImageStat.Stat(ImageChops.difference(Image.open(io.BytesIO(a)).convert("RGB"),
                                                Image.open(io.BytesIO(b)).convert("RGB"))).mean
    assert sum(diff) > 10  # visibly different, not a changed byte
    assert Image.open(io.BytesIO(render("x", 3, 640, 480))).size == (640, 480)


def test_offline_i2i_blends_the_reference_in():
    provider = OfflineProvider({})
    ref = png_bytes((256, 256), (255, 0, 0))
    base = GenerationRequest(job_id="j", model_key=I2I, prompt="p", width=256, height=256, seed=5)
    with_ref = GenerationRequest(job_id="j", model_key=I2I, prompt="p", width=256, height=256, seed=5,
                                 references=[ReferenceImage(ref, "image/png", "abc")])
    plain = asyncio.run(provider.generate(base)).images[0].data
    blended = asyncio.run(provider.generate(with_ref))
    r, g, b = ImageStat.Stat(Image.open(io.BytesIO(blended.images[0].data)).convert("RGB")).mean
    r0, g0, b0 = ImageStat.Stat(Image.open(io.BytesIO(plain)).convert("RGB")).mean
    assert r - r0 > 40  # the red reference shows through
    assert blended.inputs["image"] == "sha256:abc"


def test_offline_is_a_keyless_preview_provider():
    p = OfflineProvider({})
    assert p.preview and p.is_configured() and not p.resumable
    models = p.default_models()
    assert [m.capabilities.supports_i2i for m in models] == [False, True]
