"""Field suggestions: the messages asking a text model for one field, with the rest of the character as
context, and the answer turned into character fields (appearance split into physical traits and clothing)."""
from __future__ import annotations

import re
from typing import Any

from core import redaction
from core.assist.textmodel import ChatMessage
from core.models import DESCRIPTION_MAX, TAG_MAX_COUNT, TAG_MAX_LEN

FIELD_LIMITS = {"description": DESCRIPTION_MAX, "persona": 4000, "traits": 1000, "first_message": 2000}
ASKS = {
    "description": "a description of who {name} is, in two or three sentences",
    "appearance": ("new appearance tags as two lines: 'Physical: ' then comma-separated physical traits (hair, eyes, "
                   "face, build, skin), and 'Clothing: ' then comma-separated clothing and accessories; only tags not "
                   "already listed, each a few words"),
    "persona": "a persona of one paragraph: how {name} thinks, speaks and behaves",
    "traits": "four to six personality traits of {name}, comma-separated",
    "first_message": "{name}'s first message to the user, in character, one to three sentences",
}
RATING_RULES = {
    "sfw": "The character is rated SFW: everything you write must suit all audiences, with no sexual content.",
    "nsfw": "The character is rated NSFW (adults only): mature and sensual themes are allowed.",
}
# Words that mark a tag as clothing or an accessory when a model answers with one list (the seed's keyword split).
CLOTHING_WORDS = re.compile(
    r"\b(dress|shirt|t-shirt|blouse|jacket|coat|hoodie|sweater|jumper|cardigan|vest|skirt|jeans|trousers|pants|shorts|"
    r"suit|uniform|apron|robe|gown|armor|armour|cloak|cape|scarf|hat|cap|hood|boots|shoes|sneakers|heels|sandals|gloves|"
    r"socks|stockings|tights|glasses|sunglasses|goggles|necklace|earrings|ring|rings|bracelet|jewelry|jewellery|watch|"
    r"belt|bag|backpack|tie|bow|ribbon|lingerie|bikini|swimsuit|kimono|corset|outfit|attire|wearing|overalls|tunic|"
    r"leggings|mask|crown|tiara|choker|headband|bandana|collar|sleeves?)\b", re.I)

CONTEXT_FIELDS = (("name", "Name"), ("gender", "Gender"), ("description", "Description"),
                  ("appearance_tags", "Appearance"), ("clothing_tags", "Clothing"), ("traits", "Personality traits"),
                  ("persona", "Persona"), ("voice_tone", "Voice tone"), ("mood", "Mood"), ("first_message", "First message"))


def subject_of(character: dict[str, Any]) -> dict[str, Any]:
    """The character fields a suggestion is written from (what an offline model reads), secrets removed."""
    keys = [k for k, _ in CONTEXT_FIELDS] + ["content_rating"]
    return {k: _clean(character.get(k)) for k in keys}


def messages(field: str, subject: dict[str, Any]) -> list[ChatMessage]:
    lines = []
    for key, label in CONTEXT_FIELDS:
        value = subject.get(key)
        if isinstance(value, list):
            value = ", ".join(value)
        if value and key != field and not (field == "appearance" and key in ("appearance_tags", "clothing_tags")):
            lines.append(f"{label}: {value}")
    if field == "appearance":
        lines.append(f"Appearance tags already set: {', '.join(subject.get('appearance_tags') or []) or 'none'}")
        lines.append(f"Clothing tags already set: {', '.join(subject.get('clothing_tags') or []) or 'none'}")
    rating = subject.get("content_rating") or "sfw"
    system = ("You help writers create characters for a character studio. Answer with the requested text only: "
              "no preamble, no quotes, no markdown. " + RATING_RULES.get(rating, RATING_RULES["sfw"]))
    ask = ASKS[field].format(name=subject.get("name") or "the character")
    return [ChatMessage("system", system),
            ChatMessage("user", "The character so far:\n" + "\n".join(lines) + f"\n\nWrite {ask}.")]


def values_for(field: str, text: str, character: dict[str, Any]) -> dict[str, Any]:
    """The character fields a suggestion sets. Tags: the character's own first, then the new ones."""
    text = text.strip()
    if field == "appearance":
        physical, clothing = split_appearance(text)
        return {"appearance_tags": _merge(character.get("appearance_tags") or [], physical),
                "clothing_tags": _merge(character.get("clothing_tags") or [], clothing)}
    text = _unquote(text)
    limit = FIELD_LIMITS[field]
    if field == "first_message" or field == "description" or field == "persona":
        return {field: text[:limit].strip()}
    return {field: " ".join(text.split())[:limit]}  # traits: one line


def split_appearance(text: str) -> tuple[list[str], list[str]]:
    """(physical traits, clothing) from 'Physical: ...' / 'Clothing: ...' lines, or from one list split by
    clothing words."""
    physical: list[str] = []
    clothing: list[str] = []
    loose: list[str] = []
    for line in text.splitlines():
        head, _, rest = line.partition(":")
        label = head.strip().strip("*-# ").lower()
        if rest and label in ("physical", "physical traits", "appearance", "body"):
            physical += _tags(rest)
        elif rest and label in ("clothing", "clothes", "outfit", "attire"):
            clothing += _tags(rest)
        else:
            loose += _tags(line)
    for tag in loose:
        (clothing if CLOTHING_WORDS.search(tag) else physical).append(tag)
    return physical, clothing


def _tags(text: str) -> list[str]:
    out = []
    for part in re.split(r"[,;\n]", text):
        tag = " ".join(part.strip().strip("-*•.\"'").split())
        if tag:
            out.append(tag[:TAG_MAX_LEN].strip())
    return out


def _merge(have: list[str], new: list[str]) -> list[str]:
    seen = {t.lower() for t in have}
    out = list(have)
    for tag in new:
        if tag.lower() not in seen and len(out) < TAG_MAX_COUNT:
            seen.add(tag.lower())
            out.append(tag)
    return out


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”":
        return text[1:-1].strip()
    return text


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redaction.redact(value)
    if isinstance(value, list):
        return [redaction.redact(str(v)) for v in value]
    return value
