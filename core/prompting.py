"""Prompt building: pure functions from a character and options to the final prompt."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.models import PROMPT_MAX

QUALITY_TAGS = "masterpiece, best quality, photorealistic"
CLOSING = "studio photography, professional lighting, sharp focus, detailed face"
IDENTITY = "maintain same character identity, consistent features"
SUBJECT = {
    "female": "1girl, beautiful woman",
    "male": "1boy, handsome man",
    "non-binary": "1person, androgynous person",
}
DEFAULT_SUBJECT = "1person, portrait"
PRESET_ORDER = ("pose", "expression", "outfit", "camera")
DESCRIPTION_IN_PROMPT = 300  # characters of the character's description that go into a portrait prompt


def description_summary(description: str) -> str:
    """What of a description goes into a prompt: its first 300 characters on one line (trailing punctuation
    would double with the separator ", ")."""
    return " ".join(description.split())[:DESCRIPTION_IN_PROMPT].strip().rstrip(".,;:!")


def build_prompt(
    *,
    gender: str,
    description: str = "",
    appearance_tags: Sequence[str] = (),
    clothing_tags: Sequence[str] = (),
    presets: Mapping[str, str] | None = None,
    custom: str = "",
    has_reference: bool = False,
) -> str:
    """The portrait prompt: quality tags, subject, the character's description (its first 300
    characters, on one line), up to 8 appearance and 4 clothing tags, preset texts, the user's
    prompt (200 characters at most), identity phrase with a reference, closing quality phrase."""
    parts = [QUALITY_TAGS, SUBJECT.get(gender, DEFAULT_SUBJECT)]
    summary = description_summary(description)
    if summary:
        parts.append(summary)
    parts += list(appearance_tags)[:8]
    parts += list(clothing_tags)[:4]
    presets = presets or {}
    parts += [presets[k] for k in PRESET_ORDER if presets.get(k)]
    if custom.strip():
        parts.append(custom.strip()[:PROMPT_MAX])
    if has_reference:
        parts.append(IDENTITY)
    parts.append(CLOSING)
    return ", ".join(parts)


def build_scene_prompt(
    *,
    gender: str,
    appearance_tags: Sequence[str] = (),
    clothing_tags: Sequence[str] = (),
    scene_prompt: str = "",
    scene_description: str = "",
    has_reference: bool = False,
) -> str:
    """The scene prompt: the character's look (5 appearance tags, wearing the clothing tags),
    then the scene's prompt and description."""
    look = ", ".join(list(appearance_tags)[:5])
    if clothing_tags:
        look = f"{look}, wearing {', '.join(list(clothing_tags)[:4])}" if look else f"wearing {', '.join(clothing_tags[:4])}"
    parts = [QUALITY_TAGS, SUBJECT.get(gender, DEFAULT_SUBJECT)]
    if look:
        parts.append(look)
    if scene_prompt.strip():
        parts.append(scene_prompt.strip())
    if scene_description.strip():
        parts.append(scene_description.strip()[:300])
    if has_reference:
        parts.append(IDENTITY)
    parts.append("cinematic scene, detailed background")
    return ", ".join(parts)


def enhanced_prompt(text: str, *, presets: Mapping[str, str] | None = None, has_reference: bool = False) -> str:
    """A prompt an AI text model enhanced (it holds the look already): the chosen presets' texts and the
    identity phrase with a reference are added."""
    presets = presets or {}
    parts = [text.strip(), *(presets[k] for k in PRESET_ORDER if presets.get(k))]
    if has_reference:
        parts.append(IDENTITY)
    return ", ".join(parts)
