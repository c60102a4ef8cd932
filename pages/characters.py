"""Characters: a searchable list and the editor (autosaved), create, templates, delete."""
from __future__ import annotations

import time
from typing import Any

import streamlit as st

from core.errors import InvalidInput, StudioError
from core.models import (CONTENT_RATINGS, GENDERS, MOODS, TAG_MAX_COUNT, VOICE_TONES, Character, CharacterCreate,
                         CharacterUpdate)
from core.presets import PRESET_KINDS
from core.validation import text_limit
from ui import app, assist, autosave, layout
from ui.thumbs import small_image
from ui.widgets import field_error, image, literal, plural

app.require_frame()
s = app.studio()
MODE = "characters_mode"  # "edit" or "new"


def most(field: str) -> int:
    """A field's character limit, for the widget's max_chars (the box shows it and counts)."""
    return text_limit(CharacterUpdate, field)

LIST_LIMIT = "characters_list_limit"


# -- callbacks -------------------------------------------------------------------------
def open_character(cid: str) -> None:
    app.select_character(cid)
    st.session_state[MODE] = "edit"


def start_new() -> None:
    st.session_state[MODE] = "new"
    st.session_state.pop("new_errors", None)


def cancel_new() -> None:
    st.session_state[MODE] = "edit"


NEW_FIELDS = ("name", "description", "gender", "content_rating", "appearance_tags")


def create_character() -> None:
    data = {
        "name": st.session_state.get("new.name", ""),
        "description": st.session_state.get("new.description", ""),
        "gender": st.session_state.get("new.gender", "unspecified"),
        "content_rating": st.session_state.get("new.content_rating", "sfw"),
        "appearance_tags": st.session_state.get("new.appearance_tags", []),
    }
    try:
        character = app.studio().characters.create(data)
    except InvalidInput as exc:
        st.session_state["new_errors"] = exc.errors
        return
    except StudioError as exc:
        st.session_state["new_errors"] = {"_": exc.message}
        return
    st.session_state.pop("new_errors", None)
    for k in NEW_FIELDS:
        st.session_state.pop(f"new.{k}", None)
    app.studio().drafts.discard(DRAFT)
    open_character(character.id)
    app.flash(f"Created {literal(character.name)}.")


def use_template(template_id: str) -> None:
    character = app.attempt_later(app.studio().templates.create_character, template_id)
    if character is not None:
        open_character(character.id)
        app.flash(f"Created {literal(character.name)} from a template.")
        st.session_state.pop("show_templates", None)


def duplicate_character(cid: str) -> None:
    copy = app.attempt_later(app.studio().characters.duplicate, cid,
                             success="Duplicated: this copy is yours (private) to change.")
    if copy is not None:
        open_character(copy.id)


def ask_delete(cid: str) -> None:
    st.session_state["confirm_delete_character"] = cid


def clear_delete() -> None:
    st.session_state.pop("confirm_delete_character", None)


def delete_character(cid: str) -> None:
    clear_delete()
    try:
        app.studio().characters.delete(cid)
    except StudioError as exc:
        app.flash(app.error_text(exc), "error")
        return
    if app.selected_character_id() == cid:
        app.select_character(None)
    autosave.forget(cid)
    app.flash("Character deleted.")


# -- dialogs ---------------------------------------------------------------------------
@st.dialog("Start from template", width="large", on_dismiss=lambda: st.session_state.pop("show_templates", None))
def template_dialog() -> None:
    if not st.session_state.get("show_templates"):
        st.rerun()  # a template was used: close the dialog
    templates = s.templates.list()
    if not templates:
        st.info("No templates are installed (data/templates.json).")
        return
    cols = st.columns(3)
    for i, t in enumerate(templates):
        with cols[i % 3].container(border=True):
            st.markdown(f"**{t.name}**")
            st.caption(t.summary)
            st.button("Use this template", key=f"tpl.{t.id}", on_click=use_template, args=(t.id,), width="stretch")


@st.dialog("Delete character?", on_dismiss=clear_delete)
def delete_dialog(character: Character, portraits: int, scenes: int) -> None:
    if st.session_state.get("confirm_delete_character") != character.id:
        st.rerun()  # answered: close the dialog
    st.write(f"Delete **{literal(character.name)}** with its {plural(portraits, 'portrait')}, {plural(scenes, 'scene')} and their images? "
             "This cannot be undone.")
    c1, c2 = st.columns(2)
    c1.button("Delete", type="primary", key="confirm_delete_char", on_click=delete_character, args=(character.id,),
              width="stretch")
    c2.button("Cancel", key="cancel_delete_char", on_click=clear_delete, width="stretch")


# -- list ------------------------------------------------------------------------------
def character_list() -> None:
    search = st.text_input("Search", placeholder="Name or tag", key="char_search", icon=":material/search:")
    st.button("New character", type="primary", on_click=start_new, icon=":material/person_add:", width="stretch")
    if st.button("Start from template", icon=":material/auto_awesome:", width="stretch"):
        st.session_state["show_templates"] = True
    limit = st.session_state.get(LIST_LIMIT, 30)
    page = s.characters.list(search, limit=limit)
    if not page.items:
        if search:
            st.caption(f"No characters match “{search}”. Clear the search or create one.")
        else:
            st.caption("No characters yet: create one or start from a template.")
        return
    selected = app.selected_character_id()
    for c in page.items:
        with st.container(border=True):
            pic, text = st.columns([1, 3], vertical_alignment="center")
            with pic:
                small_image(s, c.primary_thumbnail_key, width=64)
            with text:
                public = " :blue-badge[public]" if c.is_public else ""
                st.markdown(f"**{literal(c.name)}**{public}")
                tags = ", ".join((c.appearance_tags + c.clothing_tags)[:5])
                st.caption(plural(c.portrait_count, "portrait") + (f" · {tags}" if tags else ""))
                is_sel = c.id == selected and st.session_state.get(MODE) != "new"
                st.button("Editing" if is_sel else "Open", key=f"open.{c.id}", disabled=is_sel,
                          on_click=open_character, args=(c.id,), type="tertiary")
    if page.total > len(page.items):
        if st.button(f"Show more ({page.total - len(page.items)} more)"):
            st.session_state[LIST_LIMIT] = limit + 30
            st.rerun()


# -- create form -----------------------------------------------------------------------
DRAFT = "new_character"  # the form's draft, kept in the database (core/drafts.py)


def keep_draft(field: str, key: str) -> None:
    """Widget callback: keep the field's new value in the user's draft (if that fails, the form keeps it
    and says so)."""
    try:
        app.studio().drafts.keep(DRAFT, field, st.session_state.get(key))
    except StudioError as exc:
        app.flash(f"The draft was not kept: {exc.message}", "warning")


def create_form(can_cancel: bool) -> None:
    st.subheader("New character")
    errs = st.session_state.get("new_errors", {})
    # Not an st.form: the draft is kept for the session (persist_state), so switching pages loses nothing, and
    # in the database for the user (autosave.keep_draft), so a reload, a restart or another server finds it too.
    kept = app.studio().drafts.get(DRAFT)
    for field, value in kept.items():
        if f"new.{field}" not in st.session_state:  # a new session (a reload): start from the draft
            st.session_state[f"new.{field}"] = value

    def keep(field: str) -> dict[str, Any]:
        return {"persist_state": "session", "on_change": keep_draft, "args": (field, f"new.{field}")}

    with st.container(border=True, key=f"{autosave.SCOPE}new"):
        st.text_input("Name", key="new.name", placeholder="e.g. Mia", max_chars=text_limit(CharacterCreate, "name"),
                      **keep("name"))
        field_error(errs, "name")
        st.text_area("Description", key="new.description", max_chars=most("description"), height=120,
                     placeholder="Who is this character? Needed to generate portraits: it goes into the prompt.",
                     **keep("description"))
        field_error(errs, "description")
        c1, c2 = st.columns(2)
        c1.selectbox("Gender", GENDERS, index=GENDERS.index("unspecified"), key="new.gender", **keep("gender"))
        c2.radio("Content rating", CONTENT_RATINGS, format_func=str.upper, horizontal=True, key="new.content_rating",
                 **keep("content_rating"))
        st.multiselect("Appearance tags", [], key="new.appearance_tags", accept_new_options=True,
                       max_selections=TAG_MAX_COUNT, placeholder="Type a tag and press Enter", **keep("appearance_tags"))
        field_error(errs, "appearance_tags")
        field_error(errs, "_")
        st.button("Create character", type="primary", key="create_character", on_click=create_character)
        if kept:
            st.caption(":material/cloud_done: Draft kept: it is still here after a reload.")
    if can_cancel:
        st.button("Cancel", on_click=cancel_new)
    st.caption("All other fields (personality, greetings, advanced) are in the editor after creating.")


# -- editor ----------------------------------------------------------------------------
def _lines(value: str | None) -> list[str]:
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


def _rev(cid: str) -> int:
    return st.session_state.setdefault("_editor_rev", {}).get(cid, 0)


def _bump(cid: str) -> None:
    revs = st.session_state.setdefault("_editor_rev", {})
    revs[cid] = revs.get(cid, 0) + 1


def editor(character: Character) -> None:
    cid = character.id
    owned = character.owner == s.actor.id or s.actor.is_admin
    head, status_col, actions = st.columns([4, 2, 1.4], vertical_alignment="center")
    status_ph = status_col.container(key=autosave.STATUS_KEY).empty()
    autosave.flush(s, status_ph)
    try:
        character = s.characters.get(cid)
    except StudioError as exc:
        st.error(exc.message)
        return
    head.subheader(literal(character.name))
    pending = autosave.pending(cid)
    errs = autosave.errors(cid)
    state, when = autosave.status(cid)
    if state == "saved":
        stamp = f" {time.strftime('%H:%M:%S', time.localtime(when))}" if when else ""
        status_ph.markdown(f":green-badge[:material/check: Saved{stamp}]")
    else:
        status_ph.markdown(":red-badge[:material/edit: Unsaved]")
    if owned:
        actions.button("Delete", icon=":material/delete:", on_click=ask_delete, args=(cid,), key="delete_character")
    if character.owner != s.actor.id:  # another user's (read-only, or an admin's to administer)
        actions.button("Duplicate to my characters", icon=":material/content_copy:", on_click=duplicate_character,
                       args=(cid,), key="duplicate_character")
    if not owned:
        st.caption("This is another user's public character: you can view it, only its owner can change it. "
                   "Duplicate it to make a copy of your own (its portraits stay its owner's).")
    if "_" in errs:
        st.error(errs["_"])
    rev = _rev(cid)
    values: dict[str, Any] = {**character.model_dump(), **pending}

    def key(field: str) -> str:
        return f"ed.{cid}.{rev}.{field}"

    # Saved (or pending) values go in as the widgets' defaults, never written into st.session_state: if the
    # browser drops its widget state (a page switch racing a rerun), it falls back to these, not to blanks.
    def index(options, value) -> int:
        return list(options).index(value) if value in options else 0

    def hook(field: str, convert=None) -> dict[str, Any]:
        return {"on_change": autosave.on_change, "args": (cid, field, key(field), convert), "disabled": not owned}

    if owned:
        assist.toolbar(s, cid, owned)

    # Basic info
    with st.expander("Basic info", expanded=True, icon=":material/badge:"):
        st.text_input("Name", value=values["name"], key=key("name"), max_chars=most("name"), **hook("name"))
        field_error(errs, "name")
        st.text_area("Description", value=values["description"], key=key("description"), height=120,
                     max_chars=most("description"), help="Needed to generate portraits: it goes into the prompt.",
                     **hook("description"))
        field_error(errs, "description")
        if owned:
            assist.field_tools(s, cid, "description", owned, _bump)
        c1, c2 = st.columns(2)
        c1.selectbox("Gender", GENDERS, index=index(GENDERS, values["gender"]), key=key("gender"), **hook("gender"))
        c2.radio("Content rating", CONTENT_RATINGS, format_func=str.upper, horizontal=True,
                 index=index(CONTENT_RATINGS, values["content_rating"]), key=key("content_rating"),
                 **hook("content_rating"))

    # Appearance
    with st.expander("Appearance", expanded=True, icon=":material/face:"):
        chips = s.presets.options("appearance_chips")
        tags = list(values["appearance_tags"] or [])
        active_chips = [c["key"] for c in chips if all(t in tags for t in c["tags"])]
        chip_key = key("chips")

        def chips_changed() -> None:
            chosen = set(st.session_state.get(chip_key) or [])
            new_tags = list(tags)
            for c in chips:
                if c["key"] in chosen:
                    new_tags += [t for t in c["tags"] if t not in new_tags]
                else:
                    new_tags = [t for t in new_tags if t not in c["tags"]]
            autosave.record(cid, "appearance_tags", new_tags)
            _bump(cid)

        st.pills("Style presets", [c["key"] for c in chips], selection_mode="multi", key=chip_key, default=active_chips,
                 format_func=lambda k: next(c["label"] for c in chips if c["key"] == k),
                 on_change=chips_changed, disabled=not owned, help="Each preset adds its appearance tags.")
        st.multiselect("Appearance tags", tags, default=tags, key=key("appearance_tags"), accept_new_options=True,
                       max_selections=TAG_MAX_COUNT, placeholder="Type a tag and press Enter", **hook("appearance_tags"))
        field_error(errs, "appearance_tags")
        clothing = list(values["clothing_tags"] or [])
        st.multiselect("Clothing tags", clothing, default=clothing, key=key("clothing_tags"), accept_new_options=True,
                       max_selections=TAG_MAX_COUNT, placeholder="Type a tag and press Enter", **hook("clothing_tags"))
        field_error(errs, "clothing_tags")
        if owned:
            assist.field_tools(s, cid, "appearance", owned, _bump)
        if character.reference_image_key:
            st.caption("Reference image:")
            image(s, character.reference_image_key, width=96)
        st.caption("Reference image and portraits: see the **Portraits** page.")

    # Personality & voice
    with st.expander("Personality & voice", icon=":material/psychology:"):
        st.text_area("Persona", value=values["persona"] or "", key=key("persona"), height=120,
                     max_chars=most("persona"), **hook("persona"))
        field_error(errs, "persona")
        if owned:
            assist.field_tools(s, cid, "persona", owned, _bump)
        st.text_area("Personality traits", value=values["traits"] or "", key=key("traits"), max_chars=most("traits"),
                     **hook("traits"))
        field_error(errs, "traits")
        if owned:
            assist.field_tools(s, cid, "traits", owned, _bump)
        c1, c2 = st.columns(2)
        c1.selectbox("Voice tone", VOICE_TONES, index=index(VOICE_TONES, values["voice_tone"]), key=key("voice_tone"),
                     **hook("voice_tone"))
        c2.selectbox("Mood", MOODS, index=index(MOODS, values["mood"]), key=key("mood"), **hook("mood"))
        st.text_area("Voice examples (one per line)", value="\n".join(values["voice_examples"] or []),
                     key=key("voice_examples"),
                     **hook("voice_examples", _lines))
        field_error(errs, "voice_examples")
        st.text_area("Forbidden phrases (one per line)",
                     value="\n".join(values["forbidden_phrases"] or []), key=key("forbidden_phrases"),
                     **hook("forbidden_phrases", _lines))
        field_error(errs, "forbidden_phrases")

    # Greetings
    with st.expander("Greetings", icon=":material/waving_hand:"):
        st.text_area("First message", value=values["first_message"] or "", key=key("first_message"),
                     max_chars=most("first_message"), **hook("first_message"))
        field_error(errs, "first_message")
        if owned:
            assist.field_tools(s, cid, "first_message", owned, _bump)
        greetings = list(values["alternate_greetings"] or [])
        extra = st.session_state.get(f"_extra_greeting.{cid}", 0)
        shown = greetings + [""] * extra

        def greeting_changed() -> None:
            items = [st.session_state.get(key(f"greet.{i}"), "") for i in range(len(shown))]
            kept = [g for g in items if g.strip()]
            autosave.record(cid, "alternate_greetings", kept)
            st.session_state[f"_extra_greeting.{cid}"] = 0
            if len(kept) != len(items):  # a greeting was emptied: renumber the fields (new keys)
                _bump(cid)  # otherwise the keys stay, so a field committed while typing keeps the focus

        def remove_greeting(i: int) -> None:
            autosave.record(cid, "alternate_greetings", [g for j, g in enumerate(greetings) if j != i])
            _bump(cid)

        def add_greeting() -> None:
            st.session_state[f"_extra_greeting.{cid}"] = extra + 1

        for i, g in enumerate(shown):
            c1, c2 = st.columns([12, 1], vertical_alignment="bottom")
            c1.text_area(f"Alternate greeting {i + 1}", value=g, key=key(f"greet.{i}"), height=80,
                         max_chars=most("alternate_greetings"), on_change=greeting_changed, disabled=not owned)
            if i < len(greetings):
                c2.button("Remove", type="tertiary", key=key(f"rmgreet.{i}"), on_click=remove_greeting, args=(i,),
                          help="Remove this greeting", disabled=not owned)
        field_error(errs, "alternate_greetings")
        st.button("Add greeting", icon=":material/add:", on_click=add_greeting, disabled=not owned or len(shown) >= 10,
                  key=key("addgreet"))

    # Advanced
    with st.expander("Advanced", icon=":material/settings:"):
        st.text_area("System prompt", value=values["system_prompt"] or "", key=key("system_prompt"), height=150,
                     max_chars=most("system_prompt"), **hook("system_prompt"))
        field_error(errs, "system_prompt")
        st.toggle("Public (other users can see and use this character)", value=bool(values["is_public"]),
                  key=key("is_public"),
                  **hook("is_public"))
        st.caption("Default presets (preselected on the Portraits page)")
        presets = values["default_presets"]
        presets = presets.model_dump() if hasattr(presets, "model_dump") else dict(presets or {})
        cols = st.columns(4)

        def presets_changed() -> None:
            autosave.record(cid, "default_presets",
                            {k: st.session_state.get(key(f"preset.{k}")) for k in PRESET_KINDS})

        for col, kind in zip(cols, PRESET_KINDS):
            options = [None] + [p["key"] for p in s.presets.options(kind)]
            labels = {p["key"]: p["label"] for p in s.presets.options(kind)}
            col.selectbox(kind.capitalize(), options, index=index(options, presets.get(kind)), key=key(f"preset.{kind}"),
                          format_func=lambda k, labels=labels: "None" if k is None else labels.get(k, k),
                          on_change=presets_changed, disabled=not owned)
        field_error(errs, "default_presets")

    if st.session_state.get("confirm_delete_character") == cid:
        portraits = s.portraits.list(cid, limit=1).total
        delete_dialog(character, portraits, len(s.scenes.list(cid)))


# -- page ------------------------------------------------------------------------------
st.title("Characters")
# On a phone the columns stack; the editor comes first there (ui.layout), so a long list does not hide it.
with st.container(key=layout.CHARACTERS_LAYOUT):
    left, right = st.columns([1, 2.2], gap="large")
with right:  # filled first: the editor saves pending changes, so the list beside it shows them
    with app.guarded("the character editor"):
        selected = app.selected_character_id()
        has_any = s.characters.revision()[0] > 0  # one small aggregate (a list would count and fetch)
        if st.session_state.get(MODE) == "new" or not selected:
            if not has_any:
                st.info("No characters yet. Fill in a name and a description to create your first one, "
                        "or **Start from template**.", icon=":material/person_add:")
            elif not selected and st.session_state.get(MODE) != "new":
                st.caption("Open a character on the left to edit it, or create a new one.")
            create_form(can_cancel=bool(selected))
        else:
            try:
                current = s.characters.get(selected)
            except StudioError:
                st.warning("That character no longer exists. Open another one on the left.")
            else:
                with st.container(key=f"{autosave.SCOPE}editor"):
                    editor(current)
with left:
    with app.guarded("the character list"):
        character_list()
if st.session_state.get("show_templates"):
    template_dialog()
autosave.live_typing()
