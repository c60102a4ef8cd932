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
    def from_pydantic(cls, exc) -> "InvalidInput":
        errors: dict[str, str] = {}
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "input"
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
            errors.setdefault(field, msg)
        return cls(errors)


class NotFound(StudioError):
    code = "not_found"


class Forbidden(StudioError):
    code = "forbidden"


class DatabaseLocked(StudioError):
    code = "database_locked"


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
