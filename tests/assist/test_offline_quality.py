"""The offline suggester: useful, varied results that differ per character and respect the content rating."""
from __future__ import annotations

import json
import re
from pathlib import Path

from core.assist.models import SUGGEST_FIELDS

BANKS = json.loads((Path(__file__).resolve().parents[2] / "data" / "prompt_templates.json").read_text())["offline"]
CHARACTERS = [
    {"name": "Mia", "gender": "female", "description": "A cheerful barista.", "appearance_tags": ["red hair"]},
    {"name": "Tomas", "gender": "male", "description": "A retired sea captain.", "voice_tone": "direct"},
    {"name": "Rin", "gender": "non-binary", "description": "A street racer from the docks.", "mood": "mysterious"},
    {"name": "Elena", "gender": "female", "description": "A court astronomer.", "clothing_tags": ["velvet cloak"]},
    {"name": "Kofi", "gender": "male", "description": "A jazz pianist.", "traits": "patient"},
    {"name": "Ash", "description": "A wandering cartographer."},
]


def _nsfw_words() -> set[str]:
    """Every NSFW-only phrase the shipped banks hold (SFW output must contain none of them)."""
    words = set(BANKS["traits"]["nsfw"]) | set(BANKS["clothing"]["nsfw"]) | set(BANKS["enhance"]["nsfw"])
    for field in ("description", "persona", "first_message"):
        words |= {w for s in BANKS[field]["nsfw"] for w in _words(re.sub(r"\{\w+\}", "", s))} - _sfw_vocabulary()
    return {w.lower() for w in words if len(w) > 3}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z][a-z'-]*", text.lower()))


def _sfw_vocabulary() -> set[str]:
    return _words(json.dumps({k: (v["sfw"] if isinstance(v, dict) else v) for k, v in BANKS.items()}))


def _found(words: set[str], text: str) -> list[str]:
    return [w for w in words if re.search(rf"\b{re.escape(w)}\b", text)]


def _suggest_all(studio, rating: str) -> dict[str, dict[str, str]]:
    out = {}
    for data in CHARACTERS:
        c = studio.characters.create({**data, "content_rating": rating})
        out[c.name] = {f: studio.assist.suggest(c.id, f).text for f in SUGGEST_FIELDS}
    return out


def test_suggestions_differ_per_character(open_studio):
    studio = open_studio()
    results = _suggest_all(studio, "sfw")
    for field in SUGGEST_FIELDS:
        texts = [r[field] for r in results.values()]
        assert len(set(texts)) >= len(CHARACTERS) - 1, (field, texts)  # at most one coincidence across six
    for name, fields in results.items():
        assert name in fields["description"] or fields["description"].startswith(name)


def test_the_same_character_gets_the_same_suggestion(open_studio):
    studio = open_studio()
    mia = studio.characters.create(CHARACTERS[0])
    assert studio.assist.suggest(mia.id, "persona").text == studio.assist.suggest(mia.id, "persona").text


def test_sfw_characters_never_get_nsfw_wording_and_nsfw_ones_do(open_studio):
    studio = open_studio()
    nsfw_words = _nsfw_words()
    assert len(nsfw_words) > 10  # the scan found the NSFW vocabulary
    sfw_text = json.dumps(_suggest_all(studio, "sfw")).lower()
    assert not _found(nsfw_words, sfw_text)
    for c in studio.characters.list().items:
        sfw_prompt = studio.assist.enhance_prompt(c.id, "in a garden").enhanced.lower()
        assert not _found(nsfw_words, sfw_prompt), sfw_prompt
    nsfw_text = json.dumps(_suggest_all(studio, "nsfw")).lower()
    assert _found(nsfw_words, nsfw_text)


def test_appearance_suggestions_add_new_physical_and_clothing_tags(open_studio):
    studio = open_studio()
    elena = studio.characters.create(CHARACTERS[3])
    values = studio.assist.suggest(elena.id, "appearance").values
    physical = set(BANKS["physical"])
    clothing = set(BANKS["clothing"]["sfw"])
    assert values["clothing_tags"][0] == "velvet cloak" and len(values["clothing_tags"]) > 1
    assert set(values["appearance_tags"]) <= physical and set(values["clothing_tags"][1:]) <= clothing


def test_offline_suggestions_use_an_before_a_vowel(open_studio):
    """The phrase banks fill words into "a {trait} soul": the article follows the word filled in."""
    studio = open_studio()
    results = _suggest_all(studio, "sfw")
    for name, fields in results.items():
        for field, text in fields.items():
            assert not re.search(r"\b[Aa] [aeiouAEIOU]", text), (name, field, text)
