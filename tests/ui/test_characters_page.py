"""Characters page: empty state, create (with validation), list and editor with autosave, templates, delete."""
from __future__ import annotations

from streamlit.proto.WidgetStates_pb2 import WidgetStates
from ui_helpers import texts

CREATE = "create_character"


def test_empty_state_says_what_to_do(at):
    at.run()
    assert not at.exception
    assert "No characters yet" in texts(at)
    assert at.button(key=CREATE).label == "Create character"
    labels = [w.label for w in at.text_input] + [w.label for w in at.text_area]
    assert "Name" in labels and "Description" in labels


def test_create_character_through_the_form(at, studio):
    at.run()
    at.text_input(key="new.name").set_value("Mia")
    at.text_area(key="new.description").set_value("A cheerful barista")
    at.button(key=CREATE).click()
    at.run()
    assert not at.exception and not at.error
    [mia] = studio.characters.list().items
    assert mia.name == "Mia" and mia.description == "A cheerful barista"
    # The new character is selected, kept in the URL and open in the editor.
    assert at.query_params.get("character") == mia.id
    assert at.session_state["selected_character_id"] == mia.id
    assert f"ed.{mia.id}.0.name" in at.session_state


def test_validation_message_next_to_the_field(at, studio):
    at.run()
    at.text_input(key="new.name").set_value("   ")
    at.button(key=CREATE).click()
    at.run()
    assert any("name is required" in e.value for e in at.error)
    assert studio.characters.list().total == 0


def test_editor_autosaves_and_shows_status(at, studio):
    mia = studio.characters.create({"name": "Mia", "description": "A barista"})
    at.query_params["character"] = mia.id
    at.run()
    assert not at.exception
    at.text_area(key=f"ed.{mia.id}.0.description").set_value("A barista who loves latte art")
    at.run()
    assert studio.characters.get(mia.id).description == "A barista who loves latte art"
    assert "Saved" in texts(at)


def test_editor_keeps_invalid_value_unsaved_with_message(at, studio):
    mia = studio.characters.create({"name": "Mia"})
    at.query_params["character"] = mia.id
    at.run()
    # (A longer name cannot be typed: the box stops at the limit. A blank one is the invalid value left.)
    at.text_input(key=f"ed.{mia.id}.0.name").set_value("   ")
    at.run()
    assert any("a name is required" in e.value for e in at.error)
    assert "Unsaved" in texts(at)
    assert studio.characters.get(mia.id).name == "Mia"
    # The typed value is still in the field, and fixing it saves.
    assert at.text_input(key=f"ed.{mia.id}.0.name").value == "   "
    at.text_input(key=f"ed.{mia.id}.0.name").set_value("Mia Rose")
    at.run()
    assert studio.characters.get(mia.id).name == "Mia Rose"
    assert "Saved" in texts(at)


def test_style_chips_add_tags(at, studio):
    mia = studio.characters.create({"name": "Mia"})
    at.query_params["character"] = mia.id
    at.run()
    chips = at.pills(key=f"ed.{mia.id}.0.chips")
    chips.set_value(["gothic"])
    at.run()
    assert studio.characters.get(mia.id).appearance_tags == ["gothic style", "dark makeup"]


def test_edit_survives_page_switch(at, studio):
    mia = studio.characters.create({"name": "Mia"})
    at.query_params["character"] = mia.id
    at.run()
    at.text_area(key=f"ed.{mia.id}.0.persona").set_value("Warm and witty")
    at.switch_page("pages/portraits.py")
    at.run()
    assert studio.characters.get(mia.id).persona == "Warm and witty"
    at.switch_page("pages/characters.py")
    at.run()
    assert at.text_area(key=f"ed.{mia.id}.0.persona").value == "Warm and witty"


def test_a_late_edit_does_not_undo_a_page_switch(at, studio):
    """A tap on a page link right after typing: the switch reaches the server first, then the field's edit,
    which names the page being left. The edit is saved, and the user lands on the page they chose."""
    mia = studio.characters.create({"name": "Mia"})
    at.query_params["character"] = mia.id
    at.run()
    persona = at.text_area(key=f"ed.{mia.id}.0.persona")
    late_edit = WidgetStates(widgets=[persona.set_value("Warm and witty")._widget_state])  # the field's commit
    persona.set_value("")  # the switch itself carries no edit
    at.switch_page("pages/portraits.py")
    at.run()  # the switch
    assert [t.value for t in at.title] == ["Portraits"]
    at.switch_page("pages/characters.py")  # the late edit names the page being left
    at._run(late_edit)  # AppTest's run with the widget states a browser sent (run() sends the current page's)
    assert not at.exception
    assert [t.value for t in at.title] == ["Portraits"]
    assert studio.characters.get(mia.id).persona == "Warm and witty"
    # A switch that arrives with the edit (the usual order) simply goes where asked.
    at.switch_page("pages/characters.py")
    at.run()
    at.text_area(key=f"ed.{mia.id}.0.persona").set_value("Calm")
    at.switch_page("pages/scenes.py")
    at.run()
    assert [t.value for t in at.title] == ["Scenes"] and studio.characters.get(mia.id).persona == "Calm"
    # Editing on the Characters page itself stays there.
    at.switch_page("pages/characters.py")
    at.run()
    at.text_area(key=f"ed.{mia.id}.0.persona").set_value("Curious").run()
    assert [t.value for t in at.title] == ["Characters"] and studio.characters.get(mia.id).persona == "Curious"


def test_list_with_data_and_search(at, studio):
    studio.characters.create({"name": "Mia", "appearance_tags": ["red hair"]})
    studio.characters.create({"name": "Sam"})
    at.run()
    assert "Mia" in texts(at) and "Sam" in texts(at)
    at.text_input(key="char_search").set_value("red hair")
    at.run()
    body = texts(at)
    assert "Mia" in body and "**Sam**" not in body


def test_start_from_template(at, studio):
    at.run()
    at.button[[b.label for b in at.button].index("Start from template")].click()
    at.run()
    at.button(key="tpl.barista").click()
    at.run()
    [mia] = studio.characters.list().items
    assert mia.name == "Mia" and studio.characters.get(mia.id).template_id == "barista"
    assert at.session_state["selected_character_id"] == mia.id


def test_delete_asks_for_confirmation(at, studio):
    mia = studio.characters.create({"name": "Mia"})
    at.query_params["character"] = mia.id
    at.run()
    at.button(key="delete_character").click()
    at.run()
    assert studio.characters.list().total == 1  # only asked
    assert "cannot be undone" in texts(at)
    at.button(key="confirm_delete_char").click()
    at.run()
    assert studio.characters.list().total == 0
    assert not at.exception
    assert "character" not in at.query_params


def test_link_opens_that_character(at, studio):
    studio.characters.create({"name": "Mia"})
    sam = studio.characters.create({"name": "Sam"})
    at.query_params["character"] = sam.id
    at.run()
    assert at.selectbox(key="character_picker").value == sam.id
    assert at.text_input(key=f"ed.{sam.id}.0.name").value == "Sam"


def test_unknown_character_in_link_is_a_warning(at, studio):
    at.query_params["character"] = "no-such-id"
    at.run()
    assert not at.exception
    assert any("not found" in w.value for w in at.warning)
    assert "character" not in at.query_params


def test_public_character_of_another_user_is_read_only(at, studio):
    bob = studio.as_user("bob")
    public = bob.characters.create({"name": "Nova", "is_public": True})
    bob.characters.create({"name": "Secret"})
    studio_user = studio.as_user("local")  # the app's local user is an admin; check as a plain user too
    assert studio_user.characters.get(public.id).name == "Nova"
    at.run()
    body = texts(at)
    assert "Nova" in body and "public" in body


def test_new_character_draft_survives_page_switch(at, studio):
    at.run()
    at.text_input(key="new.name").set_value("Half-typed")
    at.run()
    at.switch_page("pages/queue.py")
    at.run()
    at.switch_page("pages/characters.py")
    at.run()
    assert at.text_input(key="new.name").value == "Half-typed"


def test_a_name_is_shown_as_typed_not_as_markdown(at, studio):
    """A name with Markdown, a colour directive and LaTeX is escaped wherever the page writes it as
    Markdown (Streamlit then shows the characters themselves)."""
    name = "**Bold** :red[x] $y$ <b>"
    studio.characters.create({"name": name, "description": "Odd."})
    at.run()
    assert not at.exception
    shown = [m.value for m in at.markdown] + [h.value for h in at.subheader]
    escaped = r"\*\*Bold\*\* \:red\[x\] \$y\$ \<b\>"
    assert any(escaped in v for v in shown)
    assert not any(name in v for v in shown)  # never unescaped


def test_a_greeting_saved_while_typing_keeps_its_field(at, studio):
    """A committed greeting keeps its widget key (a new key would drop the focus of someone still typing);
    emptying one renumbers the rest."""
    mia = studio.characters.create({"name": "Mia", "alternate_greetings": ["Hi there", "Welcome back"]})
    at.query_params["character"] = mia.id
    at.run()
    at.text_area(key=f"ed.{mia.id}.0.greet.0").set_value("Hi there, regular!")
    at.run()
    assert studio.characters.get(mia.id).alternate_greetings == ["Hi there, regular!", "Welcome back"]
    assert at.text_area(key=f"ed.{mia.id}.0.greet.0").value == "Hi there, regular!"  # same field, same key
    at.text_area(key=f"ed.{mia.id}.0.greet.0").set_value("")
    at.run()
    assert studio.characters.get(mia.id).alternate_greetings == ["Welcome back"]
    assert at.text_area(key=f"ed.{mia.id}.1.greet.0").value == "Welcome back"
