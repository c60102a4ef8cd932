"""What every repository shares: settings, database, image store, catalog, the acting user."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.config import Settings
from core.data import Database
from core.errors import Forbidden, NotFound
from core.storage import ImageStore

if TYPE_CHECKING:
    from core.catalog import Catalog
    from core.presets import PresetCatalog


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Context:
    settings: Settings
    db: Database
    store: ImageStore
    catalog: "Catalog"
    presets: "PresetCatalog"


@dataclass(frozen=True)
class Actor:
    """The user on whose behalf an operation runs."""

    id: str
    is_admin: bool = False

    def require_owner(self, owner: str, what: str) -> None:
        if owner != self.id and not self.is_admin:
            raise Forbidden(f"Only the owner can change this {what}.")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("Only administrators can manage providers and models.")


def not_found(what: str, ident: str) -> NotFound:
    return NotFound(f"No {what} with id {ident!r}.")
