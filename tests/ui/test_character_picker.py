"""The sidebar picker is cached per user and rebuilt when characters change (issue 15, finding 9)."""
from __future__ import annotations


def picker(at):
    box = at.sidebar.selectbox(key="character_picker")
    return [box.format_func(o) for o in box.options]


def test_picker_follows_creates_renames_and_deletes_made_anywhere(at, studio):
    mia = studio.characters.create({"name": "Mia"})
    at.run()
    assert picker(at) == ["Mia"]
    at.run()  # a rerun with nothing changed shows the same
    assert picker(at) == ["Mia"]
    sam = studio.characters.create({"name": "Sam"})  # through the API, not the page
    at.run()
    assert sorted(picker(at)) == ["Mia", "Sam"]
    studio.characters.update(mia.id, {"name": "Mia Rose"})
    at.run()
    assert sorted(picker(at)) == ["Mia Rose", "Sam"]
    studio.characters.delete(sam.id)
    at.run()
    assert picker(at) == ["Mia Rose"]
    assert not at.exception


def test_revision_changes_with_every_write(studio):
    keep = studio.characters.create({"name": "Keep"})
    revisions = [studio.characters.revision()]
    mia = studio.characters.create({"name": "Mia"})
    revisions.append(studio.characters.revision())
    studio.characters.update(mia.id, {"is_public": True})
    revisions.append(studio.characters.revision())
    studio.characters.update(keep.id, {"name": "Kept"})  # an older character renamed
    revisions.append(studio.characters.revision())
    studio.characters.delete(mia.id)
    revisions.append(studio.characters.revision())
    assert len(set(revisions)) == len(revisions)
