"""The Compare grid's types: what a comparison asks for (`ComparisonSpec`), its plan before it runs
(`ComparisonPlan`), and the saved comparison with its cells (`Comparison`, `ComparisonCell`)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from core.models import PROMPT_MAX, Enhancement, JobStatus, Presets, Recipe, made_from
from core.validation import ID_MAX, SEED_MAX, Text

CELLS_MAX = 48  # cells one comparison may hold (prompts x models x seeds)
PROMPTS_MAX = 8
MODELS_MAX = 6
SEEDS_MAX = 8

PromptText = Annotated[str, Text(PROMPT_MAX, multiline=True, collapse=True)]
ModelRef = Annotated[str, Text(ID_MAX, min_len=1, noun="an id")]


class PromptVariant(BaseModel):
    """One prompt of the prompt axis; `enhancement`: its AI-enhanced form (studio.assist.enhance_prompt),
    used instead of the typed words and recorded in the cells' recipes."""

    model_config = ConfigDict(extra="forbid")
    text: PromptText = ""
    enhancement: Enhancement | None = None

    @field_validator("enhancement")
    @classmethod
    def _of_this_prompt(cls, v: Enhancement | None, info: ValidationInfo) -> Enhancement | None:
        return made_from(info.data.get("text", ""), v)


class ComparisonSpec(BaseModel):
    """What to compare: a character across prompts x models x seeds (each axis may hold one value).

    `prompts` are whole prompts (strings or `PromptVariant`s). `replace` is AUTOMATIC1111's "Prompt
    S/R": its first item is a phrase of the one prompt given, each further item replaces it in a new
    variant (the first variant is the prompt as written). `models` are catalog ids or model keys (empty:
    the routed default); `seeds` empty: one random seed."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    character_id: ModelRef
    name: Annotated[str, Text(80)] = ""
    prompts: Annotated[list[PromptVariant], Field(max_length=PROMPTS_MAX)] = []
    replace: Annotated[list[Annotated[str, Text(PROMPT_MAX, min_len=1, collapse=True, noun="a phrase")]],
                       Field(max_length=PROMPTS_MAX)] = []
    models: Annotated[list[ModelRef], Field(max_length=MODELS_MAX)] = Field(
        [], validation_alias=AliasChoices("models", "model_ids"))
    seeds: Annotated[list[Annotated[int, Field(ge=0, le=SEED_MAX)]], Field(max_length=SEEDS_MAX)] = []
    presets: Presets = Presets()

    @field_validator("prompts", mode="before")
    @classmethod
    def _texts(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"text": p} if isinstance(p, str) else p for p in v]
        return v

    @field_validator("prompts", "models", "seeds", mode="before")
    @classmethod
    def _count(cls, v: Any, info: ValidationInfo) -> Any:
        most = {"prompts": PROMPTS_MAX, "models": MODELS_MAX, "seeds": SEEDS_MAX}[info.field_name]
        if isinstance(v, list) and len(v) > most:
            raise ValueError(f"at most {most} {info.field_name} in one comparison (got {len(v)})")
        return v

    @field_validator("prompts")
    @classmethod
    def _distinct_prompts(cls, v: list[PromptVariant]) -> list[PromptVariant]:
        texts = [" ".join(p.text.split()) for p in v]
        if len(texts) > 1 and "" in texts:
            raise ValueError(f"prompt {texts.index('') + 1} is empty: write it, or use fewer prompt variants")
        if len(set(texts)) != len(texts):
            raise ValueError("two prompts are the same: each variant needs its own words")
        return v

    @field_validator("models", "seeds")
    @classmethod
    def _distinct(cls, v: list[Any], info: ValidationInfo) -> list[Any]:
        if len(set(v)) != len(v):
            raise ValueError(f"a {info.field_name[:-1]} is named more than once")
        return v

    @field_validator("replace")
    @classmethod
    def _search_replace(cls, v: list[str], info: ValidationInfo) -> list[str]:
        prompts = info.data.get("prompts") or []
        if v:
            if len(prompts) != 1:
                raise ValueError("needs exactly one prompt (the first phrase is in it)")
            if len(v) < 2:
                raise ValueError("needs the phrase and at least one replacement, separated by commas")
            if v[0] not in prompts[0].text:
                raise ValueError(f"the phrase {v[0]!r} is not in the prompt")
        return v

    def variants(self) -> list[PromptVariant]:
        """The prompt axis as run: the prompts, or the S/R variants of the one prompt (at least one, maybe empty)."""
        if not self.prompts:
            return [PromptVariant()]
        if not self.replace:
            return list(self.prompts)
        base = self.prompts[0].text
        return [self.prompts[0], *(PromptVariant(text=base.replace(self.replace[0], r)) for r in self.replace[1:])]


class ModelColumn(BaseModel):
    """One model of the model axis as routed, with its catalog price for one cell."""

    model_config = ConfigDict(protected_namespaces=())
    model_id: str
    model_key: str
    provider_id: str
    name: str
    price: float | None = None  # USD per image at the comparison's size; None: unpriced (counts as free)
    takes_seed: bool = True


class ComparisonPlan(BaseModel):
    """A comparison before it runs: the axes as routed, the cell count and the estimated cost."""

    prompts: list[PromptVariant]
    models: list[ModelColumn]
    seeds: list[int]
    presets: dict[str, str] = {}
    cells: int
    estimated_cost: float  # USD, from the catalog prices
    unpriced: list[str] = []  # names of models without a price (counted as free)
    confirm_above: float | None = None  # STUDIO_COMPARE_CONFIRM_USD
    needs_confirmation: bool = False

    def place(self, index: int) -> tuple[int, int, int]:
        """(prompt, model, seed) index of cell `index` (prompts vary slowest, seeds fastest)."""
        per_prompt = len(self.models) * len(self.seeds)
        return index // per_prompt, (index % per_prompt) // len(self.seeds), index % len(self.seeds)


class ComparisonCell(BaseModel):
    """One cell: its job (id, status, error) and, once done, its image and recipe."""

    model_config = ConfigDict(protected_namespaces=())
    job_id: str
    index: int
    prompt_index: int
    model_index: int
    seed_index: int
    status: JobStatus
    stage: str = ""
    last_error: str | None = None
    model_id: str
    model_name: str
    provider_id: str
    seed: int
    takes_seed: bool = True
    provider_ms: float | None = None
    cost: float | None = None
    estimated_cost: float | None = None
    image_key: str | None = None
    thumbnail_key: str | None = None
    width: int | None = None
    height: int | None = None
    recipe: Recipe | None = None
    finished_at: datetime | None = None
    kept_portrait_id: str | None = None  # the portrait "Keep" made of it

    @property
    def done(self) -> bool:
        return self.image_key is not None


class ComparisonSummary(BaseModel):
    id: str
    owner: str
    character_id: str
    name: str
    cells: int
    created_at: datetime


class Comparison(ComparisonSummary):
    """A saved comparison: its axes as run and its cells in grid order."""

    plan: ComparisonPlan
    items: list[ComparisonCell] = []

    @property
    def finished(self) -> bool:
        return all(c.status in ("completed", "failed", "canceled") for c in self.items)
