"""The provider and model catalog: seeding from plugins, admin edits, routing."""
from __future__ import annotations

import threading
from typing import Any

from core.context import Actor, new_id, not_found
from core.data import Database, dumps, loads, utcnow
from core.errors import InvalidInput, ModelNotAvailable, NoImageModel, NoImageToImageModel
from core.models import CatalogModel, ModelSpec, ModelUpdate, ProviderInfo, ProviderUpdate, parse
from core.provider import Provider


_INSERT_MODEL = ("INSERT INTO api_models (id, provider_id, model_key, display_name, modality, capabilities, is_active, "
                 "priority, input_defaults, notes, edited, admin_fields, declared, created_at, updated_at) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
# The fields a plugin's ModelSpec seeds, in _INSERT_MODEL's order; an admin's edit of one wins over the plugin's.
SEEDED_FIELDS = ("display_name", "modality", "capabilities", "is_active", "priority", "input_defaults", "notes")


def _spec_values(spec: ModelSpec) -> dict[str, Any]:
    """A ModelSpec as the api_models columns SEEDED_FIELDS hold it."""
    return {"display_name": spec.display_name, "modality": spec.modality,
            "capabilities": dumps(spec.capabilities.model_dump()), "is_active": spec.is_active,
            "priority": spec.priority, "input_defaults": dumps(spec.input_defaults), "notes": spec.notes}


class Catalog:
    """Providers (instances, by id) and the api_providers / api_models tables.

    The two tables are small and read on every generation and claim, so their rows are held in
    memory and reloaded after any write through this class (the only writer: the studio process
    owns the database file).
    """

    def __init__(self, db: Database, providers: dict[str, Provider]):
        self.db = db
        self.instances = providers
        self._lock = threading.Lock()
        self._version = 0
        self._rows: tuple[list[dict[str, Any]], dict[str, dict[str, Any]]] | None = None

    def _snapshot(self) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """(model rows by priority, provider rows by id), loaded once per catalog write."""
        rows = self._rows
        if rows is None:
            version = self._version
            models = self.db.fetchall("SELECT * FROM api_models ORDER BY priority DESC, display_name")
            providers = {r["id"]: r for r in self.db.fetchall("SELECT * FROM api_providers")}
            rows = (models, providers)
            with self._lock:
                if version == self._version:  # no write happened while reading
                    self._rows = rows
        return rows

    def _changed(self) -> None:
        with self._lock:
            self._version += 1
            self._rows = None

    # -- seeding ---------------------------------------------------------------------
    def seed(self) -> None:
        """Sync the catalog with the loaded plugins (docs/plugins.md, "The catalog"): insert new
        providers and default models; refresh every field of a declared model that no admin set;
        retire models a loaded provider no longer declares (and bring them back if it does again)."""
        now = utcnow()
        with self.db.transaction() as cur:
            have = {r[0] for r in cur.execute("SELECT id FROM api_providers").fetchall()}
            rows = {(r[0], r[1]): r[2:] for r in cur.execute(
                "SELECT provider_id, model_key, id, edited, admin_fields, declared, retired_by FROM api_models").fetchall()}
            for pid, provider in self.instances.items():
                if pid not in have:
                    cur.execute("INSERT INTO api_providers VALUES (?, ?, ?, TRUE, ?, ?)",
                                [pid, provider.display_name, provider.default_concurrency, now, now])
                declared = set()
                for spec in provider.default_models():
                    declared.add(spec.model_key)
                    found = rows.get((pid, spec.model_key))
                    values = _spec_values(spec)
                    if found is None:
                        cur.execute(_INSERT_MODEL, [new_id(), pid, spec.model_key, *values.values(), False, "[]", True,
                                                    now, now])
                        continue
                    model_id, edited, admin_fields, _, retired_by = found
                    mine = set(SEEDED_FIELDS if admin_fields is None and edited else loads(admin_fields, []))
                    changes = {k: v for k, v in values.items() if k not in mine}
                    sets = "".join(f"{k} = ?, " for k in changes)
                    back = retired_by == "plugin"  # declared again: the sync's own retirement ends
                    cur.execute(f"UPDATE api_models SET {sets}declared = TRUE, admin_fields = ?"
                                + (", retired_at = NULL, retired_reason = NULL, retired_by = NULL" if back else "")
                                + " WHERE id = ?", [*changes.values(), dumps(sorted(mine)), model_id])
                for (row_pid, key), (model_id, edited, _, was_declared, retired_by) in rows.items():
                    seeded = was_declared or (was_declared is None and not edited)
                    if row_pid == pid and key not in declared and seeded and retired_by is None:
                        cur.execute("UPDATE api_models SET retired_at = ?, retired_reason = ?, retired_by = 'plugin' "
                                    "WHERE id = ? AND retired_at IS NULL",
                                    [now, f"{provider.display_name} no longer declares this model", model_id])
        self._changed()

    # -- providers -------------------------------------------------------------------
    def provider(self, provider_id: str) -> Provider:
        try:
            return self.instances[provider_id]
        except KeyError:
            raise ModelNotAvailable(f"Provider {provider_id!r} is not installed (is its plugin loaded?).") from None

    def providers(self) -> list[ProviderInfo]:
        rows = self._snapshot()[1]
        out = []
        for pid, p in self.instances.items():
            row = rows.get(pid, {})
            out.append(ProviderInfo(
                id=pid, display_name=p.display_name, key_env=list(p.key_env), configured=p.is_configured(),
                base_url=p.base_url, resumable=p.resumable, preview=p.preview,
                concurrency_limit=row.get("concurrency_limit", p.default_concurrency),
                is_enabled=row.get("is_enabled", True), text=getattr(p, "text", False),
                offline=getattr(p, "offline", False)))
        return sorted(out, key=lambda p: (not p.configured, p.preview, p.display_name))

    def update_provider(self, actor: Actor, provider_id: str, changes: ProviderUpdate | dict[str, Any]) -> ProviderInfo:
        actor.require_admin()
        given = parse(ProviderUpdate, changes).model_dump(exclude_none=True)
        self.provider(provider_id)
        if given:
            sets = ", ".join(f"{k} = ?" for k in given)
            self.db.execute(f"UPDATE api_providers SET {sets}, updated_at = ? WHERE id = ?",
                            [*given.values(), utcnow(), provider_id])
            self._changed()
        return next(p for p in self.providers() if p.id == provider_id)

    def concurrency_limits(self) -> dict[str, int]:
        return {pid: r["concurrency_limit"] for pid, r in self._snapshot()[1].items()}

    def usable_provider_ids(self) -> set[str]:
        rows = self._snapshot()[1]
        return {pid for pid, p in self.instances.items() if pid in rows and rows[pid]["is_enabled"] and p.is_configured()}

    # -- models ----------------------------------------------------------------------
    def models(self, *, modality: str | None = "image", active_only: bool = False, usable_only: bool = False) -> list[CatalogModel]:
        """Models by priority (highest first)."""
        rows = [r for r in self._snapshot()[0] if r["provider_id"] in self.instances
                and (not modality or r["modality"] == modality) and (not active_only or r["is_active"])]
        usable = self.usable_provider_ids()
        out = [self._row(r, usable) for r in rows]
        return [m for m in out if m.provider_configured] if usable_only else out

    def get_model(self, model_id: str) -> CatalogModel:
        """A model by id, or by model key when no id matches."""
        rows = self._snapshot()[0]
        row = next((r for r in rows if r["id"] == model_id), None) or next((r for r in rows if r["model_key"] == model_id), None)
        if row is None:
            raise not_found("model", model_id)
        return self._row(row, self.usable_provider_ids())

    def add_model(self, actor: Actor, provider_id: str, spec: ModelSpec | dict[str, Any]) -> CatalogModel:
        actor.require_admin()
        spec = parse(ModelSpec, spec)
        self.provider(provider_id)
        if any(r["provider_id"] == provider_id and r["model_key"] == spec.model_key for r in self._snapshot()[0]):
            raise InvalidInput({"model_key": f"{provider_id} already has a model {spec.model_key!r}"})
        model_id, now = new_id(), utcnow()
        self.db.execute(_INSERT_MODEL, [model_id, provider_id, spec.model_key, *_spec_values(spec).values(), True,
                                        dumps(list(SEEDED_FIELDS)), False, now, now])
        self._changed()
        return self.get_model(model_id)

    def update_model(self, actor: Actor, model_id: str, changes: ModelUpdate | dict[str, Any]) -> CatalogModel:
        """Change a model; each field set is recorded as the admin's (`admin_fields`), so a plugin's
        later defaults leave it alone."""
        actor.require_admin()
        given = parse(ModelUpdate, changes).model_dump(exclude_none=True)
        model = self.get_model(model_id)
        if not given:
            return model
        for k in ("capabilities", "input_defaults"):
            if k in given:
                given[k] = dumps(given[k])
        if given.pop("retired", None) is False:
            given.update(retired_at=None, retired_reason=None, retired_by=None)
        admin = sorted(set(model.admin_fields) | (set(given) & set(SEEDED_FIELDS)))
        sets = ", ".join(f"{k} = ?" for k in given)
        self.db.execute(f"UPDATE api_models SET {sets}, edited = TRUE, admin_fields = ?, updated_at = ? WHERE id = ?",
                        [*given.values(), dumps(admin), utcnow(), model.id])
        self._changed()
        return self.get_model(model.id)

    def retire(self, model_id: str, reason: str) -> None:
        """Mark a model its provider answered is gone (not found, retired): no longer routed to,
        shown as retired, until an admin brings it back (`update_model(..., {"retired": False})`)."""
        if self.db.execute("UPDATE api_models SET retired_at = ?, retired_reason = ?, retired_by = 'provider' "
                           "WHERE id = ? AND retired_at IS NULL", [utcnow(), reason[:500], model_id]):
            self._changed()

    def route(self, model_id: str | None, *, needs_i2i: bool) -> CatalogModel:
        """Pick the model for a generation: an explicit model must be active and usable; otherwise the highest-priority usable model (image-to-image when there is a reference)."""
        if model_id:
            try:
                model = self.get_model(model_id)
            except Exception:
                raise ModelNotAvailable(f"Model {model_id!r} was not found or is inactive.") from None
            if not model.is_active or model.modality != "image":
                raise ModelNotAvailable(f"Model {model.display_name!r} was not found or is inactive.")
            if model.retired:
                raise ModelNotAvailable(f"Model {model.display_name!r} was retired ({model.retired_reason}); "
                                        "pick another model.")
            if not model.provider_configured:
                raise ModelNotAvailable(f"Model {model.display_name!r} cannot run: its provider {model.provider_id!r} is not configured or disabled.")
            if needs_i2i and not model.supports_i2i:
                raise ModelNotAvailable(f"Model {model.display_name!r} does not take a reference image; pick an image-to-image model or remove the reference.")
            return model
        candidates = [m for m in self.models(active_only=True, usable_only=True) if not m.retired]
        if needs_i2i:
            candidates = [m for m in candidates if m.supports_i2i]
            if not candidates:
                raise NoImageToImageModel()
        else:
            candidates = [m for m in candidates if m.capabilities.supports_txt2img]
        if not candidates:
            raise NoImageModel()
        return candidates[0]

    def i2i_count(self) -> int:
        """How many active, usable image-to-image models there are (the "Image match" badge)."""
        return sum(1 for m in self.models(active_only=True, usable_only=True) if m.supports_i2i and not m.retired)

    @staticmethod
    def _row(row: dict[str, Any], usable: set[str]) -> CatalogModel:
        admin = list(SEEDED_FIELDS) if row["admin_fields"] is None and row["edited"] else loads(row["admin_fields"], [])
        return CatalogModel.model_validate({
            **row, "capabilities": loads(row["capabilities"], {}), "input_defaults": loads(row["input_defaults"], {}),
            "admin_fields": admin, "provider_configured": row["provider_id"] in usable})
