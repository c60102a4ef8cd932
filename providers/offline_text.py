"""The offline suggester: a text model that needs no key and no network. It writes suggestions from
the shipped phrase banks (data/prompt_templates.json, "offline"), chosen deterministically from the
character's own fields, so each character gets its own; an SFW character only ever gets SFW wording."""
from __future__ import annotations

import json
import random
import re
from functools import lru_cache
from typing import Any

from core.assist.textmodel import TextProvider, TextRequest, TextResult
from core.config import DATA_DIR
from core.hookspecs import hookimpl
from core.models import Capabilities, ModelSpec

plugin_api_version = "1.2"

MODEL_KEY = "offline/suggester"
NOUNS = {"female": "woman", "male": "man", "non-binary": "person"}
PRONOUNS = {"female": "her", "male": "him"}
SUBJECT_PRONOUNS = {"female": "she", "male": "he"}


@lru_cache(maxsize=1)
def banks() -> dict[str, Any]:
    return json.loads((DATA_DIR / "prompt_templates.json").read_text())["offline"]


class OfflineTextProvider(TextProvider):
    """Deterministic suggestions from templates; labelled offline wherever a model is shown."""

    id = "offline-text"
    display_name = "Offline suggester"
    preview = True
    offline = True
    default_concurrency = 8

    def default_models(self) -> list[ModelSpec]:
        return [ModelSpec(model_key=MODEL_KEY, display_name="Offline suggester", modality="chat", priority=-100,
                          capabilities=Capabilities(supports_txt2img=False),
                          notes="Suggestions written offline from the shipped templates; add a text model for better ones.")]

    async def complete(self, request: TextRequest) -> TextResult:
        return TextResult(write(request.task, request.subject, request.content_rating))

    async def health(self):
        from core.provider import Health

        return Health("ok", "The offline suggester runs locally; it needs no key.")


def write(task: str, subject: dict[str, Any], rating: str) -> str:
    """The text for one task (`suggest:<field>` or `enhance:<target>`) about one character."""
    b = banks()
    nsfw = rating == "nsfw"
    rng = random.Random(json.dumps([task, subject], sort_keys=True, default=str))
    name = str(subject.get("name") or "They")
    gender = str(subject.get("gender") or "unspecified")

    def pick(options: list[str], k: int = 1, avoid: list[str] = ()) -> list[str]:
        have = {a.lower() for a in avoid}
        pool = [o for o in options if o.lower() not in have] or list(options)
        return rng.sample(pool, min(k, len(pool)))

    traits = pick(b["traits"]["sfw"], 2, avoid=_words(subject.get("traits")))
    words = {"name": name, "noun": NOUNS.get(gender, "person"), "pronoun": PRONOUNS.get(gender, "them"),
             "Pronoun": SUBJECT_PRONOUNS.get(gender, name).capitalize() if gender in SUBJECT_PRONOUNS else name, "trait": traits[0], "trait2": traits[-1],
             "nsfw_trait": pick(b["traits"]["nsfw"])[0] if nsfw else traits[0],
             "hobby": pick(b["hobbies"])[0], "place": pick(b["places"])[0],
             "tone": str(subject.get("voice_tone") or "warm")}
    rated = "nsfw" if nsfw else "sfw"
    field = task.split(":", 1)[1] if ":" in task else task
    if task.startswith("enhance:"):
        extra = pick(b["enhance"]["sfw"] + (b["enhance"]["nsfw"] if nsfw else []), 2)
        parts = [subject.get("prompt") or "", *extra, subject.get("style") or ""]
        return ", ".join(p for p in parts if p)
    if field == "appearance":
        physical = pick(b["physical"], 4, avoid=list(subject.get("appearance_tags") or []))
        clothes = pick(b["clothing"]["sfw"] + (b["clothing"]["nsfw"] if nsfw else []), 3,
                       avoid=list(subject.get("clothing_tags") or []))
        return f"Physical: {', '.join(physical)}\nClothing: {', '.join(clothes)}"
    if field == "traits":
        pool = b["traits"]["sfw"] + (b["traits"]["nsfw"] if nsfw else [])
        return ", ".join(pick(pool, 4, avoid=_words(subject.get("traits"))))
    patterns = b.get(field if field in ("description", "persona", "first_message") else "description")
    text = pick(patterns[rated] if nsfw else patterns["sfw"])[0]
    return _articles(text.format(**words))


def _articles(text: str) -> str:
    """"a ambitious" -> "an ambitious" where a filled-in word starts with a vowel."""
    return re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", lambda m: m.group(1) + "n ", text)


def _words(text: Any) -> list[str]:
    return [w.strip() for w in str(text or "").split(",") if w.strip()]


@hookimpl
def register_text_models(register):
    register(OfflineTextProvider)
