"""Form drafts (core/drafts.py): kept field by field per user in the database, on both backends."""
from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.studio import Studio
from tests.conftest import make_settings

pytestmark = pytest.mark.parametrize("db_backend", ["duckdb", "postgresql"])
KIND = "new_character"


def test_kept_field_by_field_and_discarded(studio):
    assert studio.drafts.get(KIND) == {}
    studio.drafts.keep(KIND, "name", "Mia")
    studio.drafts.keep(KIND, "appearance_tags", ["red hair", "freckles"])
    studio.drafts.keep(KIND, "name", "Mia Rose")  # a field kept again replaces its value
    assert studio.drafts.get(KIND) == {"name": "Mia Rose", "appearance_tags": ["red hair", "freckles"]}
    studio.drafts.discard(KIND)
    assert studio.drafts.get(KIND) == {}


def test_each_user_sees_only_their_own(studio):
    studio.drafts.keep(KIND, "name", "Mine")
    other = studio.as_user("bob")
    assert other.drafts.get(KIND) == {}
    other.drafts.keep(KIND, "name", "Bob's")
    other.drafts.discard(KIND)
    assert studio.drafts.get(KIND) == {"name": "Mine"}


def test_bad_input_is_refused_and_keeps_nothing(studio):
    studio.drafts.keep(KIND, "name", "Kept")
    with pytest.raises(InvalidInput, match="field"):
        studio.drafts.keep(KIND, "owner", "mallory")  # not a field of the form
    with pytest.raises(InvalidInput):
        studio.drafts.keep(KIND, "description", "x" * 20_001)
    with pytest.raises(InvalidInput):
        studio.drafts.keep(KIND, "appearance_tags", [{"nested": "object"}])
    with pytest.raises(InvalidInput):
        studio.drafts.get("some_other_form")
    assert studio.drafts.get(KIND) == {"name": "Kept"}


def test_a_draft_outlives_the_server(tmp_path, db_env):
    settings = make_settings(tmp_path / "home", db_env)
    with Studio.open(settings=settings) as first:
        first.drafts.keep(KIND, "description", "A lighthouse keeper")
    with Studio.open(settings=settings) as again:  # a restart, or another server on the same database
        assert again.drafts.get(KIND) == {"description": "A lighthouse keeper"}
