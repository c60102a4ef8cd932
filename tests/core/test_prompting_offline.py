"""The prompt builder (pure) and the offline provider."""
from __future__ import annotations

import asyncio
import io

from PIL import Image, ImageChops, ImageStat

from core.prompting import build_prompt, build_scene_prompt
from core.provider import GenerationRequest, ReferenceImage
from providers.offline import I2I, OfflineProvider, render
from tests.conftest import png_bytes


# The portrait prompt, in the specified order: quality tags; gender subject; up to 8 appearance tags; up to 4
# clothing tags; presets (pose, expression, outfit, camera); the user's prompt (up to 200 characters); with a
# reference, the identity-preservation phrase; the closing quality phrase. Expected prompts are written out.
def test_prompt_order_and_limits():
    prompt = build_prompt(gender="female", appearance_tags=[f"a{i}" for i in range(10)],
                          clothing_tags=[f"c{i}" for i in range(6)],
                          presets={"camera": "CAM", "pose": "POSE", "expression": "EXPR", "outfit": "OUT"},
                          custom="  on a bridge  ", has_reference=True)
    assert prompt == (
        "masterpiece, best quality, photorealistic, 1girl, beautiful woman, a0, a1, a2, a3, a4, a5, a6, a7, "
        "c0, c1, c2, c3, POSE, EXPR, OUT, CAM, on a bridge, maintain same character identity, consistent features, "
        "studio photography, professional lighting, sharp focus, detailed face")


def test_prompt_subjects_and_optional_parts():
    assert build_prompt(gender="male", appearance_tags=["short grey hair"], presets={"pose": "standing"}) == (
        "masterpiece, best quality, photorealistic, 1boy, handsome man, short grey hair, standing, "
        "studio photography, professional lighting, sharp focus, detailed face")
    assert build_prompt(gender="non-binary") == (
        "masterpiece, best quality, photorealistic, 1person, androgynous person, "
        "studio photography, professional lighting, sharp focus, detailed face")
    assert build_prompt(gender="unspecified", custom="   ") == (  # a blank prompt adds nothing
        "masterpiece, best quality, photorealistic, 1person, portrait, "
        "studio photography, professional lighting, sharp focus, detailed face")
    assert build_prompt(gender="female", presets={"pose": "", "camera": "close-up"}) == (  # empty presets skipped
        "masterpiece, best quality, photorealistic, 1girl, beautiful woman, close-up, "
        "studio photography, professional lighting, sharp focus, detailed face")
    long = "y" * 150 + "z" * 150
    assert build_prompt(gender="male", custom=long) == (  # the user's prompt is cut to 200 characters
        "masterpiece, best quality, photorealistic, 1boy, handsome man, " + "y" * 150 + "z" * 50 + ", "
        "studio photography, professional lighting, sharp focus, detailed face")


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


def test_a_description_ending_in_a_full_stop_does_not_double_the_punctuation():
    prompt = build_prompt(gender="female", description="A barista. She laughs.", appearance_tags=["red hair"],
                          clothing_tags=[], presets={}, custom="")
    assert "She laughs, red hair" in prompt and ".," not in prompt
