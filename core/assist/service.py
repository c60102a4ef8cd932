"""`studio.assist`: field suggestions, "enhance all" and prompt enhancement, as the facade offers them.

Nothing here writes a character: a suggestion is returned (streamed or whole) and the caller saves its
`values` through the normal update, so the user's text is never overwritten without their click.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from core import redaction
from core.assist import suggest as fields
from core.assist.calls import CallRecord, Calls
from core.assist.models import SUGGEST_FIELDS, TARGETS, EnhancedPrompt, Suggestion
from core.assist.templates import PromptTemplates
from core.assist.textmodel import ChatMessage, TextProvider, TextRequest
from core.characters import Characters
from core.context import Actor, Context
from core.budgets import Budgets, usd
from core.prompting import description_summary
from core.errors import AssistFailed, BudgetExceeded, InvalidInput, ModelNotAvailable, NoTextModel
from core.models import CatalogModel, CharacterUpdate, parse

DEFAULT_PROMPT_BUDGET = 1000  # characters, for image models whose capabilities name no max_prompt_chars


class SuggestionStream:
    """The text of a suggestion as it streams; `suggestion` once the stream has ended."""

    def __init__(self, pieces: Iterator[str], finish):
        self._pieces = pieces
        self._finish = finish
        self._text: list[str] = []
        self.suggestion = None

    def __iter__(self) -> Iterator[str]:
        for piece in self._pieces:
            self._text.append(piece)
            yield piece
        if self.suggestion is None:
            self.suggestion = self._finish("".join(self._text))

    def result(self):
        """Consume what is left and return the suggestion."""
        for _ in self:
            pass
        return self.suggestion


class Assist:
    """AI assist for one actor (`studio.assist`)."""

    def __init__(self, ctx: Context, actor: Actor, characters: Characters, runner):
        self.ctx = ctx
        self.actor = actor
        self._characters = characters
        self._calls = Calls(ctx, actor, lambda: runner.loop if runner.running else None)
        self.templates = PromptTemplates(ctx, actor)

    # -- text models -------------------------------------------------------------------------
    def text_models(self) -> list[CatalogModel]:
        """Active, usable text models by priority (the offline suggester last)."""
        return [m for m in self.ctx.catalog.models(modality="chat", active_only=True, usable_only=True)
                if not m.retired and isinstance(self.ctx.catalog.instances.get(m.provider_id), TextProvider)]

    def is_offline(self, model: CatalogModel) -> bool:
        return bool(getattr(self.ctx.catalog.instances.get(model.provider_id), "offline", False))

    def route(self, model_id: str | None = None) -> CatalogModel:
        """The text model to use: the one asked for (active and usable), else the highest-priority one."""
        if model_id:
            found = next((m for m in self.text_models() if model_id in (m.id, m.model_key)), None)
            if found is None:
                raise ModelNotAvailable(f"Text model {model_id!r} was not found, is inactive or its provider is not "
                                        "configured.")
            return found
        models = self.text_models()
        if not models:
            raise NoTextModel()
        return models[0]

    # -- suggestions ---------------------------------------------------------------------------
    def stream(self, character_id: str, field: str, *, draft: dict[str, Any] | None = None,
               model: str | None = None) -> SuggestionStream:
        """A suggestion for one field, streamed: iterate the text pieces, then read `.suggestion`.
        `draft` holds the form's unsaved values (validated as an update), used as context."""
        if field not in SUGGEST_FIELDS:
            raise InvalidInput({"field": f"must be one of {', '.join(SUGGEST_FIELDS)} (got {field!r})"})
        character = self._context(character_id, draft)
        text_model = self.route(model)
        self._check_rate(text_model)
        subject = fields.subject_of(character)
        request = self._request(text_model, f"suggest:{field}", fields.messages(field, subject), subject,
                                character["content_rating"], max_tokens=500 if field != "traits" else 120)
        record = CallRecord("suggest", field, character_id, text_model)
        pieces = self._calls.stream(self._provider(text_model), request, record)

        def finish(text: str) -> Suggestion:
            text = redaction.redact(text).strip()
            values = fields.values_for(field, text, character)
            try:
                parse(CharacterUpdate, values)
            except InvalidInput as exc:
                raise AssistFailed(f"The text model's answer cannot be used for {field}: {exc.message}") from None
            if not any(values.values()) or values == {k: character.get(k) for k in values}:
                raise AssistFailed(f"The text model {text_model.display_name} answered with nothing new for {field}; "
                                   "try again or pick another text model.")
            return Suggestion(field=field, text=text, values=values, model_id=text_model.id,
                              model_name=text_model.display_name, offline=self.is_offline(text_model),
                              cost=record.cost)

        return SuggestionStream(pieces, finish)

    def suggest(self, character_id: str, field: str, *, draft: dict[str, Any] | None = None,
                model: str | None = None) -> Suggestion:
        """A suggestion for one field (the whole answer)."""
        return self.stream(character_id, field, draft=draft, model=model).result()

    def empty_fields(self, character_id: str, draft: dict[str, Any] | None = None) -> list[str]:
        """The suggestible fields the character leaves empty (appearance: no appearance tags)."""
        character = self._context(character_id, draft)
        return [f for f in SUGGEST_FIELDS if not character.get("appearance_tags" if f == "appearance" else f)]

    def enhance_all(self, character_id: str, *, draft: dict[str, Any] | None = None,
                    model: str | None = None) -> list[Suggestion]:
        """A suggestion for each EMPTY field, as a preview: nothing is saved. Each field is written with the
        suggestions before it as context (a description first, then the look that fits it, ...)."""
        draft = dict(draft or {})
        out = []
        for field in self.empty_fields(character_id, draft):
            suggestion = self.suggest(character_id, field, draft=draft, model=model)
            out.append(suggestion)
            draft.update(suggestion.values)
        return out

    # -- prompt enhancement --------------------------------------------------------------------
    def prompt_budget(self, image_model: str | None = None) -> int:
        """Characters an enhanced prompt may have for an image model (its `max_prompt_chars`)."""
        model = self.ctx.catalog.route(image_model, needs_i2i=False)
        return model.capabilities.max_prompt_chars or DEFAULT_PROMPT_BUDGET

    def enhance_prompt(self, character_id: str, prompt: str = "", *, target: str = "portrait",
                       image_model: str | None = None, model: str | None = None,
                       template: str | None = None) -> EnhancedPrompt:
        """An image prompt rewritten by a text model following a template chosen by the character's
        content rating (`template` picks another of the same rating), within the image model's budget."""
        if target not in TARGETS:
            raise InvalidInput({"target": f"must be one of {', '.join(TARGETS)} (got {target!r})"})
        if not isinstance(prompt, str) or len(prompt) > 1000:
            raise InvalidInput({"prompt": "must be text of at most 1000 characters"})
        character = self._context(character_id, None)
        rating = character["content_rating"]
        chosen = self.templates.choose(target, rating, template)
        budget = self.prompt_budget(image_model)
        text_model = self.route(model)
        self._check_rate(text_model)
        subject = fields.subject_of(character)
        look = ", ".join([*subject["appearance_tags"][:8], *(f"wearing {c}" for c in subject["clothing_tags"][:4])])
        who = description_summary(subject.get("description") or "")  # what an unenhanced portrait prompt has
        base = ", ".join(p for p in (redaction.redact(prompt.strip()), who, look) if p)
        subject.update(prompt=base, style=chosen.style, budget=budget, target=target)
        system = (f"{chosen.instruction} {fields.RATING_RULES.get(rating, fields.RATING_RULES['sfw'])} "
                  f"Use this style: {chosen.style}. Answer with the prompt only, at most {budget} characters.")
        user = (f"Character: {subject['name']} ({subject['gender']}): {who or 'not described'}. "
                f"Look: {look or 'not described'}.\n"
                f"Idea: {redaction.redact(prompt.strip()) or 'a ' + target + ' of the character'}")
        request = self._request(text_model, f"enhance:{target}", [ChatMessage("system", system), ChatMessage("user", user)],
                                subject, rating, max_tokens=max(64, budget // 3))
        record = CallRecord("enhance_prompt", chosen.id, character_id, text_model)
        text = "".join(self._calls.stream(self._provider(text_model), request, record))
        enhanced = _fit(" ".join(redaction.redact(text).split()).strip("\"'“” "), budget)
        if not enhanced:
            raise AssistFailed(f"The text model {text_model.display_name} answered with an empty prompt; nothing was changed.")
        return EnhancedPrompt(original=prompt, enhanced=enhanced, template_id=chosen.id, model_id=text_model.id,
                              model_name=text_model.display_name, offline=self.is_offline(text_model), budget=budget,
                              cost=record.cost)

    # -- helpers ---------------------------------------------------------------------------------
    def _context(self, character_id: str, draft: dict[str, Any] | None) -> dict[str, Any]:
        character = self._characters.get(character_id).model_dump()
        if draft:
            changes = parse(CharacterUpdate, draft, name="draft").model_dump(exclude_unset=True)
            character.update({k: v for k, v in changes.items() if k not in ("default_presets",)})
        return character

    def _check_rate(self, model: CatalogModel) -> None:
        """A paid text model is refused over the user's rate, or once their monthly budget is spent."""
        if self.is_offline(model):
            return
        self._calls.check_rate({pid for pid, p in self.ctx.catalog.instances.items() if getattr(p, "offline", False)})
        month = Budgets(self.ctx, self.actor).mine()
        if month.remaining is not None and month.remaining <= 0:
            raise BudgetExceeded(f"Your monthly budget of {usd(month.monthly_budget)} is spent; AI assist with "
                                 f"{model.display_name} is paused until next month (the offline suggester still works).")

    def _provider(self, model: CatalogModel) -> TextProvider:
        return self.ctx.catalog.provider(model.provider_id)

    @staticmethod
    def _request(model: CatalogModel, task: str, messages: list[ChatMessage], subject: dict[str, Any], rating: str,
                 *, max_tokens: int) -> TextRequest:
        return TextRequest(model_key=model.model_key, messages=[ChatMessage(m.role, redaction.redact(m.content))
                                                                 for m in messages],
                           max_tokens=max_tokens, content_rating=rating, input_defaults=dict(model.input_defaults),
                           task=task, subject=subject)


def _fit(text: str, budget: int) -> str:
    """`text` within `budget` characters, cut at the last comma or space that fits."""
    if len(text) <= budget:
        return text
    cut = text[:budget]
    at = max(cut.rfind(","), cut.rfind(" "))
    return (cut[:at] if at > budget // 2 else cut).rstrip(" ,")


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """(op, words) runs from `before` to `after`: op is `same`, `added` or `removed`."""
    a, b = before.split(), after.split()
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("same", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("removed", " ".join(a[i1:i2])))
        if j2 > j1:
            out.append(("added", " ".join(b[j1:j2])))
    return out
