"""The errors the core raises. Every one carries a message fit to show a user.

Messages pass through `core.redaction` whenever they are set, so no secret is ever shown.
"""
from __future__ import annotations

from core.redaction import redact


class StudioError(Exception):
    """Base of every error the core raises on purpose."""

    code = "error"

    def __init__(self, message: str):
        super().__init__(redact(str(message)))

    @property
    def message(self) -> str:
        return self.args[0] if self.args else ""

    @message.setter
    def message(self, value: str) -> None:
        self.args = (redact(str(value)),)


class InvalidInput(StudioError):
    """Input failed validation; `errors` maps each field to what is allowed."""

    code = "invalid_input"

    def __init__(self, errors: dict[str, str]):
        self.errors = {field: redact(str(msg)) for field, msg in errors.items()}
        super().__init__("; ".join(f"{field}: {msg}" for field, msg in self.errors.items()))

    @classmethod
    def from_pydantic(cls, exc, *, name: str = "input") -> "InvalidInput":
        """Field-by-field messages of a pydantic ValidationError; `name` for an error of the whole value."""
        errors: dict[str, str] = {}
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or name
            errors.setdefault(field, describe(err))
        return cls(errors)


def describe(err: dict) -> str:
    """One pydantic error in the field's own words ("at least 1 (got 0)", "must be text")."""
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    shown = repr(got) if len(repr(got)) <= 40 else repr(got)[:37] + "..."
    words = {
        "string_type": f"must be text (got {type(got).__name__})",
        "string_unicode": "must be valid Unicode text (it holds undecodable characters)",
        "int_type": f"must be a whole number (got {type(got).__name__})",
        "int_parsing": f"must be a whole number (got {shown})",
        "int_from_float": f"must be a whole number (got {shown})",
        "float_type": f"must be a number (got {type(got).__name__})",
        "float_parsing": f"must be a number (got {shown})",
        "bool_type": f"must be true or false (got {type(got).__name__})",
        "bool_parsing": f"must be true or false (got {shown})",
        "bytes_type": f"must be bytes (got {type(got).__name__})",
        "list_type": f"must be a list (got {type(got).__name__})",
        "tuple_type": f"must be a list (got {type(got).__name__})",
        "dict_type": f"must be an object of fields (got {type(got).__name__})",
        "model_type": f"must be an object of fields (got {type(got).__name__})",
        "missing": "is required",
        "extra_forbidden": "is not a known field",
        "literal_error": f"must be one of {ctx.get('expected')} (got {shown})",
        "enum": f"must be one of {ctx.get('expected')} (got {shown})",
        "greater_than_equal": f"at least {ctx.get('ge')} (got {shown})",
        "greater_than": f"more than {ctx.get('gt')} (got {shown})",
        "less_than_equal": f"at most {ctx.get('le')} (got {shown})",
        "less_than": f"less than {ctx.get('lt')} (got {shown})",
        "string_too_long": f"at most {ctx.get('max_length')} characters (got {len(got) if isinstance(got, str) else shown})",
        "string_too_short": f"at least {ctx.get('min_length')} characters",
    }
    if kind in words:
        return words[kind]
    msg = err["msg"]
    return msg[len("Value error, "):] if msg.startswith("Value error, ") else msg


class NotFound(StudioError):
    code = "not_found"


class Forbidden(StudioError):
    code = "forbidden"


class BudgetExceeded(StudioError):
    """A generation would spend more than what is left of the user's monthly budget; nothing was queued."""

    code = "budget_exceeded"


class CostNotConfirmed(StudioError):
    """A comparison's estimated cost is above STUDIO_COMPARE_CONFIRM_USD and was not confirmed; nothing was queued."""

    code = "cost_not_confirmed"


class DatabaseLocked(StudioError):
    code = "database_locked"


class WaitTimedOut(StudioError, TimeoutError):
    """`jobs.wait` gave up before the jobs finished (they keep running)."""

    code = "wait_timed_out"


class DatabaseError(StudioError):
    """The database refused an operation or holds a row the studio cannot read (details are logged)."""

    code = "database_error"


class ConstraintViolation(DatabaseError):
    """A write broke a constraint (a second row for a unique key): the transaction was rolled back."""

    code = "constraint_violation"


class ModelNotAvailable(StudioError):
    """The explicitly chosen model does not exist, is inactive or its provider is not configured."""

    code = "model_not_found"


class NoImageToImageModel(StudioError):
    code = "no_i2i_model"

    def __init__(self, message: str = "No image-to-image model is available: activate one on the Models page, configure its provider's key, or remove the reference image."):
        super().__init__(message)


class NoImageModel(StudioError):
    code = "no_image_model"

    def __init__(self, message: str = "No image model is available: activate a model on the Models page or configure a provider's key."):
        super().__init__(message)


class StorageError(StudioError):
    code = "storage_error"


class InvalidImage(StudioError):
    code = "invalid_image"


class ImageTooLarge(InvalidImage):
    """An image over the byte or pixel limit (a decompression bomb among them)."""

    code = "image_too_large"


class InvalidSetting(StudioError):
    """A setting from the environment cannot be used; the message names the variable, never its value."""

    code = "invalid_setting"


class ProviderError(StudioError):
    """A provider call failed. `retryable` decides between backing off and failing the job."""

    code = "provider_error"

    def __init__(self, message: str, *, retryable: bool, status: int | None = None,
                 retry_after: float | None = None, kind: str | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.kind = kind


class AssistFailed(StudioError):
    """An AI assist call failed or took too long; nothing was changed."""

    code = "assist_failed"


class AssistRateLimited(AssistFailed):
    """The user made more AI assist calls in the last minute than STUDIO_ASSIST_RATE allows."""

    code = "assist_rate_limited"


class NoTextModel(AssistFailed):
    code = "no_text_model"

    def __init__(self, message: str = "No text model is available: activate one on the Models page (the offline "
                                      "suggester needs no key)."):
        super().__init__(message)
