"""Bad input never reaches the database, a damaged row never breaks a listing, and the facade
raises only the studio's own errors, each naming the field or parameter at fault."""
from __future__ import annotations

import pytest

from core.data import open_database
from core.errors import InvalidInput, NotFound, StudioError
from core.models import Recipe
from core.studio import Studio
from tests.conftest import make_settings

GOOD = {"name": "Mia", "description": "A cheerful barista with red hair."}
LIST_FIELDS = ["appearance_tags", "clothing_tags", "alternate_greetings", "forbidden_phrases", "voice_examples"]
LARGEST_SEED = 9223372036854775807  # 2**63 - 1: the largest BIGINT, the documented seed limit


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One studio for the tests whose calls must all be refused (each checks nothing was written):
    a character with a completed portrait, a scene and a job."""
    with Studio.open(settings=make_settings(tmp_path_factory.mktemp("shared") / "home"), retry_base=0.01) as studio:
        character = studio.characters.create(GOOD)
        [job] = studio.jobs.wait([studio.portraits.generate(character.id)[0].id], timeout=30)
        scene = studio.scenes.create(character.id, {"name": "Roof"})
        yield studio, {"c": character.id, "p": job.result_id, "s": scene.id, "j": job.id,
                       "character": studio.characters.get(character.id)}


def counts(studio: Studio) -> dict[str, int]:
    tables = ("characters", "character_scenes", "character_portraits", "jobs", "uploads")
    return {t: studio.ctx.db.scalar(f"SELECT count(*) FROM {t}") for t in tables}


# -- finding 8: None in a list/dict field ---------------------------------------------------
@pytest.mark.parametrize("field", [*LIST_FIELDS, "default_presets"])
def test_none_clears_a_list_or_dict_field_and_everyone_can_still_list(studio, field):
    value = {"pose": "standing"} if field == "default_presets" else ["one", "two"]
    mia = studio.characters.create({**GOOD, "is_public": True, field: value})
    updated = studio.characters.update(mia.id, {field: None})
    cleared = updated.default_presets.model_dump(exclude_none=True) if field == "default_presets" else getattr(updated, field)
    assert cleared in ([], {})
    bob = studio.as_user("bob")
    assert [c.id for c in bob.characters.list().items] == [mia.id]
    assert [c.id for c in studio.characters.list().items] == [mia.id]
    studio.characters.delete(mia.id)
    assert studio.characters.list().total == 0


def test_none_clears_optional_texts_and_is_refused_where_a_value_is_required(studio):
    mia = studio.characters.create({**GOOD, "traits": "curious", "persona": "kind"})
    updated = studio.characters.update(mia.id, {"description": None, "traits": None, "persona": None})
    assert (updated.description, updated.traits, updated.persona) == ("", None, None)
    for field in ("name", "gender", "content_rating", "voice_tone", "mood", "is_public"):
        with pytest.raises(InvalidInput) as err:
            studio.characters.update(mia.id, {field: None, "traits": "changed"})
        assert list(err.value.errors) == [field]
    assert studio.characters.get(mia.id).traits is None  # the refused updates wrote nothing
    scene = studio.scenes.create(mia.id, {"name": "Cafe", "prompt": "at work", "starters": ["Hi"], "system_prompt": "Be nice"})
    cleared = studio.scenes.update(scene.id, {"starters": None, "prompt": None, "system_prompt": None})
    assert (cleared.starters, cleared.prompt, cleared.system_prompt) == ([], "", None)
    for field in ("name", "type", "priority"):
        with pytest.raises(InvalidInput) as err:
            studio.scenes.update(scene.id, {field: None})
        assert list(err.value.errors) == [field]
    assert studio.scenes.list(mia.id)[0].name == "Cafe"


def test_rows_damaged_in_the_database_file_never_break_listing_reading_or_deleting(settings):
    with Studio.open(settings=settings) as studio:
        damaged = studio.characters.create({**GOOD, "is_public": True, "appearance_tags": ["red hair"]})
        unreadable = studio.characters.create({"name": "Broken", "is_public": True})
        fine = studio.characters.create({"name": "Fine", "is_public": True, "appearance_tags": ["green eyes"]})
        scene = studio.scenes.create(damaged.id, {"name": "Cafe", "prompt": "at work"})
        studio.scenes.create(damaged.id, {"name": "Roof", "prompt": "at night"})
        [job] = studio.portraits.generate(damaged.id)
        studio.jobs.wait([job.id], timeout=30)
    con = open_database(settings)  # the file or server as it is, without a studio
    con.execute("UPDATE characters SET appearance_tags = 'null', clothing_tags = 'not json', alternate_greetings = '{\"a\": 1}', "
                "voice_examples = '[1, 2]', default_presets = '[]', gender = 'robot', mood = 'grumpy' WHERE id = ?", [damaged.id])
    con.execute("ALTER TABLE characters ALTER name DROP NOT NULL")
    con.execute("UPDATE characters SET name = NULL WHERE id = ?", [unreadable.id])
    con.execute("UPDATE character_scenes SET starters = '{', priority = priority WHERE id = ?", [scene.id])
    con.execute("UPDATE character_portraits SET recipe = 'null'")
    con.close()

    with Studio.open(settings=settings) as studio:
        bob = studio.as_user("bob")
        listed = {c.id: c for c in bob.characters.list().items}
        assert set(listed) == {damaged.id, fine.id}  # the row with no name is left out, the rest listed
        assert listed[damaged.id].appearance_tags == [] and listed[fine.id].appearance_tags == ["green eyes"]
        assert [c.id for c in bob.characters.list("green").items] == [fine.id]
        mia = bob.characters.get(damaged.id)
        assert (mia.name, mia.gender, mia.mood, mia.appearance_tags, mia.clothing_tags, mia.alternate_greetings,
                mia.voice_examples) == ("Mia", "unspecified", "friendly", [], [], [], [])
        assert {s.name for s in bob.scenes.list(damaged.id)} == {"Cafe", "Roof"}
        assert bob.scenes.get(scene.id).starters == []
        [portrait] = bob.portraits.list(damaged.id).items
        assert portrait.recipe == Recipe()  # the damaged recipe is replaced by an empty one
        # Shipped templates are brought up to date when a studio opens: damage one while it is open.
        studio.ctx.db.execute("UPDATE character_templates SET character = 'oops' WHERE id = 'barista'")
        assert {t.id for t in studio.templates.list()} >= {"barista", "detective"}
        assert studio.templates.get("barista").character == {}
        studio.characters.delete(damaged.id)
        assert [c.id for c in bob.characters.list().items] == [fine.id]
        with pytest.raises(StudioError):
            studio.characters.get(unreadable.id)  # damaged beyond defaults: the studio's own error


# -- text fields: control characters --------------------------------------------------------
SINGLE_LINE = [("character", f) for f in ("name",)] + [
    ("tags", "appearance_tags"), ("tags", "clothing_tags"), ("list", "forbidden_phrases"),
    ("presets", "default_presets"), ("scene", "name"), ("scene", "type")]
MULTI_LINE = [("character", f) for f in ("description", "traits", "persona", "first_message", "system_prompt")] + [
    ("list", "alternate_greetings"), ("list", "voice_examples"),
    ("scene", "description"), ("scene", "prompt"), ("scene", "system_prompt"), ("scene_list", "starters")]


def _write(studio: Studio, character_id: str, kind: str, field: str, text: str, *, update: bool):
    """Create (or update) a character or scene with `text` in `field`."""
    if kind in ("scene", "scene_list"):
        value = [text] if kind == "scene_list" else text
        if update:
            scene = studio.scenes.list(character_id)[0]
            return getattr(studio.scenes.update(scene.id, {field: value}), field)
        return getattr(studio.scenes.create(character_id, {"name": "Cafe", field: value}), field)
    value = {"pose": text} if kind == "presets" else [text] if kind in ("tags", "list") else text
    data = {field: value}
    if update:
        return getattr(studio.characters.update(character_id, data), field)
    return getattr(studio.characters.create({"name": "Zoe", **data}), field)


@pytest.mark.parametrize("update", [False, True], ids=["create", "update"])
@pytest.mark.parametrize("kind,field", SINGLE_LINE + MULTI_LINE)
def test_control_characters_are_refused_in_every_text_field(shared, kind, field, update):
    studio, world = shared
    before = counts(studio)
    for bad in ["a\x00b", "bell\x07", "esc\x1b[31m", "del\x7f", "c1\x85", "\x1f"]:
        with pytest.raises(InvalidInput) as err:
            _write(studio, world["c"], kind, field, bad, update=update)
        assert any(k.split(".")[0] == field for k in err.value.errors), err.value.errors
        assert "control characters" in str(err.value), bad
    assert counts(studio) == before
    assert studio.characters.get(world["c"]).model_dump() == world["character"].model_dump()
    assert studio.scenes.get(world["s"]).name == "Roof"


@pytest.mark.parametrize("kind,field", SINGLE_LINE)
def test_line_breaks_and_tabs_are_refused_in_one_line_fields(shared, kind, field):
    studio, world = shared
    before = counts(studio)
    for bad in ["two\nlines", "tab\there", "cr\rhere", "line\u2028separator"]:
        with pytest.raises(InvalidInput) as err:
            _write(studio, world["c"], kind, field, bad, update=False)
        assert "one line" in str(err.value), bad
    assert counts(studio) == before


@pytest.mark.parametrize("kind,field", MULTI_LINE)
def test_multi_line_fields_keep_line_breaks_and_tabs(studio, character, kind, field):
    studio.scenes.create(character.id, {"name": "Roof"})
    stored = _write(studio, character.id, kind, field, "first line\r\n\tsecond line\rthird", update=True)
    assert stored in ("first line\n\tsecond line\nthird", ["first line\n\tsecond line\nthird"])


@pytest.mark.parametrize("call", [
    lambda s, c: s.portraits.generate(c.id, prompt="in the rain\x00"),
    lambda s, c: s.portraits.preview_prompt(c.id, {"prompt": "\x1b[2J"}),
    lambda s, c: s.templates.create_character("barista", name="Mia\x00"),
    lambda s, c: s.templates.create_character("barista", appearance_tags=["ok", "bad\x00"]),
    lambda s, c: s.characters.list("red\x00"),
], ids=["generate-prompt", "preview-prompt", "template-name", "template-tags", "search"])
def test_control_characters_are_refused_in_prompts_overrides_and_search(shared, call):
    studio, world = shared
    before = counts(studio)
    with pytest.raises(InvalidInput, match="control characters"):
        call(studio, world["character"])
    assert counts(studio) == before


def test_the_custom_prompt_is_one_line_of_text(studio, character):
    assert studio.portraits.preview_prompt(character.id, {"prompt": "laughing\n in the\train"}).count("laughing in the rain") == 1


def test_messages_use_the_fields_own_words(studio, character):
    with pytest.raises(InvalidInput) as err:
        studio.characters.update(character.id, {"description": "d" * 5000})
    assert err.value.errors == {"description": "at most 2000 characters (got 5000)"}
    with pytest.raises(InvalidInput) as err:
        studio.portraits.generate(character.id, n=0)
    assert err.value.errors == {"n": "at least 1 (got 0)"}


# -- finding 11: seeds and facade argument types ----------------------------------------------
def test_a_batch_whose_seeds_pass_the_largest_is_refused_and_names_the_largest_allowed(studio, character):
    before = counts(studio)
    with pytest.raises(InvalidInput) as err:
        studio.portraits.generate(character.id, seed=LARGEST_SEED, n=8)
    assert list(err.value.errors) == ["seed"] and "9223372036854775800" in err.value.errors["seed"]
    assert counts(studio) == before
    jobs = studio.portraits.generate(character.id, seed=9223372036854775800, n=8)
    assert max(j.request.seed for j in jobs) == LARGEST_SEED
    assert {j.status for j in studio.jobs.wait([j.id for j in jobs], timeout=60)} == {"completed"}
    with pytest.raises(InvalidInput, match="seed"):
        studio.scenes.generate_image(studio.scenes.create(character.id, {"name": "Cafe"}).id, seed=LARGEST_SEED + 1)


BAD_CALLS = [
    # (call, the parameter the error must name; None: any StudioError)
    ("characters.create", lambda s, w: s.characters.create([1, 2]), "data"),
    ("characters.create", lambda s, w: s.characters.create(GOOD, template_id=7), "template_id"),
    ("characters.get", lambda s, w: s.characters.get(123), "character_id"),
    ("characters.get", lambda s, w: s.characters.get(""), "character_id"),
    ("characters.get", lambda s, w: s.characters.get("x" * 500), "character_id"),
    ("characters.owned", lambda s, w: s.characters.owned(None), "character_id"),
    ("characters.resolve", lambda s, w: s.characters.resolve(1.5), "id_or_name"),
    ("characters.update", lambda s, w: s.characters.update(123, {}), "character_id"),
    ("characters.update", lambda s, w: s.characters.update(w["c"], [("name", "x")]), "changes"),
    ("characters.list", lambda s, w: s.characters.list(limit=-1), "limit"),
    ("characters.list", lambda s, w: s.characters.list(limit="10"), "limit"),
    ("characters.list", lambda s, w: s.characters.list(limit=10**9), "limit"),
    ("characters.list", lambda s, w: s.characters.list(offset=-5), "offset"),
    ("characters.list", lambda s, w: s.characters.list(offset=2**70), "offset"),
    ("characters.list", lambda s, w: s.characters.list(search=5), "search"),
    ("characters.list", lambda s, w: s.characters.list(mine_only="maybe"), "mine_only"),
    ("characters.set_reference_upload", lambda s, w: s.characters.set_reference_upload(w["c"], "not bytes"), "data"),
    ("characters.set_reference_upload", lambda s, w: s.characters.set_reference_upload(w["c"], b"not an image"), None),
    ("characters.clear_reference", lambda s, w: s.characters.clear_reference(123), "character_id"),
    ("characters.delete", lambda s, w: s.characters.delete(123), "character_id"),
    ("characters.delete", lambda s, w: s.characters.delete(["a"]), "character_id"),
    ("portraits.generate", lambda s, w: s.portraits.generate(123), "character_id"),
    ("portraits.generate", lambda s, w: s.portraits.generate(w["c"], [1, 2]), "options"),
    ("portraits.generate", lambda s, w: s.portraits.generate(w["c"], n="many"), "n"),
    ("portraits.generate", lambda s, w: s.portraits.generate(w["c"], n=9), "n"),
    ("portraits.generate", lambda s, w: s.portraits.generate(w["c"], seed=-1), "seed"),
    ("portraits.generate", lambda s, w: s.portraits.generate(w["c"], seed=2**64), "seed"),
    ("portraits.generate", lambda s, w: s.portraits.generate(w["c"], width=10**9), "width"),
    ("portraits.generate", lambda s, w: s.portraits.generate(w["c"], model_id=5), "model_id"),
    ("portraits.generate", lambda s, w: s.portraits.generate(w["c"], reference="portrait", reference_portrait_id=5), "reference_portrait_id"),
    ("portraits.generate", lambda s, w: s.portraits.generate(w["c"], reference="upload", reference_key=["k"]), "reference_key"),
    ("portraits.generate", lambda s, w: s.portraits.generate(w["c"], presets={"pose": 3}), "presets.pose"),
    ("portraits.preview_prompt", lambda s, w: s.portraits.preview_prompt(w["c"], 5), "options"),
    ("portraits.list", lambda s, w: s.portraits.list(w["c"], limit=-1), "limit"),
    ("portraits.list", lambda s, w: s.portraits.list(w["c"], offset="0"), "offset"),
    ("portraits.list", lambda s, w: s.portraits.list(42), "character_id"),
    ("portraits.get", lambda s, w: s.portraits.get(5), "portrait_id"),
    ("portraits.primary", lambda s, w: s.portraits.primary(5), "character_id"),
    ("portraits.set_primary", lambda s, w: s.portraits.set_primary(None), "portrait_id"),
    ("portraits.use_as_reference", lambda s, w: s.portraits.use_as_reference(1), "portrait_id"),
    ("portraits.reorder", lambda s, w: s.portraits.reorder(w["c"], "not a list"), "ordered_ids"),
    ("portraits.reorder", lambda s, w: s.portraits.reorder(w["c"], [w["p"], 3]), "ordered_ids.1"),
    ("portraits.delete", lambda s, w: s.portraits.delete(1), "portrait_id"),
    ("portraits.image_bytes", lambda s, w: s.portraits.image_bytes(1), "portrait_id"),
    ("portraits.image", lambda s, w: s.portraits.image(w["p"], thumbnail="perhaps"), "thumbnail"),
    ("portraits.download", lambda s, w: s.portraits.download(1), "portrait_id"),
    ("portraits.recall", lambda s, w: s.portraits.recall(1), "portrait_id"),
    ("portraits.regenerate", lambda s, w: s.portraits.regenerate(1), "portrait_id"),
    ("portraits.regenerate", lambda s, w: s.portraits.regenerate(w["p"], prompt=5), "prompt"),
    ("scenes.create", lambda s, w: s.scenes.create(1, {"name": "x"}), "character_id"),
    ("scenes.create", lambda s, w: s.scenes.create(w["c"], ["name"]), "data"),
    ("scenes.create", lambda s, w: s.scenes.create(w["c"], {"name": "x", "priority": 10**6}), "priority"),
    ("scenes.get", lambda s, w: s.scenes.get(1), "scene_id"),
    ("scenes.list", lambda s, w: s.scenes.list(1), "character_id"),
    ("scenes.update", lambda s, w: s.scenes.update(1, {}), "scene_id"),
    ("scenes.update", lambda s, w: s.scenes.update(w["s"], 5), "changes"),
    ("scenes.delete", lambda s, w: s.scenes.delete(1), "scene_id"),
    ("scenes.generate_image", lambda s, w: s.scenes.generate_image(1), "scene_id"),
    ("scenes.generate_image", lambda s, w: s.scenes.generate_image(w["s"], seed=-1), "seed"),
    ("scenes.generate_image", lambda s, w: s.scenes.generate_image(w["s"], model_id=5), "model_id"),
    ("jobs.get", lambda s, w: s.jobs.get(1), "job_id"),
    ("jobs.list", lambda s, w: s.jobs.list(status="bogus"), "status"),
    ("jobs.list", lambda s, w: s.jobs.list(status=("queued", "bogus")), "status.1"),
    ("jobs.list", lambda s, w: s.jobs.list(limit=-1), "limit"),
    ("jobs.list", lambda s, w: s.jobs.list(offset=-1), "offset"),
    ("jobs.list", lambda s, w: s.jobs.list(character_id=5), "character_id"),
    ("jobs.active", lambda s, w: s.jobs.active(character_id=5), "character_id"),
    ("jobs.cancel", lambda s, w: s.jobs.cancel(1), "job_id"),
    ("jobs.retry", lambda s, w: s.jobs.retry(1), "job_id"),
    ("jobs.wait", lambda s, w: s.jobs.wait([1]), "job_ids.0"),
    ("jobs.wait", lambda s, w: s.jobs.wait(w["j"], timeout=-1), "timeout"),
    ("jobs.wait", lambda s, w: s.jobs.wait(w["j"], poll="soon"), "poll"),
    ("templates.get", lambda s, w: s.templates.get(5), "template_id"),
    ("templates.create_character", lambda s, w: s.templates.create_character(5), "template_id"),
    ("templates.create_character", lambda s, w: s.templates.create_character("barista", colour="red"), "colour"),
    ("templates.create_character", lambda s, w: s.templates.create_character("barista", appearance_tags=7), "appearance_tags"),
    ("uploads.add", lambda s, w: s.uploads.add("not bytes"), "data"),
    ("uploads.add", lambda s, w: s.uploads.add(None), "data"),
    ("uploads.add", lambda s, w: s.uploads.add(b""), None),
    ("arguments", lambda s, w: s.characters.get(), "arguments"),
]


@pytest.mark.parametrize("call,param", [(c, p) for _, c, p in BAD_CALLS], ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(BAD_CALLS)])
def test_every_facade_method_answers_bad_arguments_with_the_studios_own_error(shared, call, param):
    studio, world = shared
    before = counts(studio)
    with pytest.raises(StudioError) as err:
        call(studio, world)
    if param is not None:
        assert isinstance(err.value, InvalidInput) and param in err.value.errors, (type(err.value), str(err.value))
    assert counts(studio) == before


def test_a_well_typed_id_that_matches_nothing_is_not_found(studio):
    with pytest.raises(NotFound):
        studio.characters.get("123")
    with pytest.raises(NotFound):
        studio.jobs.get("123")


def test_a_wait_that_times_out_is_the_studios_own_error(settings):
    with Studio.open(settings=settings, start_runner=False) as studio:  # nothing runs: the job stays queued
        character = studio.characters.create(GOOD)
        [job] = studio.portraits.generate(character.id)
        with pytest.raises(StudioError) as err:
            studio.jobs.wait([job.id], timeout=0)
        assert isinstance(err.value, TimeoutError) and "1 of 1 jobs still running" in str(err.value)
