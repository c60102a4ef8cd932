"""Shipped templates and presets; scenes."""
from __future__ import annotations

import pytest

from core.errors import InvalidInput


def test_templates_ship_and_create_characters(studio):
    templates = studio.templates.list()
    assert len(templates) >= 8
    c = studio.templates.create_character("detective", name="Sam Spade")
    assert c.name == "Sam Spade" and c.template_id == "detective" and "trench coat" in c.clothing_tags
    assert c.description


def test_presets_ship_every_kind(studio):
    poses = [p["label"] for p in studio.presets.options("pose")]
    assert poses == ["Standing", "Profile", "Back", "Sitting", "Lying", "Close-up"]
    for kind in ("expression", "outfit", "camera"):
        assert len(studio.presets.options(kind)) >= 4
    chips = studio.presets.options("appearance_chips")
    assert len(chips) == 8 and {"elegant", "casual", "athletic"} <= {c["key"] for c in chips}


def test_scenes_crud_and_priority_order(studio, character):
    low = studio.scenes.create(character.id, {"name": "Park", "priority": 1, "starters": ["Nice day", " "]})
    high = studio.scenes.create(character.id, {"name": "Cafe", "priority": 5, "type": "work", "system_prompt": "Be brief."})
    assert low.starters == ["Nice day"] and low.image_key is None
    assert [s.name for s in studio.scenes.list(character.id)] == ["Cafe", "Park"]
    studio.scenes.update(low.id, {"priority": 9, "description": "Sunny"})
    assert [s.name for s in studio.scenes.list(character.id)] == ["Park", "Cafe"]
    assert studio.scenes.get(low.id).description == "Sunny" and studio.scenes.get(high.id).type == "work"
    with pytest.raises(InvalidInput, match="name"):
        studio.scenes.create(character.id, {"name": ""})
    with pytest.raises(InvalidInput, match="priority"):
        studio.scenes.update(low.id, {"priority": 5000})
    studio.scenes.delete(low.id)
    assert [s.name for s in studio.scenes.list(character.id)] == ["Cafe"]


def test_every_template_fills_persona_and_traits(studio):
    """A character started from any shipped template has a persona and traits of its own."""
    templates = studio.templates.list()
    assert templates
    personas = set()
    for t in templates:
        c = studio.templates.create_character(t.id)
        assert c.persona and len(c.persona.split()) >= 20, t.id
        assert c.traits and len(c.traits.split(",")) >= 3, t.id
        personas.add(c.persona)
    assert len(personas) == len(templates)  # none copied from another


def test_a_home_seeded_before_gets_the_shipped_templates_up_to_date(studio):
    from core.data import dumps
    from core.templates import seed_templates

    old = studio.templates.get("barista").character
    studio.ctx.db.execute("UPDATE character_templates SET character = ? WHERE id = 'barista'",
                          [dumps({k: v for k, v in old.items() if k not in ("persona", "traits")})])
    assert not studio.templates.create_character("barista").persona
    seed_templates(studio.ctx)
    assert studio.templates.create_character("barista").persona == old["persona"]
