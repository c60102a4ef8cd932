"""The typed values AI assist hands out: suggestions, prompt templates, enhanced prompts."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict

from core.models import ContentRating
from core.validation import Text

SuggestField = Literal["description", "appearance", "persona", "traits", "first_message"]
SUGGEST_FIELDS: tuple[str, ...] = SuggestField.__args__
Target = Literal["portrait", "scene", "sprite"]
TARGETS: tuple[str, ...] = Target.__args__


class Suggestion(BaseModel):
    """A suggestion for one field: the text as the model wrote it, and the character fields it would set
    (`values`, ready for `characters.update`; tags are the character's own plus the new ones). Nothing
    is saved until the caller saves `values`."""

    field: SuggestField
    text: str
    values: dict[str, Any]
    model_id: str
    model_name: str
    offline: bool = False
    cost: float | None = None  # USD, where the text model's service reported it


class PromptTemplateFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Text(80, min_len=1, noun="a name")] | None = None
    target: Target | None = None
    content_rating: ContentRating | None = None
    instruction: Annotated[str, Text(4000, min_len=1, multiline=True, noun="an instruction")] | None = None
    style: Annotated[str, Text(500)] | None = None


class PromptTemplateCreate(PromptTemplateFields):
    id: Annotated[str, Text(60, min_len=1, noun="an id")]
    name: Annotated[str, Text(80, min_len=1, noun="a name")]
    target: Target
    content_rating: ContentRating
    instruction: Annotated[str, Text(4000, min_len=1, multiline=True, noun="an instruction")]
    style: Annotated[str, Text(500)] = ""


class PromptTemplate(BaseModel):
    """A prompt-enhancement template: the instruction a text model follows and the style wording it adds,
    for one target (portrait, scene, sprite) and one content rating."""

    id: str
    name: str
    target: Target
    content_rating: ContentRating
    instruction: str
    style: str = ""
    builtin: bool = False
    updated_at: datetime | None = None


class EnhancedPrompt(BaseModel):
    """A prompt as the user wrote it and as the text model enhanced it, within the target model's budget."""

    original: str
    enhanced: str
    template_id: str
    model_id: str
    model_name: str
    offline: bool = False
    budget: int
    cost: float | None = None

    def recipe(self) -> dict[str, Any]:
        """What a portrait's recipe records about the enhancement."""
        return {"template": self.template_id, "text_model": self.model_id, "text_model_name": self.model_name,
                "original_prompt": self.original}
