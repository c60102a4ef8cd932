"""Pydantic domain types: what crosses the core's boundary, validated once."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import InvalidInput

Gender = Literal["female", "male", "non-binary", "unspecified"]
ContentRating = Literal["sfw", "nsfw"]
VoiceTone = Literal["warm", "playful", "confident", "teasing", "direct"]
Mood = Literal["friendly", "flirty", "mysterious", "dominant", "submissive"]
Modality = Literal["image", "chat", "video"]
JobStatus = Literal["queued", "running", "storing", "completed", "failed", "canceled"]
JobKind = Literal["portrait", "scene"]

GENDERS: tuple[str, ...] = Gender.__args__
CONTENT_RATINGS: tuple[str, ...] = ContentRating.__args__
VOICE_TONES: tuple[str, ...] = VoiceTone.__args__
MOODS: tuple[str, ...] = Mood.__args__
ACTIVE_STATUSES = ("queued", "running", "storing")
FINAL_STATUSES = ("completed", "failed", "canceled")

NAME_MAX = 50
DESCRIPTION_MAX = 2000
TAG_MAX_COUNT = 20
TAG_MAX_LEN = 40
PROMPT_MAX = 200


def parse(model: type[BaseModel], data: Any) -> Any:
    """Validate `data` into `model`, raising InvalidInput that names each field."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput.from_pydantic(exc) from None


def _clean_tags(value: Any, *, max_count: int = TAG_MAX_COUNT, max_len: int = TAG_MAX_LEN) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    out: list[str] = []
    seen: set[str] = set()
    for raw in value:
        if not isinstance(raw, str):
            raise ValueError("tags must be text")
        tag = " ".join(raw.split())
        if not tag:
            continue
        if len(tag) > max_len:
            raise ValueError(f"each tag may have at most {max_len} characters ('{tag[:20]}...' has {len(tag)})")
        if tag.lower() not in seen:
            seen.add(tag.lower())
            out.append(tag)
    if len(out) > max_count:
        raise ValueError(f"at most {max_count} tags are allowed, got {len(out)}")
    return out


def _bounded_list(value: Any, *, max_count: int, max_len: int) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    out = [v.strip() for v in value if isinstance(v, str) and v.strip()]
    if len(out) > max_count:
        raise ValueError(f"at most {max_count} entries are allowed, got {len(out)}")
    for item in out:
        if len(item) > max_len:
            raise ValueError(f"each entry may have at most {max_len} characters")
    return out


class Presets(BaseModel):
    """Selected preset keys (see data/presets.json)."""

    model_config = ConfigDict(extra="forbid")
    pose: str | None = None
    expression: str | None = None
    outfit: str | None = None
    camera: str | None = None


class _CharacterFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    description: str | None = Field(None, max_length=DESCRIPTION_MAX)
    gender: Gender | None = None
    content_rating: ContentRating | None = None
    is_public: bool | None = None
    traits: str | None = Field(None, max_length=1000)
    persona: str | None = Field(None, max_length=4000)
    appearance_tags: list[str] | None = None
    clothing_tags: list[str] | None = None
    voice_tone: VoiceTone | None = None
    mood: Mood | None = None
    first_message: str | None = Field(None, max_length=2000)
    alternate_greetings: list[str] | None = None
    forbidden_phrases: list[str] | None = None
    voice_examples: list[str] | None = None
    system_prompt: str | None = Field(None, max_length=8000)
    default_presets: Presets | None = None

    @field_validator("appearance_tags", "clothing_tags", mode="before")
    @classmethod
    def _tags(cls, v):
        return None if v is None else _clean_tags(v)

    @field_validator("alternate_greetings", "voice_examples", mode="before")
    @classmethod
    def _long_lists(cls, v):
        return None if v is None else _bounded_list(v, max_count=10, max_len=2000)

    @field_validator("forbidden_phrases", mode="before")
    @classmethod
    def _short_lists(cls, v):
        return None if v is None else _bounded_list(v, max_count=50, max_len=200)


class CharacterCreate(_CharacterFields):
    """A new character. Only the name is required to save; a portrait also needs a description."""

    name: str = Field(min_length=1, max_length=NAME_MAX)
    description: str = Field("", max_length=DESCRIPTION_MAX)
    gender: Gender = "unspecified"
    content_rating: ContentRating = "sfw"
    is_public: bool = False
    voice_tone: VoiceTone = "warm"
    mood: Mood = "friendly"

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, v):
        if v is None or (isinstance(v, str) and not v.strip()):
            raise ValueError("a name is required (1 to 50 characters)")
        return v


class CharacterUpdate(_CharacterFields):
    """A partial update: only the fields given change."""

    name: str | None = Field(None, min_length=1, max_length=NAME_MAX)


class Character(BaseModel):
    id: str
    owner: str
    name: str
    description: str = ""
    gender: Gender = "unspecified"
    content_rating: ContentRating = "sfw"
    is_public: bool = False
    traits: str | None = None
    persona: str | None = None
    appearance_tags: list[str] = []
    clothing_tags: list[str] = []
    voice_tone: VoiceTone = "warm"
    mood: Mood = "friendly"
    first_message: str | None = None
    alternate_greetings: list[str] = []
    forbidden_phrases: list[str] = []
    voice_examples: list[str] = []
    system_prompt: str | None = None
    default_presets: Presets = Presets()
    reference_image_key: str | None = None
    reference_image_hash: str | None = None
    primary_portrait_id: str | None = None
    template_id: str | None = None
    created_at: datetime
    updated_at: datetime


class CharacterSummary(BaseModel):
    """One row of the character list, with the primary portrait's thumbnail key."""

    id: str
    owner: str
    name: str
    description: str
    gender: str
    is_public: bool
    appearance_tags: list[str]
    clothing_tags: list[str]
    primary_portrait_id: str | None
    primary_thumbnail_key: str | None
    portrait_count: int
    updated_at: datetime


class Template(BaseModel):
    id: str
    name: str
    summary: str
    character: dict[str, Any]


class SceneCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=80)
    description: str = Field("", max_length=2000)
    prompt: str = Field("", max_length=1000)
    type: str = Field("custom", max_length=40)
    starters: list[str] = []
    system_prompt: str | None = Field(None, max_length=8000)
    priority: int = Field(0, ge=-1000, le=1000)

    @field_validator("starters", mode="before")
    @classmethod
    def _starters(cls, v):
        return _bounded_list(v, max_count=10, max_len=500)


class SceneUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(None, min_length=1, max_length=80)
    description: str | None = Field(None, max_length=2000)
    prompt: str | None = Field(None, max_length=1000)
    type: str | None = Field(None, max_length=40)
    starters: list[str] | None = None
    system_prompt: str | None = Field(None, max_length=8000)
    priority: int | None = Field(None, ge=-1000, le=1000)

    @field_validator("starters", mode="before")
    @classmethod
    def _starters(cls, v):
        return None if v is None else _bounded_list(v, max_count=10, max_len=500)


class Scene(BaseModel):
    id: str
    character_id: str
    owner: str
    name: str
    description: str
    prompt: str
    type: str
    starters: list[str]
    system_prompt: str | None
    priority: int
    image_key: str | None
    thumbnail_key: str | None
    job_id: str | None
    recipe: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ReferenceMapping(BaseModel):
    """Where a model takes its reference image: field name, single value or list, and a limit."""

    model_config = ConfigDict(extra="forbid")
    field: str = "image_url"
    form: Literal["single", "list"] = "single"
    limit: int = Field(1, ge=1, le=16)


class Capabilities(BaseModel):
    model_config = ConfigDict(extra="ignore")
    supports_txt2img: bool = True
    supports_i2i: bool = False
    max_references: int = Field(0, ge=0, le=16)
    reference: ReferenceMapping | None = None
    max_resolution: str | None = None
    aspect_ratios: list[str] = []
    formats: list[str] = ["png"]
    price_per_image: float | None = Field(None, ge=0)  # USD; recorded as the cost where the provider reports none


class ModelSpec(BaseModel):
    """A model as a provider declares it (the catalog's seed)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    model_key: str = Field(min_length=1, max_length=200)
    display_name: str = Field(min_length=1, max_length=120)
    modality: Modality = "image"
    capabilities: Capabilities = Capabilities()
    priority: int = 0
    is_active: bool = True
    input_defaults: dict[str, Any] = {}
    notes: str = ""


class ModelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    display_name: str | None = Field(None, min_length=1, max_length=120)
    modality: Modality | None = None
    capabilities: Capabilities | None = None
    priority: int | None = Field(None, ge=-10000, le=10000)
    is_active: bool | None = None
    input_defaults: dict[str, Any] | None = None
    notes: str | None = Field(None, max_length=4000)
    retired: Literal[False] | None = None  # False brings back a model its provider had retired


class CatalogModel(BaseModel):
    """A model row of the catalog."""

    model_config = ConfigDict(protected_namespaces=())
    id: str
    provider_id: str
    model_key: str
    display_name: str
    modality: Modality
    capabilities: Capabilities
    is_active: bool
    priority: int
    input_defaults: dict[str, Any]
    notes: str
    provider_configured: bool = False
    retired_at: datetime | None = None  # when the provider answered that the model is gone
    retired_reason: str | None = None  # the provider's words

    @property
    def supports_i2i(self) -> bool:
        return self.capabilities.supports_i2i

    @property
    def retired(self) -> bool:
        return self.retired_at is not None


class ProviderInfo(BaseModel):
    """A provider row of the catalog, with its state in this process (never the key)."""

    id: str
    display_name: str
    key_env: list[str]
    configured: bool
    base_url: str | None
    resumable: bool
    preview: bool
    concurrency_limit: int
    is_enabled: bool


class ProviderUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    concurrency_limit: int | None = Field(None, ge=1, le=256)
    is_enabled: bool | None = None


Size = tuple[int, int]


class GenerationOptions(BaseModel):
    """What a user asks for when generating portraits."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    prompt: str = Field("", max_length=PROMPT_MAX)
    presets: Presets = Presets()
    model_id: str | None = None
    reference: Literal["none", "character", "portrait", "upload"] = "none"
    reference_portrait_id: str | None = None
    reference_key: str | None = None
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    width: int = Field(1024, ge=64, le=4096)
    height: int = Field(1024, ge=64, le=4096)
    n: int = Field(1, ge=1, le=8)

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt(cls, v):
        if v is None:
            return ""
        v = " ".join(str(v).split())
        if len(v) > PROMPT_MAX:
            raise ValueError(f"the custom prompt may have at most {PROMPT_MAX} characters, got {len(v)}")
        return v


class Portrait(BaseModel):
    id: str
    character_id: str
    owner: str
    image_key: str
    thumbnail_key: str
    prompt: str
    recipe: dict[str, Any]
    job_id: str
    sort_order: int
    width: int
    height: int
    created_at: datetime
    is_primary: bool = False


class Job(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    id: str
    kind: JobKind
    owner: str
    character_id: str
    scene_id: str | None
    batch_id: str
    seq: int
    status: JobStatus
    stage: str
    percent: float | None
    queue_position: int | None
    provider_id: str
    model_key: str
    model_id: str
    request: dict[str, Any]
    provider_request_id: str | None
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    result_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    provider_ms: float | None
    overhead_ms: float | None
    cost: float | None = None  # USD

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a listing."""

    items: list[T]
    total: int
    offset: int
    limit: int
