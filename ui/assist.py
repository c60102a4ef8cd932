"""AI assist widgets for the Characters editor and the Portraits page.

A suggestion streams into a preview under its field; Accept records it as a pending change (the editor's
autosave then stores it), Edit lets the user change the preview first, Discard drops it. Nothing reaches
a field without a click, and a failure leaves every field as it was.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core import Studio
from core.assist.service import word_diff
from core.errors import InvalidInput, StudioError
from ui import app, autosave
from ui.widgets import literal

PREVIEWS = "_assist_previews"  # {character id: {field: Suggestion as a dict}}
ERRORS = "_assist_errors"  # {character id: message}
MODEL = "assist_model"
LABELS = {"description": "description", "appearance": "appearance", "persona": "persona", "traits": "traits",
          "first_message": "first message"}


def _previews(cid: str) -> dict[str, dict[str, Any]]:
    return st.session_state.setdefault(PREVIEWS, {}).setdefault(cid, {})


def _model_label(s: Studio, model) -> str:
    return model.display_name + ("  ·  offline" if s.assist.is_offline(model) else "")


def model_picker(s: Studio) -> str | None:
    """The text model for suggestions (the highest-priority one first); None when there is none."""
    models = s.assist.text_models()
    if not models:
        st.caption("No text model is active: activate one on the Models page.")
        return None
    ids = [m.id for m in models]
    by_id = {m.id: m for m in models}
    if st.session_state.get(MODEL) not in ids:
        st.session_state.pop(MODEL, None)
    return st.selectbox("Text model for suggestions", ids, key=MODEL, format_func=lambda i: _model_label(s, by_id[i]))


def _draft(cid: str) -> dict[str, Any]:
    """The editor's unsaved values that pass validation (context for a suggestion)."""
    bad = autosave.errors(cid)
    return {k: v for k, v in autosave.pending(cid).items() if k not in bad}


def toolbar(s: Studio, cid: str, owned: bool) -> None:
    """The text model and "Enhance all": a suggestion for each empty field, previewed under it. Folded
    (one line), so the editor's fields stay on a phone's first screen; open while it shows an error."""
    failed = bool(st.session_state.get(ERRORS, {}).get(cid))
    with st.expander("AI assist: text model and Enhance all", icon=":material/auto_awesome:", expanded=failed):
        c1, c2 = st.columns([3, 1.3], vertical_alignment="bottom")
        with c1:
            model = model_picker(s)
        empty = s.assist.empty_fields(cid, _draft(cid)) if model else []
        clicked = c2.button("Enhance all", key=f"as.{cid}.all", icon=":material/auto_awesome:", width="stretch",
                            disabled=not owned or not model or not empty,
                            help="Suggest each empty field; you accept or discard each suggestion.")
        if clicked:
            st.session_state.setdefault(ERRORS, {}).pop(cid, None)
            with st.spinner(f"Writing {', '.join(LABELS[f] for f in empty)}..."):
                try:
                    found = s.assist.enhance_all(cid, draft=_draft(cid), model=model)
                except StudioError as exc:
                    st.session_state.setdefault(ERRORS, {})[cid] = app.error_text(exc)
                    found = []
            for suggestion in found:
                _previews(cid)[suggestion.field] = suggestion.model_dump()
        if message := st.session_state.get(ERRORS, {}).get(cid):
            st.error(message, icon=":material/error:")
    if waiting := _previews(cid):  # some sit in folded sections: say where they are
        st.info(f"Suggestions to review: {', '.join(LABELS[f] for f in waiting)}. Each waits under its field "
                "(open its section) for Accept or Discard.", icon=":material/lightbulb:")


def field_tools(s: Studio, cid: str, field: str, owned: bool, bump: Callable[[str], None]) -> None:
    """A Suggest button for one field, and its preview (streamed into place) with Accept / Discard."""
    clicked = st.button(f"Suggest {LABELS[field]}", key=f"as.{cid}.suggest.{field}", icon=":material/lightbulb:",
                        type="tertiary", disabled=not owned)
    if clicked:
        _stream(s, cid, field)
    preview = _previews(cid).get(field)
    if preview is None:
        return
    with st.container(border=True):
        source = "the offline suggester" if preview["offline"] else preview["model_name"]
        st.caption(f"Suggestion from {literal(source)} (not saved yet)")
        edit_key = f"as.{cid}.edit.{field}"
        if field == "appearance":
            st.markdown("**Physical:** " + literal(", ".join(preview["values"]["appearance_tags"]) or "-"))
            st.markdown("**Clothing:** " + literal(", ".join(preview["values"]["clothing_tags"]) or "-"))
        else:
            st.text_area("Edit the suggestion before accepting it", value=preview["values"][field], key=edit_key,
                         height=100)
        c1, c2, _ = st.columns([1, 1, 3])
        c1.button("Accept", key=f"as.{cid}.accept.{field}", type="primary", on_click=_accept,
                  args=(cid, field, edit_key, bump), icon=":material/check:")
        c2.button("Discard", key=f"as.{cid}.discard.{field}", on_click=_discard, args=(cid, field),
                  icon=":material/close:")


def _stream(s: Studio, cid: str, field: str) -> None:
    st.session_state.setdefault(ERRORS, {}).pop(cid, None)
    placeholder = st.empty()
    text = ""
    try:
        stream = s.assist.stream(cid, field, draft=_draft(cid), model=st.session_state.get(MODEL))
        for piece in stream:
            text += piece
            placeholder.info(literal(text), icon=":material/edit_note:")
        suggestion = stream.suggestion
    except StudioError as exc:
        placeholder.empty()
        st.session_state[ERRORS][cid] = app.error_text(exc)
        st.error(app.error_text(exc), icon=":material/error:")
        return
    placeholder.empty()
    _previews(cid)[field] = suggestion.model_dump()


def _accept(cid: str, field: str, edit_key: str, bump: Callable[[str], None]) -> None:
    preview = _previews(cid).pop(field, None)
    if preview is None:
        return
    values = dict(preview["values"])
    if field != "appearance" and edit_key in st.session_state:
        values[field] = st.session_state[edit_key]
    for name, value in values.items():
        autosave.record(cid, name, value)
    bump(cid)


def _discard(cid: str, field: str) -> None:
    _previews(cid).pop(field, None)


# -- Portraits page: prompt enhancement ---------------------------------------------------------
ENHANCED = "_assist_enhanced"  # {character id: EnhancedPrompt as a dict}


def prompt_enhancer(s: Studio, cid: str, prompt_key: str, image_model: str | None, slot: str | None = None,
                    use_label: str = "Generate") -> None:
    """"Enhance prompt": the typed prompt rewritten by a text model from the template the character's
    rating chooses; shown as a word diff, used for the next generation only when accepted. `slot` names
    one of several prompts of a character (the Compare grid's variants; default: the character's one)."""
    slot = slot or cid
    templates = s.assist.templates.list(target="portrait", content_rating=s.characters.get(cid).content_rating)
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    chosen = c1.selectbox("Enhancement template", [t.id for t in templates], key=f"as.{slot}.template",
                          format_func=lambda i: next(t.name for t in templates if t.id == i)) if templates else None
    if c2.button("Enhance prompt", key=f"as.{slot}.enhance", icon=":material/auto_fix_high:", width="stretch"):
        try:
            enhanced = s.assist.enhance_prompt(cid, st.session_state.get(prompt_key) or "", image_model=image_model,
                                               model=st.session_state.get(MODEL), template=chosen)
        except (StudioError, InvalidInput) as exc:
            st.error(app.error_text(exc), icon=":material/error:")
        else:
            st.session_state.setdefault(ENHANCED, {})[slot] = enhanced.model_dump()
    found = st.session_state.get(ENHANCED, {}).get(slot)
    if not found:
        return
    if _stale(found, st.session_state.get(prompt_key) or ""):
        st.session_state[ENHANCED].pop(slot, None)
        st.info("The prompt changed after it was enhanced, so the enhanced prompt was dropped: press "
                "**Enhance prompt** again to enhance the new one.", icon=":material/info:")
        return
    with st.container(border=True):
        source = "the offline suggester" if found["offline"] else found["model_name"]
        st.caption(f"Enhanced with {literal(source)}, template {literal(found['template_id'])}, "
                   f"{len(found['enhanced'])}/{found['budget']} characters")
        st.markdown(diff_markdown(found["original"], found["enhanced"]))
        st.caption(f"{use_label} uses the enhanced prompt (with the chosen presets) until you discard it or "
                   "change the prompt.")
        st.button("Discard enhanced prompt", key=f"as.{slot}.enhance_discard",
                  on_click=lambda: st.session_state.get(ENHANCED, {}).pop(slot, None))


def diff_markdown(before: str, after: str) -> str:
    colours = {"added": ":green[{}]", "removed": ":red[~~{}~~]", "same": "{}"}
    return " ".join(colours[op].format(literal(words)) for op, words in word_diff(before, after))


def _stale(found: dict[str, Any], prompt: str) -> bool:
    """Whether the prompt was edited after it was enhanced (the enhancement belongs to the old words)."""
    return " ".join(found["original"].split()) != " ".join(prompt.split())


def enhancement_for(slot: str, prompt: str) -> dict[str, Any] | None:
    """The enhanced prompt the next generation uses (GenerationOptions.enhancement), if one is shown and was
    made from `prompt` (`slot`: the character's id, or the slot given to `prompt_enhancer`)."""
    found = st.session_state.get(ENHANCED, {}).get(slot)
    if not found or _stale(found, prompt):
        return None
    return {"prompt": found["enhanced"], "template": found["template_id"], "text_model": found["model_id"],
            "original_prompt": found["original"]}


# -- Models page: prompt templates (admins) -------------------------------------------------------
def _save_template(template_id: str | None) -> None:
    prefix = f"tpl.{template_id or 'new'}"
    get = st.session_state.get
    data = {"name": get(f"{prefix}.name", ""), "target": get(f"{prefix}.target"),
            "content_rating": get(f"{prefix}.rating"), "instruction": get(f"{prefix}.instruction", ""),
            "style": get(f"{prefix}.style", "")}
    studio = app.studio()
    if template_id is None:
        app.attempt_later(studio.assist.templates.add, {**data, "id": get(f"{prefix}.id", "")}, success="Template added.")
    else:
        app.attempt_later(studio.assist.templates.update, template_id, data, success="Template saved.")


def templates_admin(s: Studio) -> None:
    """The prompt-enhancement templates: each target and rating; admins edit them and add new ones."""
    from core.assist.models import TARGETS
    from core.models import CONTENT_RATINGS

    st.subheader("Prompt templates")
    st.caption("Prompt enhancement on the Portraits page picks a template by the character's content rating.")
    admin = s.actor.is_admin
    for t in [*s.assist.templates.list(), None]:
        if t is None and not admin:
            break
        label = "Add a template" if t is None else f"{t.name} · {t.target} · {t.content_rating.upper()}"
        with st.expander(label, icon=":material/add:" if t is None else ":material/description:"):
            prefix = f"tpl.{t.id if t else 'new'}"
            with st.form(f"{prefix}.form", border=False):
                if t is None:
                    st.text_input("Id", key=f"{prefix}.id", placeholder="e.g. portrait-watercolour")
                st.text_input("Name", value=t.name if t else "", key=f"{prefix}.name", disabled=not admin)
                c1, c2 = st.columns(2)
                c1.selectbox("Target", TARGETS, index=TARGETS.index(t.target) if t else 0, key=f"{prefix}.target",
                             disabled=not admin)
                c2.selectbox("Content rating", CONTENT_RATINGS, index=CONTENT_RATINGS.index(t.content_rating) if t else 0,
                             key=f"{prefix}.rating", format_func=str.upper, disabled=not admin)
                st.text_area("Instruction for the text model", value=t.instruction if t else "",
                             key=f"{prefix}.instruction", disabled=not admin)
                st.text_input("Style wording", value=t.style if t else "", key=f"{prefix}.style", disabled=not admin)
                st.form_submit_button("Save template" if t else "Add template", on_click=_save_template,
                                      args=(t.id if t else None,), disabled=not admin)
