"""Isolation in the facade: every public method of `Studio` and its sub-APIs, called by the owner of
the data (alice, no admin), another user (bob) and an admin, against an explicit table of outcomes.
A second test fails when a public method has no row, so a new method cannot skip this table."""
from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from core.errors import Forbidden, NotFound, StudioError
from core.images import placeholder
from core.models import Character, Portrait, Presets
from core.studio import Studio
from tests.conftest import png_bytes

OK, NF, FB = "allowed", "not found", "forbidden"
ACTORS = ("owner", "other", "admin")

# Outcome patterns: what the owner, another user and an admin get.
PRIVATE = dict(owner=OK, other=NF, admin=OK)  # the owner's private data: others cannot tell it exists
PUBLIC_READ = dict(owner=OK, other=OK, admin=OK)  # a public character's data, read
PUBLIC_WRITE = dict(owner=OK, other=FB, admin=OK)  # ... changed: read-only to others
EVERYONE = PUBLIC_READ
ADMIN_ONLY = dict(owner=FB, other=FB, admin=OK)


@dataclass
class World:
    """Alice's data: a private and a public character with portraits (one of the public character's
    made private), scenes, jobs and an upload; spare portraits for the rows that delete one."""

    alice: Studio
    tmp: Any
    private: Character = None
    public: Character = None
    spares: dict[str, list[Portrait]] = field(default_factory=dict)
    counter: itertools.count = field(default_factory=itertools.count)

    def build(self) -> None:
        a = self.alice
        self.private = a.characters.create({"name": "Secret Sam", "description": "A spy in a grey coat."})
        self.public = a.characters.create({"name": "Open Olga", "description": "A baker.", "is_public": True})
        a.characters.set_reference_upload(self.public.id, png_bytes(color=(7, 70, 170)))
        for c in (self.private, self.public):
            a.jobs.wait([j.id for j in a.portraits.generate(c.id, n=4)], timeout=60)
            portraits = a.portraits.list(c.id).items
            self.spares[c.id] = portraits[2:]
        self.pp, self.pub_p, self.hidden = (a.portraits.list(self.private.id).items[0],
                                            *a.portraits.list(self.public.id).items[:2])
        a.portraits.set_primary(self.hidden.id)  # a public character whose primary portrait is private
        a.portraits.set_public(self.hidden.id, False)
        self.scene = a.scenes.create(self.private.id, {"name": "Rooftop"})
        self.pub_scene = a.scenes.create(self.public.id, {"name": "Bakery"})
        self.done_job = a.jobs.get(self.pp.job_id)
        self.upload = a.uploads.add(png_bytes(color=(3, 4, 5)))
        a.drafts.keep("new_character", "name", f"Draft of {self.private.id}")  # a draft is its owner's alone
        self.comparison = a.compare.run({"character_id": self.private.id, "prompts": ["grey coat"], "seeds": [1, 2]})
        a.jobs.wait([c.job_id for c in self.comparison.items], timeout=60)
        self.cell = a.compare.get(self.comparison.id).items[0]
        a.engine.runner.stop()  # from here jobs stay queued: cancel and retry have something to act on
        # What another user must never be shown.
        self.secrets = {self.private.id, self.pp.id, self.pp.image_key, self.pp.thumbnail_key, self.hidden.id,
                        self.hidden.image_key, self.hidden.thumbnail_key, self.scene.id, self.done_job.id, self.upload,
                        self.comparison.id, self.cell.job_id, self.cell.image_key, self.cell.thumbnail_key}

    # fresh data for the rows that change or delete it
    def char(self, public: bool = False) -> Character:
        return self.alice.characters.create({"name": f"Fresh {next(self.counter)}", "description": "Someone.",
                                             "is_public": public})

    def spare(self, character: Character) -> Portrait:
        return self.spares[character.id].pop()

    def queued_job(self):
        return self.alice.portraits.generate(self.private.id)[0]

    def canceled_job(self):
        return self.alice.jobs.cancel(self.queued_job().id)

    def queued_comparison(self):
        return self.alice.compare.run({"character_id": self.private.id, "seeds": [9]})

    def canceled_cell(self) -> str:
        job_id = self.queued_comparison().items[0].job_id
        self.alice.jobs.cancel(job_id)
        return job_id

    def reference(self) -> str:
        return self.alice.characters.get(self.public.id).reference_image_key


def visible(seen: bool) -> bool:
    if not seen:
        raise NotFound("not visible")
    return seen


def served(src):
    if src == placeholder():
        raise NotFound("a placeholder was served")
    return src


@dataclass
class Row:
    method: str  # "api.method" as called on a Studio
    case: str
    call: Callable[[Studio, World], Any]
    expect: dict[str, str]


def admit(s: Studio) -> None:
    with s.budgets.admit(0.0, "nothing"):
        pass


R = Row
TABLE: list[Row] = [
    # characters
    R("characters.create", "own", lambda s, w: s.characters.create({"name": "Mine"}), EVERYONE),
    R("characters.get", "private", lambda s, w: s.characters.get(w.private.id), PRIVATE),
    R("characters.get", "public", lambda s, w: s.characters.get(w.public.id), PUBLIC_READ),
    R("characters.owned", "private", lambda s, w: s.characters.owned(w.private.id), PRIVATE),
    R("characters.owned", "public", lambda s, w: s.characters.owned(w.public.id), PUBLIC_WRITE),
    R("characters.resolve", "private", lambda s, w: s.characters.resolve(w.private.id), PRIVATE),
    R("characters.resolve", "private by name", lambda s, w: s.characters.resolve("Secret Sam"), PRIVATE),
    R("characters.resolve", "public by name", lambda s, w: s.characters.resolve("open olga"), PUBLIC_READ),
    R("characters.update", "private", lambda s, w: s.characters.update(w.private.id, {"traits": "quiet"}), PRIVATE),
    R("characters.update", "public", lambda s, w: s.characters.update(w.public.id, {"traits": "kind"}), PUBLIC_WRITE),
    R("characters.list", "all", lambda s, w: s.characters.list(), EVERYONE),
    R("characters.list", "search", lambda s, w: s.characters.list("secret"), EVERYONE),
    R("characters.revision", "all", lambda s, w: s.characters.revision(), EVERYONE),
    R("characters.set_reference_upload", "private",
      lambda s, w: s.characters.set_reference_upload(w.private.id, png_bytes(color=(1, 1, 1))), PRIVATE),
    R("characters.set_reference_upload", "public",
      lambda s, w: s.characters.set_reference_upload(w.char(True).id, png_bytes(color=(1, 1, 2))), PUBLIC_WRITE),
    R("characters.clear_reference", "private", lambda s, w: s.characters.clear_reference(w.char().id), PRIVATE),
    R("characters.clear_reference", "public", lambda s, w: s.characters.clear_reference(w.char(True).id), PUBLIC_WRITE),
    R("characters.delete", "private", lambda s, w: s.characters.delete(w.char().id), PRIVATE),
    R("characters.delete", "public", lambda s, w: s.characters.delete(w.char(True).id), PUBLIC_WRITE),
    R("characters.duplicate", "private", lambda s, w: s.characters.duplicate(w.private.id), PRIVATE),
    R("characters.duplicate", "public", lambda s, w: s.characters.duplicate(w.public.id), PUBLIC_READ),
    # portraits
    R("portraits.generate", "private", lambda s, w: s.portraits.generate(w.private.id), PRIVATE),
    R("portraits.generate", "public", lambda s, w: s.portraits.generate(w.public.id), PUBLIC_WRITE),
    R("portraits.preview_prompt", "private", lambda s, w: s.portraits.preview_prompt(w.private.id), PRIVATE),
    R("portraits.preview_prompt", "public", lambda s, w: s.portraits.preview_prompt(w.public.id), PUBLIC_READ),
    R("portraits.list", "private", lambda s, w: s.portraits.list(w.private.id), PRIVATE),
    R("portraits.list", "public (its private portrait left out)", lambda s, w: s.portraits.list(w.public.id), PUBLIC_READ),
    R("portraits.get", "private", lambda s, w: s.portraits.get(w.pp.id), PRIVATE),
    R("portraits.get", "public", lambda s, w: s.portraits.get(w.pub_p.id), PUBLIC_READ),
    R("portraits.get", "private portrait of a public character", lambda s, w: s.portraits.get(w.hidden.id), PRIVATE),
    R("portraits.primary", "private", lambda s, w: s.portraits.primary(w.private.id), PRIVATE),
    R("portraits.primary", "public", lambda s, w: s.portraits.primary(w.public.id), PUBLIC_READ),
    R("portraits.set_primary", "private", lambda s, w: s.portraits.set_primary(w.pp.id), PRIVATE),
    R("portraits.set_primary", "public", lambda s, w: s.portraits.set_primary(w.pub_p.id), PUBLIC_WRITE),
    R("portraits.set_public", "private", lambda s, w: s.portraits.set_public(w.pp.id, None), PRIVATE),
    R("portraits.set_public", "public", lambda s, w: s.portraits.set_public(w.pub_p.id, True), PUBLIC_WRITE),
    R("portraits.set_public", "hidden", lambda s, w: s.portraits.set_public(w.hidden.id, False), PRIVATE),
    R("portraits.use_as_reference", "private", lambda s, w: s.portraits.use_as_reference(w.pp.id), PRIVATE),
    R("portraits.use_as_reference", "public", lambda s, w: s.portraits.use_as_reference(w.pub_p.id), PUBLIC_WRITE),
    R("portraits.reorder", "private", lambda s, w: s.portraits.reorder(w.private.id, [w.pp.id]), PRIVATE),
    R("portraits.reorder", "public", lambda s, w: s.portraits.reorder(w.public.id, [w.pub_p.id]), PUBLIC_WRITE),
    R("portraits.delete", "private", lambda s, w: s.portraits.delete(w.spare(w.private).id), PRIVATE),
    R("portraits.delete", "public", lambda s, w: s.portraits.delete(w.spare(w.public).id), PUBLIC_WRITE),
    R("portraits.delete_many", "private", lambda s, w: s.portraits.delete_many([w.spare(w.private).id]), PRIVATE),
    R("portraits.delete_many", "public", lambda s, w: s.portraits.delete_many([w.spare(w.public).id]), PUBLIC_WRITE),
    R("portraits.neighbours", "private", lambda s, w: s.portraits.neighbours(w.pp.id), PRIVATE),
    R("portraits.neighbours", "public", lambda s, w: s.portraits.neighbours(w.pub_p.id), PUBLIC_READ),
    R("portraits.neighbours", "hidden", lambda s, w: s.portraits.neighbours(w.hidden.id), PRIVATE),
    R("portraits.move", "private", lambda s, w: s.portraits.move(w.pp.id, 1), PRIVATE),
    R("portraits.move", "public", lambda s, w: s.portraits.move(w.pub_p.id, 1), PUBLIC_WRITE),
    R("portraits.zip", "private", lambda s, w: s.portraits.zip([w.pp.id]), PRIVATE),
    R("portraits.zip", "public", lambda s, w: s.portraits.zip([w.pub_p.id]), PUBLIC_READ),
    R("portraits.zip", "hidden", lambda s, w: s.portraits.zip([w.pub_p.id, w.hidden.id]), PRIVATE),
    R("portraits.image_bytes", "private", lambda s, w: s.portraits.image_bytes(w.pp.id), PRIVATE),
    R("portraits.image_bytes", "public", lambda s, w: s.portraits.image_bytes(w.pub_p.id), PUBLIC_READ),
    R("portraits.image_bytes", "hidden", lambda s, w: s.portraits.image_bytes(w.hidden.id, thumbnail=True), PRIVATE),
    R("portraits.image", "private", lambda s, w: s.portraits.image(w.pp.id), PRIVATE),
    R("portraits.image", "public", lambda s, w: s.portraits.image(w.pub_p.id, thumbnail=True), PUBLIC_READ),
    R("portraits.download", "private", lambda s, w: s.portraits.download(w.pp.id), PRIVATE),
    R("portraits.download", "public", lambda s, w: s.portraits.download(w.pub_p.id), PUBLIC_READ),
    R("portraits.download", "hidden", lambda s, w: s.portraits.download(w.hidden.id), PRIVATE),
    R("portraits.recall", "private", lambda s, w: s.portraits.recall(w.pp.id), PRIVATE),
    R("portraits.recall", "public", lambda s, w: s.portraits.recall(w.pub_p.id), PUBLIC_READ),
    R("portraits.regenerate", "private", lambda s, w: s.portraits.regenerate(w.pp.id), PRIVATE),
    R("portraits.regenerate", "public", lambda s, w: s.portraits.regenerate(w.pub_p.id), PUBLIC_WRITE),
    # scenes
    R("scenes.create", "private", lambda s, w: s.scenes.create(w.private.id, {"name": "Dock"}), PRIVATE),
    R("scenes.create", "public", lambda s, w: s.scenes.create(w.public.id, {"name": "Dock"}), PUBLIC_WRITE),
    R("scenes.get", "private", lambda s, w: s.scenes.get(w.scene.id), PRIVATE),
    R("scenes.get", "public", lambda s, w: s.scenes.get(w.pub_scene.id), PUBLIC_READ),
    R("scenes.list", "private", lambda s, w: s.scenes.list(w.private.id), PRIVATE),
    R("scenes.list", "public", lambda s, w: s.scenes.list(w.public.id), PUBLIC_READ),
    R("scenes.update", "private", lambda s, w: s.scenes.update(w.scene.id, {"prompt": "night"}), PRIVATE),
    R("scenes.update", "public", lambda s, w: s.scenes.update(w.pub_scene.id, {"prompt": "dawn"}), PUBLIC_WRITE),
    R("scenes.delete", "private", lambda s, w: s.scenes.delete(w.alice.scenes.create(w.private.id, {"name": "x"}).id),
      PRIVATE),
    R("scenes.delete", "public", lambda s, w: s.scenes.delete(w.alice.scenes.create(w.public.id, {"name": "x"}).id),
      PUBLIC_WRITE),
    R("scenes.generate_image", "private", lambda s, w: s.scenes.generate_image(w.scene.id), PRIVATE),
    R("scenes.generate_image", "public", lambda s, w: s.scenes.generate_image(w.pub_scene.id), PUBLIC_WRITE),
    # uploads, templates, presets: one's own or shared
    R("uploads.add", "own", lambda s, w: s.uploads.add(png_bytes(color=(9, 8, 7))), EVERYONE),
    R("templates.list", "shared", lambda s, w: s.templates.list(), EVERYONE),
    R("templates.get", "shared", lambda s, w: s.templates.get(s.templates.list()[0].id), EVERYONE),
    R("templates.create_character", "own", lambda s, w: s.templates.create_character(s.templates.list()[0].id),
      EVERYONE),
    R("presets.options", "shared", lambda s, w: s.presets.options("pose"), EVERYONE),
    R("presets.resolve", "shared", lambda s, w: s.presets.resolve(Presets()), EVERYONE),
    # jobs: only one's own (an admin's: everyone's)
    R("jobs.get", "private", lambda s, w: s.jobs.get(w.done_job.id), PRIVATE),
    R("jobs.list", "own", lambda s, w: s.jobs.list(), EVERYONE),
    R("jobs.list", "all users asked", lambda s, w: s.jobs.list(all_users=True), EVERYONE),  # others: their own only
    R("jobs.list", "of a character", lambda s, w: s.jobs.list(character_id=w.private.id), EVERYONE),
    R("jobs.active", "of a character", lambda s, w: s.jobs.active(character_id=w.private.id), EVERYONE),
    R("jobs.cancel", "private", lambda s, w: s.jobs.cancel(w.queued_job().id), PRIVATE),
    R("jobs.retry", "private", lambda s, w: s.jobs.retry(w.canceled_job().id), PRIVATE),
    R("jobs.retryable", "private", lambda s, w: s.jobs.retryable([w.canceled_job()]), EVERYONE),  # others: none
    R("jobs.wait", "private", lambda s, w: s.jobs.wait([w.done_job.id], timeout=5), PRIVATE),
    # images: bytes and URLs only for what the actor may see
    R("images.read", "private portrait", lambda s, w: s.images.read(w.pp.image_key), PRIVATE),
    R("images.read", "public portrait", lambda s, w: s.images.read(w.pub_p.image_key), PUBLIC_READ),
    R("images.read", "hidden portrait", lambda s, w: s.images.read(w.hidden.thumbnail_key), PRIVATE),
    R("images.read", "an upload", lambda s, w: s.images.read(w.upload), PRIVATE),
    R("images.read", "public reference", lambda s, w: s.images.read(w.reference()), PUBLIC_READ),
    R("images.download_url", "private portrait", lambda s, w: s.images.download_url(w.pp.image_key, "a.png"), PRIVATE),
    R("images.download_url", "hidden portrait", lambda s, w: s.images.download_url(w.hidden.image_key, "a.png"),
      PRIVATE),
    R("images.download_url", "public portrait", lambda s, w: s.images.download_url(w.pub_p.image_key, "a.png"),
      PUBLIC_READ),
    R("images.src", "private portrait", lambda s, w: served(s.images.src(w.pp.thumbnail_key)), PRIVATE),
    R("images.src", "hidden portrait", lambda s, w: served(s.images.src(w.hidden.thumbnail_key)), PRIVATE),
    R("images.src", "public portrait", lambda s, w: served(s.images.src(w.pub_p.thumbnail_key)), PUBLIC_READ),
    R("images.may_see", "private portrait", lambda s, w: visible(s.images.may_see(w.pp.image_key)), PRIVATE),
    R("images.may_see", "hidden portrait", lambda s, w: visible(s.images.may_see(w.hidden.image_key)), PRIVATE),
    R("images.may_see", "public portrait", lambda s, w: visible(s.images.may_see(w.pub_p.image_key)), PUBLIC_READ),
    # the catalog: read by all, changed by admins
    R("models.list", "shared", lambda s, w: s.models.list(), EVERYONE),
    R("models.get", "shared", lambda s, w: s.models.get("offline/preview"), EVERYONE),
    R("models.providers", "shared", lambda s, w: s.models.providers(), EVERYONE),
    R("models.route", "shared", lambda s, w: s.models.route(), EVERYONE),
    R("models.i2i_count", "shared", lambda s, w: s.models.i2i_count(), EVERYONE),
    R("models.only_preview", "shared", lambda s, w: s.models.only_preview(), EVERYONE),
    R("models.add", "admin", lambda s, w: s.models.add("offline", {"model_key": f"offline/x{next(w.counter)}",
                                                                  "display_name": "X"}), ADMIN_ONLY),
    R("models.update", "admin", lambda s, w: s.models.update("offline/preview", {"notes": "n"}), ADMIN_ONLY),
    R("models.set_active", "admin", lambda s, w: s.models.set_active("offline/preview", True), ADMIN_ONLY),
    R("models.update_provider", "admin", lambda s, w: s.models.update_provider("offline", {"concurrency_limit": 4}),
      ADMIN_ONLY),
    R("models.health", "admin: it spends a request on the deployment's key",
      lambda s, w: s.models.health("offline"), ADMIN_ONLY),
    R("maintenance.gc", "admin", lambda s, w: s.maintenance.gc(), ADMIN_ONLY),
    R("maintenance.copy_storage", "admin",
      lambda s, w: s.maintenance.copy_storage((w.tmp / f"copy{next(w.counter)}").as_uri()), ADMIN_ONLY),
    # budgets and statistics: one's own; everyone's for admins
    R("budgets.mine", "own", lambda s, w: s.budgets.mine(), EVERYONE),
    R("drafts.get", "own", lambda s, w: s.drafts.get("new_character"), EVERYONE),
    R("drafts.keep", "own", lambda s, w: s.drafts.keep("new_character", "description", "typed"), EVERYONE),
    R("drafts.discard", "own", lambda s, w: s.drafts.discard("new_character"), EVERYONE),
    R("budgets.get", "alice's", lambda s, w: s.budgets.get("alice"), dict(owner=OK, other=FB, admin=OK)),
    R("budgets.list", "everyone's", lambda s, w: s.budgets.list(), ADMIN_ONLY),
    R("budgets.set", "alice's", lambda s, w: s.budgets.set("alice", None), ADMIN_ONLY),
    R("budgets.reset", "alice's", lambda s, w: s.budgets.reset("alice"), ADMIN_ONLY),
    R("budgets.admit", "own", lambda s, w: admit(s), EVERYONE),
    R("stats", "own", lambda s, w: s.stats(), EVERYONE),
    R("stats", "alice's", lambda s, w: s.stats(user_id="alice"), dict(owner=OK, other=FB, admin=OK)),
    R("stats", "everyone's", lambda s, w: s.stats(all_users=True), ADMIN_ONLY),
    R("plugins", "shared", lambda s, w: s.plugins(), EVERYONE),
    # AI assist (the offline suggester): reads a character the actor may see, writes nothing
    R("assist.text_models", "shared", lambda s, w: s.assist.text_models(), EVERYONE),
    R("assist.route", "shared", lambda s, w: s.assist.route(), EVERYONE),
    R("assist.is_offline", "shared", lambda s, w: s.assist.is_offline(s.assist.route()), EVERYONE),
    R("assist.prompt_budget", "shared", lambda s, w: s.assist.prompt_budget(), EVERYONE),
    R("assist.suggest", "private", lambda s, w: s.assist.suggest(w.private.id, "persona"), PRIVATE),
    R("assist.suggest", "public", lambda s, w: s.assist.suggest(w.public.id, "persona"), PUBLIC_READ),
    R("assist.stream", "private", lambda s, w: s.assist.stream(w.private.id, "traits").result(), PRIVATE),
    R("assist.empty_fields", "private", lambda s, w: s.assist.empty_fields(w.private.id), PRIVATE),
    R("assist.enhance_all", "private", lambda s, w: s.assist.enhance_all(w.private.id), PRIVATE),
    R("assist.enhance_prompt", "private", lambda s, w: s.assist.enhance_prompt(w.private.id, "smiling"), PRIVATE),
    R("assist.enhance_prompt", "public", lambda s, w: s.assist.enhance_prompt(w.public.id, "smiling"), PUBLIC_READ),
    R("as_user", "another user", lambda s, w: s.as_user("carol"), ADMIN_ONLY),
    # the Compare grid: a comparison is its owner's alone; another user's public character cannot be compared
    R("compare.plan", "private", lambda s, w: s.compare.plan({"character_id": w.private.id}), PRIVATE),
    R("compare.plan", "public", lambda s, w: s.compare.plan({"character_id": w.public.id}), PUBLIC_WRITE),
    R("compare.run", "private", lambda s, w: s.compare.run({"character_id": w.private.id}), PRIVATE),
    R("compare.run", "public", lambda s, w: s.compare.run({"character_id": w.public.id}), PUBLIC_WRITE),
    R("compare.list", "own", lambda s, w: s.compare.list(), EVERYONE),
    R("compare.list", "of a character", lambda s, w: s.compare.list(w.private.id), EVERYONE),
    R("compare.cell", "done cell", lambda s, w: s.compare.cell(w.cell.job_id), PRIVATE),
    R("compare.get", "private", lambda s, w: s.compare.get(w.comparison.id), PRIVATE),
    R("compare.retry", "canceled cell", lambda s, w: s.compare.retry(w.canceled_cell()), PRIVATE),
    R("compare.keep", "done cell", lambda s, w: s.compare.keep(w.cell.job_id), PRIVATE),
    R("compare.set_primary", "done cell", lambda s, w: s.compare.set_primary(w.cell.job_id), PRIVATE),
    R("compare.download", "done cell", lambda s, w: s.compare.download(w.cell.job_id), PRIVATE),
    R("compare.sheet", "private", lambda s, w: s.compare.sheet(w.comparison.id), PRIVATE),
    R("compare.delete", "private", lambda s, w: s.compare.delete(w.queued_comparison().id), PRIVATE),
    R("images.read", "comparison cell", lambda s, w: s.images.read(w.cell.image_key), PRIVATE),
]

# Public methods that are not a user's call on data.
EXEMPT = {
    "open": "opens a home (a classmethod: no actor yet)",
    "close": "closes this opening of the home",
}


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return OK, call()
    except NotFound:
        return NF, None
    except Forbidden:
        return FB, None
    except StudioError as exc:
        return f"error: {type(exc).__name__}: {exc}", None


@pytest.mark.parametrize("actor", ACTORS)
def test_every_method_for_owner_other_user_and_admin(studio, tmp_path, actor):
    alice = studio.as_user("alice")
    world = World(alice, tmp_path)
    world.build()
    view = {"owner": alice, "other": studio.as_user("bob"), "admin": studio}[actor]
    wrong = []
    for row in TABLE:
        got, result = _outcome(lambda: row.call(view, world))
        if got != row.expect[actor]:
            wrong.append(f"{row.method} ({row.case}): expected {row.expect[actor]}, got {got}")
        elif actor == "other" and got == OK:
            leaked = [s for s in world.secrets if s in repr(result)]
            if leaked:
                wrong.append(f"{row.method} ({row.case}): shows alice's private {leaked}")
    assert not wrong, "\n".join(wrong)


def _public_methods(studio: Studio) -> set[str]:
    """Every public method of the facade and of each sub-API it holds."""
    names = {n for n, v in inspect.getmembers(Studio) if not n.startswith("_") and callable(v)}
    for attr, api in vars(studio).items():
        if attr.startswith("_") or attr in ("engine", "ctx", "actor"):
            continue
        names |= {f"{attr}.{n}" for n, v in inspect.getmembers(type(api)) if not n.startswith("_") and callable(v)}
    return names


def test_every_public_method_has_a_row(studio):
    covered = {row.method for row in TABLE} | set(EXEMPT)
    missing = sorted(_public_methods(studio) - covered)
    assert not missing, f"public methods without a row in the isolation table: {missing}"
    unknown = sorted({row.method for row in TABLE} - _public_methods(studio))
    assert not unknown, f"rows for methods that do not exist: {unknown}"


def test_retryable_says_nothing_of_another_users_jobs(studio, tmp_path):
    alice = studio.as_user("alice")
    world = World(alice, tmp_path)
    world.build()
    job = world.canceled_job()
    assert alice.jobs.retryable([job]) == {job.id}
    assert studio.as_user("bob").jobs.retryable([job]) == set()
