"""Characters: every validation rule, CRUD, listing, visibility and delete with its files."""
from __future__ import annotations

import pytest

from core.errors import Forbidden, InvalidInput, NotFound

GOOD = {"name": "Mia", "description": "A barista."}


@pytest.mark.parametrize("field,value,expect", [
    ("name", "", "name: a name is required (at least 1 character, at most 50)"),
    ("name", "x" * 51, "at most 50"),
    ("description", "d" * 2001, "at most 2000"),
    ("gender", "robot", "'female', 'male', 'non-binary' or 'unspecified'"),
    ("content_rating", "pg13", "'sfw' or 'nsfw'"),
    ("voice_tone", "shouty", "'warm'"),
    ("mood", "grumpy", "'friendly'"),
    ("appearance_tags", ["t" * 41], "at most 40 characters"),
    ("appearance_tags", [f"tag{i}" for i in range(21)], "at most 20 tags"),
    ("clothing_tags", [3], "tag 1 must be text (got int)"),
    ("alternate_greetings", [f"hi {i}" for i in range(11)], "at most 10 entries"),
    ("forbidden_phrases", ["p" * 201], "at most 200 characters"),
    ("voice_examples", ["v" * 2001], "at most 2000 characters"),
    ("system_prompt", "s" * 8001, "at most 8000"),
    ("default_presets", {"pose": "standing", "lighting": "dark"}, "lighting: is not a known field"),
    ("unknown_field", 1, "unknown_field: is not a known field"),
])
def test_each_rule_names_the_field_and_what_is_allowed(studio, field, value, expect):
    with pytest.raises(InvalidInput) as err:
        studio.characters.create({**GOOD, field: value})
    assert field in " ".join(err.value.errors), err.value.errors
    assert expect in str(err.value), str(err.value)
    assert studio.characters.list().total == 0


def test_tags_are_trimmed_and_deduplicated(studio):
    c = studio.characters.create({**GOOD, "appearance_tags": "  red  hair , Red Hair,freckles,, ", "clothing_tags": ["apron", " apron "]})
    assert c.appearance_tags == ["red hair", "freckles"] and c.clothing_tags == ["apron"]


def test_create_read_and_partial_update(studio):
    c = studio.characters.create({**GOOD, "alternate_greetings": ["Hi!", "  "], "default_presets": {"pose": "standing"}})
    assert c.alternate_greetings == ["Hi!"] and c.default_presets.pose == "standing"
    assert (c.gender, c.content_rating, c.voice_tone, c.mood, c.is_public) == ("unspecified", "sfw", "warm", "friendly", False)
    updated = studio.characters.update(c.id, {"mood": "mysterious", "traits": "curious"})
    assert updated.mood == "mysterious" and updated.traits == "curious" and updated.name == "Mia"
    assert updated.updated_at >= c.updated_at
    with pytest.raises(InvalidInput) as err:
        studio.characters.update(c.id, {"name": None})
    assert "name" in err.value.errors
    with pytest.raises(InvalidInput):
        studio.characters.update(c.id, {"gender": "robot"})
    assert studio.characters.get(c.id).mood == "mysterious"


def test_list_is_newest_first_searchable_and_paged(studio):
    for i in range(7):
        studio.characters.create({"name": f"Char {i}", "appearance_tags": ["blue eyes"] if i % 2 else ["green eyes"]})
    page = studio.characters.list(limit=3)
    assert page.total == 7 and [c.name for c in page.items] == ["Char 6", "Char 5", "Char 4"]
    assert [c.name for c in studio.characters.list(limit=3, offset=6).items] == ["Char 0"]
    assert studio.characters.list("BLUE").total == 3
    assert [c.name for c in studio.characters.list("char 4").items] == ["Char 4"]


def test_others_see_public_characters_but_cannot_change_them(studio):
    mine = studio.characters.create({**GOOD, "is_public": True})
    private = studio.characters.create({"name": "Secret"})
    bob = studio.as_user("bob")
    assert [c.id for c in bob.characters.list().items] == [mine.id]
    assert bob.characters.list(mine_only=True).total == 0
    with pytest.raises(NotFound):
        bob.characters.get(private.id)
    with pytest.raises(Forbidden):
        bob.characters.update(mine.id, {"name": "Stolen"})
    with pytest.raises(Forbidden):
        bob.characters.delete(mine.id)


def test_delete_leaves_no_rows_and_no_files(studio):
    from tests.conftest import png_bytes

    c = studio.characters.create(GOOD)
    studio.characters.set_reference_upload(c.id, png_bytes())
    jobs = studio.portraits.generate(c.id, n=2)
    studio.jobs.wait([j.id for j in jobs], timeout=30)
    scene = studio.scenes.create(c.id, {"name": "Cafe", "prompt": "at work"})
    studio.jobs.wait([studio.scenes.generate_image(scene.id).id], timeout=30)
    assert len(list(studio.ctx.store.keys())) == 7  # 2 portraits + 1 scene, each with a thumbnail, + reference
    studio.characters.delete(c.id)
    for table in ("characters", "character_portraits", "character_scenes", "scene_images", "jobs", "uploads"):
        assert studio.ctx.db.scalar(f"SELECT count(*) FROM {table}") == 0, table
    assert list(studio.ctx.store.keys()) == []
    with pytest.raises(NotFound):
        studio.characters.get(c.id)


def test_resolve_by_id_or_name(studio):
    c = studio.characters.create(GOOD)
    assert studio.characters.resolve(c.id).id == c.id
    assert studio.characters.resolve("mia").id == c.id
    with pytest.raises(NotFound, match="id or name 'nobody'"):
        studio.characters.resolve("nobody")


def test_a_name_two_of_ones_own_characters_share_is_ambiguous(studio):
    first = studio.characters.create(GOOD)
    second = studio.characters.create(GOOD)
    with pytest.raises(InvalidInput, match="2 characters are named 'mia'") as err:
        studio.characters.resolve("mia")
    assert first.id in str(err.value) and second.id in str(err.value)
    assert studio.characters.resolve(second.id).id == second.id
    # Another user's public namesake does not make one's own name ambiguous: one's own comes first.
    bob = studio.as_user("bob")
    bobs = bob.characters.create({**GOOD, "name": "Ava"})
    studio.characters.update(first.id, {"name": "Ava", "is_public": True})
    assert bob.characters.resolve("ava").id == bobs.id
