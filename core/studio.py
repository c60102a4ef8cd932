"""The Studio facade: the one object pages, the CLI and notebooks use."""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from core.assist.service import Assist
from core.assist.templates import seed_prompt_templates
from core.auth import AuthMode
from core.catalog import Catalog
from core.characters import Characters
from core.compare import Compare
from core.config import Settings
from core.context import Actor, Context
from core.data import open_database, utcnow
from core.drafts import Drafts
from core.budgets import Budgets
from core.errors import Forbidden, InvalidInput, InvalidSetting, NotFound, StorageError, StudioError
from core.images import placeholder
from core.engine.jobs import Jobs, JobStore
from core.maintenance import Maintenance
from core.models import CatalogModel, Character, ModelSpec, ModelUpdate, ProviderInfo, ProviderUpdate
from core.plugins import PluginInfo, collect_providers, make_plugin_manager, plugin_report, scoped_env
from core.portraits import Generator, Portraits, Uploads
from core.presets import PresetCatalog
from core.provider import Health
from core.engine.runner import Runner
from core.scenes import Scenes
from core.stats import GenerationStats, generation_stats
from core.storage import ImageStore
from core.templates import Templates, seed_templates

log = logging.getLogger(__name__)


def _make_home(home: Path) -> None:
    """Create the studio home folder; a path that is a file or cannot be made is a setting to fix."""
    try:
        home.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InvalidSetting(f"The studio home {home} is not a folder (it, or a folder above it, is a file): give --home "
                             "or STUDIO_HOME a folder "
                             "(it is created if missing).") from None
    except OSError as exc:
        raise InvalidSetting(f"The studio home {home} cannot be created ({exc.strerror or exc}): give --home or "
                             "STUDIO_HOME a folder this user may write.") from None


@dataclass
class _Engine:
    """Everything one open home owns: its database, image store, catalog and the one job runner.

    One per home per process, shared by every `Studio` opened on that home and every user's view
    of it; `_ENGINES` holds them by the database file's resolved path, each counting its openings.
    """

    ctx: Context
    jobs: JobStore
    runner: Runner
    plugin_manager: Any
    key: Path | str
    opened_with: tuple[Settings, tuple[object, ...], float]  # what a second opening must ask for too
    openings: int = 0

    @classmethod
    def create(cls, settings: Settings, plugins: Iterable[object], retry_base: float) -> "_Engine":
        _make_home(settings.home)
        db = open_database(settings)
        try:
            store = ImageStore.from_settings(settings)  # startup check: clear StorageError on a bad bucket/credentials
            pm = make_plugin_manager(settings.load_plugins, plugins)
            providers = {pid: cls_(scoped_env(settings.secrets, cls_)) for pid, cls_ in collect_providers(pm).items()}
            catalog = Catalog(db, providers)
            ctx = Context(settings=settings, db=db, store=store, catalog=catalog, presets=PresetCatalog())
            with db.exclusive("seed"):  # servers starting together on one database seed it once
                catalog.seed()
                seed_templates(ctx)
                seed_prompt_templates(ctx)
            jobs = JobStore(ctx)
            return cls(ctx, jobs, Runner(ctx, jobs, retry_base=retry_base), pm, _engine_key(settings),
                       _opened_with(settings, plugins, retry_base))
        except BaseException:
            db.close()
            raise

    def check_same(self, settings: Settings, plugins: Iterable[object], retry_base: float) -> None:
        """Refuse a second opening that asks for something this engine does not have."""
        mine, theirs = self.opened_with, _opened_with(settings, plugins, retry_base)
        differ = [f.name for f in fields(Settings) if getattr(mine[0], f.name) != getattr(theirs[0], f.name)]
        if len(mine[1]) != len(theirs[1]) or any(a is not b for a, b in zip(mine[1], theirs[1])):
            differ.append("plugins")
        if mine[2] != theirs[2]:
            differ.append("retry_base")
        if differ:
            raise StudioError(
                f"The studio home {self.ctx.settings.home} is already open in this process with other settings "
                f"({', '.join(differ)}). Use the open Studio, or close it before opening the home differently.")

    def shut(self) -> None:
        """Stop the runner (in-flight jobs resume on the next open) and close the database."""
        self.runner.stop()
        self.ctx.db.close()


_ENGINES: dict[Path | str, _Engine] = {}
_ENGINES_LOCK = threading.Lock()  # held while an engine is made, shared, or shut


def _engine_key(settings: Settings) -> Path | str:
    """The database an engine owns: the PostgreSQL URL, or the DuckDB file's resolved path."""
    return settings.database_url or settings.db_path.expanduser().resolve()


def _opened_with(settings: Settings, plugins: Iterable[object], retry_base: float):
    # The database path is the engine's key (compared resolved); secrets are the whole environment
    # and are not compared: the providers keep the keys of the first opening.
    return (replace(settings, secrets={}, db_path=settings.db_path.expanduser().resolve()), tuple(plugins),
            float(retry_base))


class Models:
    """The catalog as a user sees it; changes need an admin."""

    def __init__(self, studio: "Studio"):
        self._studio = studio
        self._catalog = studio.ctx.catalog
        self._actor = studio.actor

    def list(self, *, modality: str | None = "image", active_only: bool = False, usable_only: bool = False) -> list[CatalogModel]:
        return self._catalog.models(modality=modality, active_only=active_only, usable_only=usable_only)

    def get(self, model_id: str) -> CatalogModel:
        return self._catalog.get_model(model_id)

    def providers(self) -> list[ProviderInfo]:
        return self._catalog.providers()

    def add(self, provider_id: str, spec: ModelSpec | dict[str, Any]) -> CatalogModel:
        return self._catalog.add_model(self._actor, provider_id, spec)

    def update(self, model_id: str, changes: ModelUpdate | dict[str, Any]) -> CatalogModel:
        return self._catalog.update_model(self._actor, model_id, changes)

    def set_active(self, model_id: str, active: bool) -> CatalogModel:
        return self.update(model_id, {"is_active": active})

    def update_provider(self, provider_id: str, changes: ProviderUpdate | dict[str, Any]) -> ProviderInfo:
        info = self._catalog.update_provider(self._actor, provider_id, changes)
        self._studio.engine.runner.wake()
        return info

    def route(self, model_id: str | None = None, *, needs_i2i: bool = False) -> CatalogModel:
        return self._catalog.route(model_id, needs_i2i=needs_i2i)

    def i2i_count(self) -> int:
        return self._catalog.i2i_count()

    def only_preview(self) -> bool:
        """True when the offline preview provider is the only configured one."""
        return all(p.preview for p in self.providers() if p.configured and not p.text)

    def health(self, provider_id: str, timeout: float = 15.0) -> Health:
        """Ask a provider whether its key is accepted (runs on the runner's loop; admins only: it
        spends a request on the deployment's key). A check that fails unexpectedly answers `unknown`,
        its message redacted like every Health's."""
        self._actor.require_admin()
        provider = self._catalog.provider(provider_id)
        runner = self._studio.engine.runner
        coro = provider.health()
        try:
            if runner.loop is not None and runner.running:
                return asyncio.run_coroutine_threadsafe(coro, runner.loop).result(timeout)
            return asyncio.run(coro)
        except TimeoutError:
            return Health("unreachable", f"{provider.display_name} did not answer within {timeout:g} s.")
        except Exception as exc:  # noqa: BLE001 - a plugin's bug must not escape the facade
            return Health("unknown", f"The health check failed: {type(exc).__name__}: {exc}")


class Images:
    """Stored images as the UI shows them: a presigned URL where the store makes them, else bytes.
    Only images the actor may see are served: those of characters they can see (own or public; of
    another's public character, not the portraits its owner made private), their own comparison cells, and
    their own uploads (or the reference upload of a character they can see)."""

    # One row when the key belongs to something the actor may see; parameters: (key, actor id) x 5.
    _VISIBLE = """SELECT 1 FROM character_portraits p JOIN characters c ON c.id = p.character_id
        LEFT JOIN portrait_visibility v ON v.portrait_id = p.id
        WHERE ? IN (p.image_key, p.thumbnail_key) AND (c.owner = ? OR (c.is_public AND coalesce(v.is_public, TRUE)))
      UNION ALL SELECT 1 FROM scene_images i JOIN characters c ON c.id = i.character_id
        WHERE ? IN (i.image_key, i.thumbnail_key) AND (c.owner = ? OR c.is_public)
      UNION ALL SELECT 1 FROM uploads u WHERE u.key = ? AND u.owner = ?
      UNION ALL SELECT 1 FROM comparison_cells x WHERE ? IN (x.image_key, x.thumbnail_key) AND x.owner = ?
      UNION ALL SELECT 1 FROM characters c WHERE c.reference_image_key = ? AND (c.owner = ? OR c.is_public)
      LIMIT 1"""

    def __init__(self, ctx: Context, actor: Actor):
        self._ctx = ctx
        self._store = ctx.store
        self._actor = actor

    def may_see(self, key: str) -> bool:
        if self._actor.is_admin:
            return True
        return self._ctx.db.fetchone(self._VISIBLE, [key, self._actor.id] * 5) is not None

    def _check(self, key: str) -> None:
        if not isinstance(key, str) or not self.may_see(key):
            raise NotFound(f"No image {key!r}.")

    def src(self, key: str | None) -> str | bytes:
        """URL or bytes for `st.image`; a placeholder image when the key is missing, unreadable or not
        the actor's to see."""
        if not key or not isinstance(key, str) or not self.may_see(key):
            return placeholder()
        url = self._store.signed_url(key)
        if url:
            return url
        try:
            return self._store.read(key)
        except StorageError as exc:
            log.warning("showing a placeholder: %s", exc)
            return placeholder()

    def read(self, key: str) -> bytes:
        self._check(key)
        return self._store.read(key)

    def download_url(self, key: str, filename: str) -> str | None:
        """A presigned URL that makes the browser download the file as `filename` (S3); None where bytes are served."""
        self._check(key)
        return self._store.signed_url(key, download_as=filename)


class Studio:
    """Open a studio home and work in it: ``with Studio.open() as studio: ...``."""

    def __init__(self, engine: _Engine, actor: Actor):
        self._opening = False  # True for a Studio returned by `open`, until it is closed
        self.engine = engine
        self.ctx = engine.ctx
        self.actor = actor
        self.characters = Characters(self.ctx, actor, engine.runner)
        self._generator = Generator(self.ctx, actor, engine.jobs, engine.runner)
        self.scenes = _SceneAPI(self.ctx, actor, self._generator)
        self.templates = _TemplateAPI(self)
        self.jobs = Jobs(self.ctx, actor, engine.jobs, engine.runner)
        self.portraits = Portraits(self.ctx, actor, self._generator)
        self.uploads = Uploads(self.ctx, actor)
        self.models = Models(self)
        self.presets = self.ctx.presets
        self.images = Images(self.ctx, actor)
        self.maintenance = Maintenance(self.ctx, actor)
        self.budgets = Budgets(self.ctx, actor)
        self.assist = Assist(self.ctx, actor, self.characters, engine.runner)
        self.drafts = Drafts(self.ctx, actor)
        self.compare = Compare(self.ctx, actor, self._generator, self.jobs, self.portraits)

    @classmethod
    def open(cls, home: str | Path | None = None, *, settings: Settings | None = None, plugins: Iterable[object] = (),
             start_runner: bool = True, user: str | None = None, retry_base: float = 2.0) -> "Studio":
        """Open (creating if needed) a studio home; starts the job runner unless told not to.

        One engine (database, runner) per home per process: opening a home that is already open in
        this process shares its engine, so its jobs are never run by two runners. The second opening
        must ask for the same settings, plugins and `retry_base` (else a `StudioError` says which
        differ; provider keys are not compared: the providers keep those of the first opening);
        `start_runner` starts the shared runner if it is not running. Each opening is
        closed on its own; the last `close()` stops the runner and closes the database.
        """
        settings = settings or Settings.from_env(home=home)
        plugins = tuple(plugins)
        with _ENGINES_LOCK:
            engine = _ENGINES.get(_engine_key(settings))
            if engine is None:
                engine = _Engine.create(settings, plugins, retry_base)
            else:
                engine.check_same(settings, plugins, retry_base)
            try:
                if user is None and settings.auth is not AuthMode.LOCAL:
                    actor = Actor(settings.local_user)  # with sign-in the local user is nobody: not recorded, no admin
                else:
                    actor = _ensure_user(engine.ctx, user or settings.local_user)
                studio = cls(engine, actor)
                if start_runner and settings.start_runner:
                    engine.runner.start()
            except BaseException:
                if not engine.openings:
                    engine.shut()
                raise
            engine.openings += 1
            _ENGINES[engine.key] = engine
            studio._opening = True
            return studio

    def as_user(self, user_id: str, *, display_name: str | None = None, email: str | None = None) -> "Studio":
        """The same studio acting for another user (the UI's signed-in user). Whether that user is an
        admin comes from the deployment's configuration (`Settings.is_admin`), never from the caller.
        Only the process's own opening (what `Studio.open` returned: the server, the CLI) or an admin's
        view makes another: a user's view cannot become someone else."""
        if not (self._opening or self.actor.is_admin) and user_id != self.actor.id:
            raise Forbidden("A user's view of the studio cannot act for another user.")
        return Studio(self.engine, _ensure_user(self.ctx, user_id, display_name=display_name, email=email))

    def plugins(self) -> list[PluginInfo]:
        """Every plugin this studio considered: built-ins and installed ones, with their version, the
        plugin API each declares, whether it loaded (or why it was refused) and its providers."""
        return plugin_report(self.engine.plugin_manager)

    def stats(self, *, all_users: bool = False, user_id: str | None = None) -> GenerationStats:
        """One's own generation statistics; an admin's may be everyone's (`all_users`, with a row per
        user) or one user's (`user_id`)."""
        if (all_users or (user_id is not None and user_id != self.actor.id)) and not self.actor.is_admin:
            raise Forbidden("Only administrators can see other users' statistics.")
        if all_users:
            return generation_stats(self.ctx.db, None)
        return generation_stats(self.ctx.db, self.actor.id if user_id is None else user_id)

    def close(self) -> None:
        """Close this opening; the last opening of a home stops its runner (in-flight jobs resume
        on the next open) and closes its database. A second call, or a call on a view made by
        `as_user`, does nothing."""
        if not self._opening:
            return
        self._opening = False
        engine = self.engine
        with _ENGINES_LOCK:
            engine.openings -= 1
            if engine.openings == 0:
                if _ENGINES.get(engine.key) is engine:
                    del _ENGINES[engine.key]
                engine.shut()

    def __enter__(self) -> "Studio":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Studio home={str(self.ctx.settings.home)!r} user={self.actor.id!r}>"


class _SceneAPI(Scenes):
    def __init__(self, ctx: Context, actor: Actor, generator: Generator):
        super().__init__(ctx, actor, generator.runner)
        self._generator = generator

    def generate_image(self, scene_id: str, *, model_id: str | None = None, seed: int | None = None):
        """Queue a job for the scene's image (with the primary portrait as reference when possible)."""
        return self._generator.scene(scene_id, model_id=model_id, seed=seed)


class _TemplateAPI(Templates):
    def __init__(self, studio: Studio):
        super().__init__(studio.ctx)
        self._studio = studio

    def create_character(self, template_id: str, **overrides: Any) -> Character:
        """A new character from a template; `overrides` replace template fields."""
        template = self.get(template_id)
        return self._studio.characters.create({**template.character, **overrides}, template_id=template.id)


def _ensure_user(ctx: Context, user_id: str, *, display_name: str | None = None, email: str | None = None) -> Actor:
    """The actor for a user id, recording the user on first sight. The admin flag is the configuration's;
    the users table only mirrors it for display."""
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > 200:
        raise InvalidInput({"user": "a user id of 1 to 200 characters is required"})
    admin = ctx.settings.is_admin(user_id, email)
    row = ctx.db.fetchone("SELECT is_admin, email FROM users WHERE id = ?", [user_id])
    if row is None:
        ctx.db.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",  # another server may be first
                       [user_id, display_name or user_id, email, admin, utcnow()])
    elif row["is_admin"] != admin or (email and row["email"] != email):
        ctx.db.execute("UPDATE users SET is_admin = ?, email = coalesce(?, email) WHERE id = ?", [admin, email, user_id])
    return Actor(user_id, admin)
