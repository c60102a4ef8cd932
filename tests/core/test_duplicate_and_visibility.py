"""Duplicating a character one may see, and per-portrait public/private."""
from __future__ import annotations

import pytest

from core.errors import InvalidInput, NotFound
from tests.conftest import png_bytes


def _with_portraits(studio, n: int, **fields):
    character = studio.characters.create({"name": "Olga", "description": "A baker.", **fields})
    studio.jobs.wait([j.id for j in studio.portraits.generate(character.id, n=n)], timeout=60)
    return character, studio.portraits.list(character.id).items


def test_duplicate_copies_fields_not_portraits_and_keeps_its_own_reference(studio):
    alice, bob = studio.as_user("alice"), studio.as_user("bob")
    olga, _ = _with_portraits(alice, 1, is_public=True, appearance_tags=["flour", "apron"], persona="Warm.",
                              default_presets={"pose": "closeup"})
    reference = png_bytes(color=(40, 90, 200))
    alice.characters.set_reference_upload(olga.id, reference)
    copy = bob.characters.duplicate(olga.id)
    assert (copy.owner, copy.is_public, copy.name, copy.appearance_tags, copy.persona) == \
        ("bob", False, "Olga (copy)", ["flour", "apron"], "Warm.")
    assert copy.default_presets.pose == "closeup" and copy.primary_portrait_id is None
    long = alice.characters.create({"name": "N" * 50, "description": "x", "is_public": True})
    assert bob.characters.duplicate(long.id).name == "N" * 43 + " (copy)"  # within the name's 50 characters
    assert bob.portraits.list(copy.id).total == 0 and alice.portraits.list(olga.id).total == 1
    # The reference is bob's own upload now: it outlives the original going private.
    assert copy.reference_image_key.startswith("bob/") and bob.images.read(copy.reference_image_key) == reference
    alice.characters.update(olga.id, {"is_public": False})
    with pytest.raises(NotFound):
        bob.characters.duplicate(olga.id)
    assert bob.images.read(copy.reference_image_key) == reference
    assert bob.portraits.generate(copy.id, reference="character")  # the copy is bob's to use


def test_a_portrait_follows_its_character_until_its_owner_chooses(studio):
    alice, bob = studio.as_user("alice"), studio.as_user("bob")
    olga, portraits = _with_portraits(alice, 2, is_public=True)
    primary = alice.portraits.primary(olga.id)
    other = next(p for p in portraits if p.id != primary.id)
    assert all(p.is_public and not p.visibility_set for p in portraits)
    hidden = alice.portraits.set_public(primary.id, False)
    assert (hidden.is_public, hidden.visibility_set) == (False, True)
    # bob: the private portrait is left out everywhere, bytes and URLs included.
    assert [p.id for p in bob.portraits.list(olga.id).items] == [other.id]
    assert bob.portraits.list(olga.id).total == 1 and bob.portraits.primary(olga.id) is None
    [summary] = [c for c in bob.characters.list().items if c.id == olga.id]
    assert summary.portrait_count == 1 and summary.primary_thumbnail_key is None
    for key in (primary.image_key, primary.thumbnail_key):
        with pytest.raises(NotFound):
            bob.images.read(key)
    assert bob.images.read(other.image_key)
    # alice and an admin still see it.
    assert alice.portraits.list(olga.id).total == 2 and studio.images.read(primary.image_key)
    [mine] = [c for c in alice.characters.list().items if c.id == olga.id]
    assert mine.portrait_count == 2 and mine.primary_thumbnail_key == primary.thumbnail_key
    # Back to following the character; a private character hides all of them.
    assert alice.portraits.set_public(primary.id, None).is_public
    assert bob.portraits.list(olga.id).total == 2
    alice.characters.update(olga.id, {"is_public": False})
    assert not alice.portraits.get(other.id).is_public
    with pytest.raises(NotFound):
        bob.images.read(other.image_key)


def test_set_public_takes_only_true_false_or_none(studio):
    _, [portrait] = _with_portraits(studio, 1)
    with pytest.raises(InvalidInput):
        studio.portraits.set_public(portrait.id, "yes")
    assert not studio.portraits.get(portrait.id).visibility_set


def test_deleting_a_character_or_portrait_removes_its_visibility_rows(studio):
    character, portraits = _with_portraits(studio, 2)
    for p in portraits:
        studio.portraits.set_public(p.id, True)
    studio.portraits.delete(portraits[0].id)
    assert studio.ctx.db.scalar("SELECT count(*) FROM portrait_visibility") == 1
    studio.characters.delete(character.id)
    assert studio.ctx.db.scalar("SELECT count(*) FROM portrait_visibility") == 0
