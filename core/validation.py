"""Boundary checks shared by the models and the facade.

`Text` is the one validator of every text field (control characters, one line or several,
length); `TextList` applies it to each entry of a list field. `checked` validates a facade
method's arguments against their annotations before the method runs, so a wrong type or value
raises `InvalidInput` naming the parameter instead of a TypeError or a database error later.
"""
from __future__ import annotations

import functools
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, Strict, TypeAdapter, ValidationError
from pydantic_core import core_schema

from core.errors import InvalidInput, describe

ID_MAX = 200
LIMIT_MAX = 10_000  # a page, not a dump: the UI grows its list page by page
OFFSET_MAX = 2**62
SEED_MAX = 2**63 - 1

# C0 and C1 control characters and DEL; multi-line text keeps tab, line feed and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BREAKS = re.compile(r"[\t\n\r\u2028\u2029]")


@dataclass(frozen=True)
class Text:
    """A text field's rules, used as `Annotated[str, Text(2000, multiline=True)]`.

    NUL and every other control character are refused; surrounding whitespace is stripped;
    line breaks and tabs only where `multiline` (a carriage return becomes a line feed);
    `collapse` turns each run of whitespace into one space (tags, the custom prompt).
    """

    max_len: int
    min_len: int = 0
    multiline: bool = False
    collapse: bool = False
    noun: str = "a value"  # for "a name is required (at least 1 character, at most 50)"

    def __get_pydantic_core_schema__(self, source: Any, handler: Callable[[Any], Any]) -> Any:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def check(self, value: str) -> str:
        bad = _CONTROL.search(value)  # before stripping: some control characters count as whitespace
        if bad:
            raise ValueError(f"control characters are not allowed (U+{ord(bad.group()):04X} at character {bad.start() + 1})")
        value = value.strip()
        if self.multiline:
            value = value.replace("\r\n", "\n").replace("\r", "\n")
        elif _BREAKS.search(value):
            raise ValueError("must be one line (no line breaks or tabs)")
        if self.collapse:
            value = " ".join(value.split())
        if len(value) > self.max_len:
            raise ValueError(f"at most {self.max_len} characters (got {len(value)})")
        if len(value) < self.min_len:
            plural = "s" if self.min_len > 1 else ""
            raise ValueError(f"{self.noun} is required (at least {self.min_len} character{plural}, at most {self.max_len})")
        return value


@dataclass(frozen=True)
class TextList:
    """A list of texts, used as `Annotated[list[str], TextList(Text(40), 20, noun="tag")]`.

    None means an empty list; a single string is one entry (or, with `split`, entries separated
    by it); blank entries are dropped; `dedupe` drops case-insensitive repeats.
    """

    item: Text
    max_count: int
    noun: str = "entry"
    plural: str = "entries"
    split: str | None = None
    dedupe: bool = False

    def __get_pydantic_core_schema__(self, source: Any, handler: Callable[[Any], Any]) -> Any:
        return core_schema.no_info_before_validator_function(self.clean, handler(source))

    def clean(self, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = value.split(self.split) if self.split else [value]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"must be a list of texts (got {type(value).__name__})")
        out: list[str] = []
        seen: set[str] = set()
        for i, raw in enumerate(value, start=1):
            if not isinstance(raw, str):
                raise ValueError(f"{self.noun} {i} must be text (got {type(raw).__name__})")
            try:
                text = self.item.check(raw)
            except ValueError as exc:
                raise ValueError(f"{self.noun} {i}: {exc}") from None
            if not text or (self.dedupe and text.lower() in seen):
                continue
            seen.add(text.lower())
            out.append(text)
        if len(out) > self.max_count:
            raise ValueError(f"at most {self.max_count} {self.plural} (got {len(out)})")
        return out


def text_limit(model: type[BaseModel], field: str) -> int:
    """The most characters `model.field` takes (its `Text` rule; for a list, each entry's), for forms that
    show the limit."""
    info = model.model_fields[field]
    for meta in _metadata(info.annotation, info.metadata):
        if isinstance(meta, Text):
            return meta.max_len
        if isinstance(meta, TextList):
            return meta.item.max_len
    raise LookupError(f"{model.__name__}.{field} has no Text rule")


def _metadata(annotation: Any, metadata: list[Any]) -> list[Any]:
    found = list(metadata)
    for arg in typing.get_args(annotation):  # `Annotated[str, Text(...)] | None`
        found += list(getattr(arg, "__metadata__", ()))
    return found


# Facade parameter types (see `checked`).
Id = Annotated[str, Strict(), Text(ID_MAX, min_len=1, noun="an id")]
Limit = Annotated[int, Strict(), Field(ge=0, le=LIMIT_MAX)]
Offset = Annotated[int, Strict(), Field(ge=0, le=OFFSET_MAX)]
Seed = Annotated[int, Strict(), Field(ge=0, le=SEED_MAX)]
Search = Annotated[str, Strict(), Text(200)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def fields_of(value: Any, name: str, model: type[BaseModel]) -> Any:
    """`value` if it is a `model` or a mapping (a copy), else InvalidInput naming the parameter."""
    if isinstance(value, model):
        return value
    if isinstance(value, Mapping):
        return dict(value)
    raise InvalidInput({name: f"must be an object of fields (a dict or {model.__name__}), got {type(value).__name__}"})


F = TypeVar("F", bound=Callable[..., Any])


def checked(func: F) -> F:
    """Validate the annotated arguments of a facade method before it runs.

    Each annotation is validated with pydantic; a failure raises InvalidInput naming the
    parameter. Parameters typed with a pydantic model (or a union with one) are left to the
    method, which parses them with field-level messages; `Any`, `*args` and `**kwargs` are
    not checked. Annotations are resolved on first call (they may name later classes).
    """
    signature = inspect.signature(func)
    adapters: dict[str, TypeAdapter] | None = None

    def build() -> dict[str, TypeAdapter]:
        hints = typing.get_type_hints(func, include_extras=True)
        out = {}
        for name, param in signature.parameters.items():
            hint = hints.get(name)
            if name == "self" or hint is None or hint is Any or _mentions_model(hint) \
                    or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            out[name] = TypeAdapter(hint)
        return out

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal adapters
        if adapters is None:
            adapters = build()
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput({"arguments": str(exc)}) from None
        errors: dict[str, str] = {}
        for name, value in bound.arguments.items():
            adapter = adapters.get(name)
            if adapter is None:
                continue
            try:
                bound.arguments[name] = adapter.validate_python(value)
            except ValidationError as exc:
                # One message per parameter: of a union's attempts, the one that got furthest.
                err = max(exc.errors(), key=lambda e: len(e["loc"]))
                errors[".".join([name, *(str(p) for p in err["loc"] if isinstance(p, int))])] = describe(err)
        if errors:
            raise InvalidInput(errors)
        return func(*bound.args, **bound.kwargs)

    return typing.cast(F, wrapper)


def _mentions_model(hint: Any) -> bool:
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_mentions_model(a) for a in typing.get_args(hint))
    return False
