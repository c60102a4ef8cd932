"""Autosave for the character editor.

A widget's on_change callback records the new value as a pending change (in session state, so it
survives a page switch); `flush` saves pending changes with one partial update per character and
keeps the ones that fail validation, with their messages, for the editor to show next to the field.
Streamlit commits a text field when it loses focus or on Ctrl+Enter, which is the debounce.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from core import Studio
from core.errors import InvalidInput, StudioError

PENDING = "_autosave_pending"
ERRORS = "_autosave_errors"
STATUS = "_autosave_status"
EDITED = "_autosave_edited"  # set by a widget callback, taken by the run it came with (ui.app.dropped_page_switch)


def _state(name: str) -> dict[str, Any]:
    return st.session_state.setdefault(name, {})


def record(character_id: str, field: str, value: Any) -> None:
    """Take a new value as a pending change. Call from widget callbacks only (they run before the script)."""
    _state(PENDING).setdefault(character_id, {})[field] = value
    _state(STATUS)[character_id] = ("unsaved", time.time())
    st.session_state[EDITED] = True


def take_edit_mark() -> bool:
    """Whether a widget callback of this run recorded an edit (the mark is cleared)."""
    return bool(st.session_state.pop(EDITED, False))


def on_change(character_id: str, field: str, key: str, convert: Callable[[Any], Any] | None = None) -> None:
    """Widget callback: take the widget's value as a pending change of `field`."""
    value = st.session_state.get(key)
    record(character_id, field, convert(value) if convert else value)


def pending(character_id: str) -> dict[str, Any]:
    return dict(_state(PENDING).get(character_id, {}))


def errors(character_id: str) -> dict[str, str]:
    return dict(_state(ERRORS).get(character_id, {}))


def status(character_id: str) -> tuple[str, float | None]:
    """("saved" | "unsaved", when) for the status badge."""
    state, when = _state(STATUS).get(character_id, ("saved", None))
    if "_" in errors(character_id):
        return "unsaved", when
    if state == "unsaved" and not pending(character_id):
        return "saved", when
    return state, when


def forget(character_id: str) -> None:
    for name in (PENDING, ERRORS, STATUS):
        _state(name).pop(character_id, None)


def _field_of(error_key: str) -> str:
    return error_key.split(".", 1)[0]


def flush(studio: Studio, placeholder: Any = None) -> None:
    """Save every pending change now. Invalid fields stay pending with their error; the rest is saved."""
    all_pending = _state(PENDING)
    for cid in list(all_pending):
        changes = dict(all_pending.get(cid) or {})
        if not changes:
            all_pending.pop(cid, None)
            continue
        if placeholder is not None:
            placeholder.markdown(":orange-badge[:material/sync: Saving...]")
        field_errors: dict[str, str] = {}
        to_save = dict(changes)
        while to_save:
            try:
                studio.characters.update(cid, to_save)
                break
            except InvalidInput as exc:
                bad = {_field_of(k): v for k, v in exc.errors.items()}
                if not set(bad) & set(to_save):
                    field_errors.update(bad)
                    to_save = {}
                    break
                field_errors.update({k: v for k, v in bad.items() if k in to_save})
                to_save = {k: v for k, v in to_save.items() if k not in bad}
            except StudioError as exc:
                # Not found or not allowed: nothing more can be saved for this character.
                field_errors["_"] = exc.message
                changes = {}
                to_save = {}
                break
        still = {k: v for k, v in changes.items() if k in field_errors}
        if still:
            all_pending[cid] = still
            _state(STATUS)[cid] = ("unsaved", time.time())
        else:
            all_pending.pop(cid, None)
            _state(STATUS)[cid] = ("saved", time.time())
        _state(ERRORS)[cid] = field_errors
