"""Issue 15 finding 4: every limited field shows its limit (max_chars: the box counts and stops there), the
limit is the one the API applies, errors use the field's own words next to the field, and numbers out of
range are refused, not clamped."""
from __future__ import annotations

import pytest
from ui_helpers import page

from core.errors import InvalidInput

# (editor widget key suffix, the character field it edits)
EDITOR_TEXT = [("name", "name"), ("description", "description"), ("persona", "persona"), ("traits", "traits"),
               ("first_message", "first_message"), ("system_prompt", "system_prompt"),
               ("greet.0", "alternate_greetings")]


def block_holding(node, key: str):
    """The innermost layout block whose direct children include the widget with this key."""
    for child in getattr(node, "children", {}).values():
        if getattr(child, "key", None) == key:
            return node
        found = block_holding(child, key)
        if found is not None:
            return found
    return None


def errors_in(block) -> list[str]:
    return [e.value for e in _walk(block) if type(e).__name__ == "Error"]


def _walk(node):
    for child in getattr(node, "children", {}).values():
        yield child
        yield from _walk(child)


def widget(at, key: str):
    return next(w for w in list(at.text_input) + list(at.text_area) if w.key == key)


@pytest.mark.parametrize(("suffix", "field"), EDITOR_TEXT)
def test_editor_text_fields_show_the_limit_the_api_applies(at, studio, suffix, field):
    mia = studio.characters.create({"name": "Mia", "description": "A barista",
                                    "alternate_greetings": ["Hi there"]})
    at.query_params["character"] = mia.id
    at.run()
    limit = widget(at, f"ed.{mia.id}.0.{suffix}").max_chars
    assert limit, f"{suffix}: no limit shown"
    def value(n):
        return ["a" * n] if field == "alternate_greetings" else "a" * n
    studio.characters.update(mia.id, {field: value(limit)})  # the box's limit is accepted...
    with pytest.raises(InvalidInput, match=f"at most {limit} characters"):  # ...and one more is refused
        studio.characters.update(mia.id, {field: value(limit + 1)})


def test_new_character_form_shows_limits_and_puts_errors_beside_the_field(at, studio):
    at.run()
    name, description = widget(at, "new.name"), widget(at, "new.description")
    assert name.max_chars and description.max_chars
    studio.characters.create({"name": "n" * name.max_chars, "description": "d" * description.max_chars})
    at.run()
    at.text_input(key="new.name").set_value("   ")
    at.text_area(key="new.description").set_value("A barista")
    at.button(key="create_character").click()
    at.run()
    messages = errors_in(block_holding(at._tree, "new.name"))
    assert messages == ["a name is required (at least 1 character, at most 50)"]
    assert studio.characters.list().total == 1  # only the one made above
    # Text pasted past the box's limit stops at it, as the counter shows before submit: nothing is refused later.
    at.text_input(key="new.name").set_value("Mia")
    at.text_area(key="new.description").set_value("d" * (description.max_chars + 1))
    at.button(key="create_character").click()
    at.run()
    assert not at.error
    mia = next(c for c in studio.characters.list().items if c.name == "Mia")
    assert len(studio.characters.get(mia.id).description) == description.max_chars


def test_too_many_images_are_refused_beside_the_field_and_the_field_keeps_the_number(at, studio):
    mia = studio.characters.create({"name": "Mia", "description": "A barista"})
    at.query_params["character"] = mia.id
    page(at, "portraits")
    images = at.number_input(key="pt.n")
    limit_text = " ".join(c.value for c in at.caption)
    assert "At most 8" in limit_text
    images.set_value(9)
    at.button(key="generate_portrait").click()
    at.run()
    assert not at.exception
    assert at.number_input(key="pt.n").value == 9  # refused, not clamped to 8 or reset to 1
    messages = errors_in(block_holding(at._tree, "pt.n"))
    assert messages == ["at most 8 (got 9)"]
    assert studio.jobs.list().total == 0
    at.number_input(key="pt.n").set_value(2)
    at.button(key="generate_portrait").click()
    at.run()
    assert studio.jobs.list().total == 2
    assert not errors_in(block_holding(at._tree, "pt.n"))


@pytest.mark.parametrize("field", ["name", "description", "prompt", "system_prompt"])
def test_scene_form_fields_show_the_limit_the_api_applies(at, studio, field):
    mia = studio.characters.create({"name": "Mia", "description": "A barista"})
    at.query_params["character"] = mia.id
    page(at, "scenes")
    next(b for b in at.button if b.label == "New scene").click()
    at.run()
    limit = widget(at, f"sc.new.{field}").max_chars
    assert limit, f"{field}: no limit shown"
    data = {"name": "Dock", field: "a" * limit}
    studio.scenes.create(mia.id, data)  # the box's limit is accepted...
    with pytest.raises(InvalidInput, match=f"at most {limit} characters"):  # ...and one more is refused
        studio.scenes.create(mia.id, {**data, field: "a" * (limit + 1)})
