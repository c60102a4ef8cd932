"""Privilege comes from the deployment's configuration, and images are served only to those who may see them."""
from __future__ import annotations

import pytest

from core.errors import Forbidden, NotFound
from core.images import placeholder
from core.studio import Studio
from tests.conftest import make_settings, png_bytes


def _portrait(studio: Studio, **fields):
    c = studio.characters.create({"name": "Alice's", "description": "A knight in silver armour.", **fields})
    studio.jobs.wait([j.id for j in studio.portraits.generate(c.id)], timeout=30)
    return c, studio.portraits.list(c.id).items[0]


def test_a_caller_cannot_make_itself_admin(studio):
    with pytest.raises(TypeError):
        studio.as_user("bob", is_admin=True)  # the keyword is gone: admin is not the caller's to claim
    # A users row that says admin (say, edited by hand, or left from an older version) grants nothing.
    studio.as_user("bob")
    studio.ctx.db.execute("UPDATE users SET is_admin = TRUE WHERE id = 'bob'")
    bob = studio.as_user("bob")
    assert not bob.actor.is_admin
    with pytest.raises(Forbidden):
        bob.models.set_active(bob.models.list()[0].id, False)
    assert studio.ctx.db.scalar("SELECT is_admin FROM users WHERE id = 'bob'") is False  # mirrored back from config


def test_admins_are_named_by_configuration(tmp_path):
    settings = make_settings(tmp_path / "home", {"STUDIO_ADMINS": "Carol@Example.com, dave"})
    with Studio.open(settings=settings) as studio:
        assert studio.actor.is_admin  # the local user of a local install
        assert studio.as_user("https://idp/|123", email="carol@example.com").actor.is_admin
        assert studio.as_user("DAVE").actor.is_admin
        assert not studio.as_user("erin", email="erin@example.com").actor.is_admin
    # Taken off the list, the same user is no admin at the next start.
    with Studio.open(settings=make_settings(tmp_path / "home")) as studio:
        assert not studio.as_user("dave").actor.is_admin
        assert studio.ctx.db.scalar("SELECT is_admin FROM users WHERE id = 'dave'") is False


def test_images_of_a_private_character_are_not_served_to_others(studio):
    alice = studio.as_user("alice")
    character, portrait = _portrait(alice)
    upload = alice.uploads.add(png_bytes(color=(1, 2, 3)))
    bob = studio.as_user("bob")
    for key in (portrait.image_key, portrait.thumbnail_key, upload, "alice/portraits/nope.png"):
        with pytest.raises(NotFound):
            bob.images.read(key)
        with pytest.raises(NotFound):
            bob.images.download_url(key, "x.png")
        assert bob.images.src(key) == placeholder()
    assert alice.images.read(portrait.image_key) == alice.ctx.store.read(portrait.image_key)
    assert alice.images.read(upload)
    assert studio.images.read(portrait.image_key)  # the local admin sees everything
    with pytest.raises(NotFound):
        bob.portraits.image_bytes(portrait.id)


def test_images_of_a_public_character_are_served_but_stay_read_only(studio):
    alice = studio.as_user("alice")
    character, portrait = _portrait(alice, is_public=True)
    alice.characters.set_reference_upload(character.id, png_bytes(color=(9, 9, 9)))
    reference = alice.characters.get(character.id).reference_image_key
    bob = studio.as_user("bob")
    assert bob.images.read(portrait.image_key) == bob.portraits.image_bytes(portrait.id)
    assert bob.images.read(reference)
    with pytest.raises(Forbidden):
        bob.portraits.set_primary(portrait.id)
    alice.characters.update(character.id, {"is_public": False})
    with pytest.raises(NotFound):
        bob.images.read(portrait.image_key)
