"""Pydantic domain types: what crosses the core's boundary, validated once."""
from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from core.errors import DatabaseError, InvalidInput
from core.validation import ID_MAX, SEED_MAX, Text, TextList

Gender = Literal["female", "male", "non-binary", "unspecified"]
ContentRating = Literal["sfw", "nsfw"]
VoiceTone = Literal["warm", "playful", "confident", "teasing", "direct"]
Mood = Literal["friendly", "flirty", "mysterious", "dominant", "submissive"]
Modality = Literal["image", "chat", "video"]
JobStatus = Literal["queued", "running", "storing", "completed", "failed", "canceled"]
JobKind = Literal["portrait", "scene", "comparison"]  # comparison: a Compare grid cell (core/compare/)

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
BATCH_MAX = 8  # images one generate call may ask for (the UI offers the same)

# Every text field is a `Text`: control characters are refused, line breaks only where the field
# is multi-line text (descriptions, persona, prompts, greetings...).
Name = Annotated[str, Text(NAME_MAX, min_len=1, noun="a name")]
Description = Annotated[str, Text(DESCRIPTION_MAX, multiline=True)]
Tags = Annotated[list[str], TextList(Text(TAG_MAX_LEN, collapse=True), TAG_MAX_COUNT, noun="tag", plural="tags",
                                     split=",", dedupe=True)]
Greetings = Annotated[list[str], TextList(Text(2000, multiline=True), 10)]
Phrases = Annotated[list[str], TextList(Text(200), 50)]
PresetKey = Annotated[str, Text(60)]
SystemPrompt = Annotated[str, Text(8000, multiline=True)]
StorageKey = Annotated[str, Text(500, min_len=1, noun="a key")]

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any, *, name: str = "input") -> M:
    """Validate `data` into `model`, raising InvalidInput that names each field (`name`: the whole value)."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput.from_pydantic(exc, name=name) from None


def from_row(model: type[M], row: dict[str, Any], *, json_fields: dict[str, Any] | None = None, what: str) -> M:
    """A read model from a stored row, tolerant of damage: a JSON column that does not parse, or a
    value the model refuses, is logged and replaced by the field's default (`json_fields` maps
    each JSON column to its default). A damaged field without a default raises DatabaseError."""
    data = dict(row)
    for field, default in (json_fields or {}).items():
        raw = data.get(field)
        try:
            data[field] = default if raw is None else json.loads(raw)
        except (TypeError, ValueError):
            log.warning("%s %s: %s is not valid JSON; using %r", what, data.get("id"), field, default)
            data[field] = default
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        damaged = sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]})
        info = model.model_fields
        if damaged and all(f in info and not info[f].is_required() for f in damaged):
            log.warning("%s %s: damaged %s replaced by defaults", what, data.get("id"), ", ".join(damaged))
            try:
                return model.model_validate({k: v for k, v in data.items() if k not in damaged})
            except ValidationError as again:
                exc = again
        log.error("%s %s cannot be read: %s", what, data.get("id"), exc)
        raise DatabaseError(f"The {what} {data.get('id')!r} is damaged in the database ({', '.join(damaged)}).") from None


def from_rows(model: type[M], rows: list[dict[str, Any]], *, json_fields: dict[str, Any] | None = None,
              what: str) -> list[M]:
    """`from_row` for a listing: a row that cannot be read at all is logged and left out."""
    out = []
    for row in rows:
        try:
            out.append(from_row(model, row, json_fields=json_fields, what=what))
        except DatabaseError:
            continue  # logged by from_row; one damaged row never breaks a listing
    return out


class Presets(BaseModel):
    """Selected preset keys (see data/presets.json)."""

    model_config = ConfigDict(extra="forbid")
    pose: PresetKey | None = None
    expression: PresetKey | None = None
    outfit: PresetKey | None = None
    camera: PresetKey | None = None


# Fields that always have a value: None is refused for them in an update.
CHARACTER_REQUIRED = ("name", "gender", "content_rating", "voice_tone", "mood", "is_public")


class _CharacterFields(BaseModel):
    """The editable fields of a character.

    None clears a field: a list field becomes empty, `default_presets` empty, `description` "",
    and the optional texts (traits, persona, first_message, system_prompt) unset. The fields in
    CHARACTER_REQUIRED refuse None.
    """

    model_config = ConfigDict(extra="forbid")  # `Text` strips

    description: Description = ""
    gender: Gender | None = None
    content_rating: ContentRating | None = None
    is_public: bool | None = None
    traits: Annotated[str, Text(1000, multiline=True)] | None = None
    persona: Annotated[str, Text(4000, multiline=True)] | None = None
    appearance_tags: Tags = []
    clothing_tags: Tags = []
    voice_tone: VoiceTone | None = None
    mood: Mood | None = None
    first_message: Annotated[str, Text(2000, multiline=True)] | None = None
    alternate_greetings: Greetings = []
    forbidden_phrases: Phrases = []
    voice_examples: Greetings = []
    system_prompt: SystemPrompt | None = None
    default_presets: Presets = Presets()

    @field_validator("description", mode="before")
    @classmethod
    def _empty_text(cls, v):
        return "" if v is None else v

    @field_validator("default_presets", mode="before")
    @classmethod
    def _empty_presets(cls, v):
        return {} if v is None else v

    @field_validator(*CHARACTER_REQUIRED, mode="before", check_fields=False)
    @classmethod
    def _not_none(cls, v):
        if v is None:
            raise ValueError("cannot be empty")
        return v


class CharacterCreate(_CharacterFields):
    """A new character. Only the name is required to save; a portrait also needs a description."""

    name: Name
    gender: Gender = "unspecified"
    content_rating: ContentRating = "sfw"
    is_public: bool = False
    voice_tone: VoiceTone = "warm"
    mood: Mood = "friendly"


class CharacterUpdate(_CharacterFields):
    """A partial update: only the fields given change (None clears a field, see _CharacterFields)."""

    name: Name | None = None


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
    gender: str = "unspecified"
    is_public: bool = False
    appearance_tags: list[str] = []
    clothing_tags: list[str] = []
    primary_portrait_id: str | None
    primary_thumbnail_key: str | None
    portrait_count: int
    updated_at: datetime


class Template(BaseModel):
    id: str
    name: str
    summary: str = ""
    character: dict[str, Any] = {}


class Enhancement(BaseModel):
    """An enhanced prompt (AI assist) a generation uses instead of the typed one; the recipe records it."""

    model_config = ConfigDict(extra="forbid")
    prompt: Annotated[str, Text(4000, min_len=1, multiline=True, collapse=True, noun="a prompt")]
    template: Annotated[str, Text(60, min_len=1, noun="a template id")]
    text_model: Annotated[str, Text(ID_MAX, min_len=1, noun="an id")]
    original_prompt: Annotated[str, Text(1000, multiline=True)] = ""


def made_from(prompt: str, enhancement: Enhancement | None) -> Enhancement | None:
    """An enhancement goes only with the prompt it was made from: with a prompt edited since, the old
    words would run under the new prompt's name (compared as the prompt fields store text: spaces collapsed)."""
    if enhancement is not None and " ".join(enhancement.original_prompt.split()) != " ".join(prompt.split()):
        raise ValueError("was made from another prompt (the prompt changed since): enhance it again, or discard it")
    return enhancement


class JobRequest(BaseModel):
    """What a job asks of its provider, stored as JSON in `jobs.request`. Rows written by older
    versions load as well: keys this model does not know are ignored, missing ones take these defaults."""

    model_config = ConfigDict(extra="ignore")
    prompt: str = ""  # the user's own words
    presets: dict[str, str] = {}  # preset kind -> key, as chosen
    final_prompt: str = ""  # what the provider is sent
    reference_key: str | None = None  # the reference image in the store (image-to-image)
    reference_hash: str | None = None
    width: int = 1024
    height: int = 1024
    content_rating: ContentRating = "sfw"
    seed: int = 0
    mode: Literal["txt2img", "i2i"] = "txt2img"
    model_name: str | None = None  # the model's display name when the job was created
    batch_index: int = 0
    # Written by the runner: what was submitted and when (the job's deadline counts from then), and
    # the provider's answer kept with the job while its image waits in the spool to be stored.
    inputs: dict[str, Any] = {}
    submitted_at: datetime | None = None
    store_attempts: int = 0
    provider_metadata: dict[str, Any] = {}
    cost: float | None = None  # USD
    estimated_cost: float | None = None  # USD, the catalog price: what the month's budget reserves while active
    enhancement: Enhancement | None = None  # the AI-enhanced prompt used (core/assist)

    def stored(self) -> dict[str, Any]:
        """The JSON-ready form written to `jobs.request`."""
        return self.model_dump(mode="json")


class Recipe(BaseModel):
    """How an image was made, stored with it (`recipe` of `character_portraits` and `scene_images`).
    Older rows load as well: unknown keys are ignored, missing ones take these defaults."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())
    provider: str | None = None
    model_id: str | None = None
    model_key: str | None = None
    model_name: str | None = None
    mode: Literal["txt2img", "i2i"] | None = None
    prompt: str = ""
    final_prompt: str = ""
    presets: dict[str, str] = {}
    inputs: dict[str, Any] = {}  # what the provider was sent, references named by hash
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    reference_key: str | None = None
    reference_hash: str | None = None
    provider_ms: float | None = None
    provider_request_id: str | None = None
    job_id: str | None = None
    batch_id: str | None = None
    content_rating: ContentRating | None = None
    provider_metadata: dict[str, Any] = {}
    cost: float | None = None  # USD
    sha256: str | None = None  # of the stored PNG
    overhead_ms: float | None = None  # the studio's own time for this image
    timings_ms: dict[str, float] = {}
    enhancement: Enhancement | None = None  # the AI-enhanced prompt's template and text model (core/assist)

    def stored(self) -> dict[str, Any]:
        """The JSON-ready form written to the `recipe` column."""
        return self.model_dump(mode="json")


SCENE_REQUIRED = ("name", "type", "priority")


class _SceneFields(BaseModel):
    """The editable fields of a scene. None clears a field: `starters` becomes empty, `description`
    and `prompt` "", `system_prompt` unset; the fields in SCENE_REQUIRED refuse None."""

    model_config = ConfigDict(extra="forbid")  # `Text` strips
    description: Annotated[str, Text(2000, multiline=True)] = ""
    prompt: Annotated[str, Text(1000, multiline=True)] = ""
    starters: Annotated[list[str], TextList(Text(500, multiline=True), 10, noun="starter", plural="starters")] = []
    system_prompt: SystemPrompt | None = None

    @field_validator("description", "prompt", mode="before")
    @classmethod
    def _empty_text(cls, v):
        return "" if v is None else v

    @field_validator(*SCENE_REQUIRED, mode="before", check_fields=False)
    @classmethod
    def _not_none(cls, v):
        if v is None:
            raise ValueError("cannot be empty")
        return v


class SceneCreate(_SceneFields):
    name: Annotated[str, Text(80, min_len=1, noun="a name")]
    type: Annotated[str, Text(40, min_len=1, noun="a type")] = "custom"
    priority: int = Field(0, ge=-1000, le=1000)


class SceneUpdate(_SceneFields):
    """A partial update: only the fields given change."""

    name: Annotated[str, Text(80, min_len=1, noun="a name")] | None = None
    type: Annotated[str, Text(40, min_len=1, noun="a type")] | None = None
    priority: int | None = Field(None, ge=-1000, le=1000)


class Scene(BaseModel):
    id: str
    character_id: str
    owner: str
    name: str
    description: str = ""
    prompt: str = ""
    type: str = "custom"
    starters: list[str] = []
    system_prompt: str | None = None
    priority: int = 0
    image_key: str | None
    thumbnail_key: str | None
    job_id: str | None
    recipe: Recipe = Recipe()
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
    supports_seed: bool = True  # the model takes a seed (a repeatable result); the UI shows it only then
    max_references: int = Field(0, ge=0, le=16)
    reference: ReferenceMapping | None = None
    max_resolution: str | None = None
    aspect_ratios: list[str] = []
    formats: list[str] = ["png"]
    # USD; the catalog price, recorded as a job's cost where the provider reports none (see core/budgets.py)
    price_per_image: float | None = Field(None, ge=0)
    price_per_megapixel: float | None = Field(None, ge=0)  # where the provider prices by output size
    max_prompt_chars: int | None = Field(None, ge=16, le=100000)  # the budget of an enhanced prompt (AI assist)


class ModelSpec(BaseModel):
    """A model as a provider declares it (the catalog's seed)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    model_key: Annotated[str, Text(200, min_len=1, noun="a model key")]
    display_name: Annotated[str, Text(120, min_len=1, noun="a display name")]
    modality: Modality = "image"
    capabilities: Capabilities = Capabilities()
    priority: int = 0
    is_active: bool = True
    input_defaults: dict[str, Any] = {}
    notes: Annotated[str, Text(4000, multiline=True)] = ""


class ModelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    display_name: Annotated[str, Text(120, min_len=1, noun="a display name")] | None = None
    modality: Modality | None = None
    capabilities: Capabilities | None = None
    priority: int | None = Field(None, ge=-10000, le=10000)
    is_active: bool | None = None
    input_defaults: dict[str, Any] | None = None
    notes: Annotated[str, Text(4000, multiline=True)] | None = None
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
    retired_by: Literal["provider", "plugin"] | None = None  # the service answered it is gone / the plugin dropped it
    admin_fields: list[str] = []  # fields an admin set: a plugin upgrade leaves them as they are

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
    text: bool = False  # a text (chat) provider, for AI assist
    offline: bool = False  # runs locally without a service (the offline suggester)


class ProviderUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    concurrency_limit: int | None = Field(None, ge=1, le=256)
    is_enabled: bool | None = None


Size = tuple[int, int]


class GenerationOptions(BaseModel):
    """What a user asks for when generating portraits. Image i of a batch uses seed + i, so the
    largest seed allowed is SEED_MAX - (n - 1)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    prompt: Annotated[str, Text(PROMPT_MAX, multiline=True, collapse=True)] = ""
    presets: Presets = Presets()
    # `model=` is accepted too; either takes a catalog id or a model key
    model_id: Annotated[str, Text(ID_MAX, min_len=1, noun="an id")] | None = Field(
        None, validation_alias=AliasChoices("model_id", "model"))
    reference: Literal["none", "character", "portrait", "upload"] = "none"
    reference_portrait_id: Annotated[str, Text(ID_MAX, min_len=1, noun="an id")] | None = None
    reference_key: StorageKey | None = None
    width: int = Field(1024, ge=64, le=4096)
    height: int = Field(1024, ge=64, le=4096)
    n: int = Field(1, ge=1, le=BATCH_MAX)
    seed: int | None = Field(None, ge=0, le=SEED_MAX)  # after n: its check reads n
    enhancement: Enhancement | None = None  # an AI-enhanced prompt (studio.assist.enhance_prompt) used as the prompt

    @field_validator("prompt", "presets", mode="before")
    @classmethod
    def _empty(cls, v, info: ValidationInfo):
        return ({} if info.field_name == "presets" else "") if v is None else v

    @field_validator("enhancement")
    @classmethod
    def _enhancement_of_prompt(cls, v, info: ValidationInfo):
        return made_from(info.data.get("prompt", ""), v)

    @field_validator("seed")
    @classmethod
    def _seed_fits_batch(cls, v, info: ValidationInfo):
        n = info.data.get("n", 1)
        if v is not None and v > SEED_MAX - (n - 1):
            raise ValueError(f"at most {SEED_MAX - (n - 1)} for a batch of {n} (image i uses seed + i)")
        return v


class Portrait(BaseModel):
    id: str
    character_id: str
    owner: str
    image_key: str
    thumbnail_key: str
    prompt: str
    recipe: Recipe = Recipe()
    job_id: str
    sort_order: int = 0
    width: int
    height: int
    created_at: datetime
    is_primary: bool = False
    is_public: bool = False  # as its character unless its owner chose (`Portraits.set_public`)
    visibility_set: bool = False  # True: the owner chose `is_public`; False: it follows the character


class NewJob(BaseModel):
    """A job row to insert (`JobStore.create`)."""

    model_config = ConfigDict(protected_namespaces=())
    kind: JobKind
    owner: str
    character_id: str
    scene_id: str | None = None
    batch_id: str
    provider_id: str
    model_id: str
    model_key: str
    request: JobRequest
    max_attempts: int


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
    request: JobRequest
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
    progress_message: str | None = None  # what the provider last said about the work (Progress.message)

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
