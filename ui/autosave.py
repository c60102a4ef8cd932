"""Autosave for the character editor.

A widget's on_change callback records the new value as a pending change (in session state, so it
survives a page switch); `flush` saves pending changes with one partial update per character and
keeps the ones that fail validation, with their messages, for the editor to show next to the field.

Streamlit sends a text field's value only when it loses focus or on Ctrl+Enter (Enter in one line).
`live_typing` adds a small script to the page so that what is typed reaches the server while the user
stays in the field: 2 s after the last keystroke it commits the field. Until a run shows that the server
holds the field's text (each run echoes fingerprints of the text values it holds), the page shows
"Unsaved" instead of the server's "Saved" and warns before unload. The script acts only inside
containers whose key starts with SCOPE.
"""
from __future__ import annotations

import time
from functools import lru_cache
from collections.abc import Callable
from typing import Any

import streamlit as st

from core import Studio
from core.errors import InvalidInput, StudioError

PENDING = "_autosave_pending"
ERRORS = "_autosave_errors"
STATUS = "_autosave_status"
EDITED = "_autosave_edited"  # set by a widget callback, taken by the run it came with (ui.app.dropped_page_switch)
SCOPE = "autosave-"  # key prefix of the containers whose text fields are committed while typing
STATUS_KEY = "autosave-status"  # the container of the status badge (replaced by "Unsaved" while typing)
DEBOUNCE_MS = 2000
ECHO_MAX = 50_000  # characters: longer text values are not fingerprinted (no field takes that many)


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


# -- typing: commit text fields while the user stays in them ---------------------------------------
_LIVE_TYPING = """<script>
(() => {
  const w = window, doc = document;
  if (w.__csAutosave) return;  // one set of listeners per page, however often this element is drawn
  const dirty = new Map();  // field -> value typed, not yet confirmed by a finished run
  const timers = new Map();
  const mark = () => doc.body.toggleAttribute('data-cs-unsaved', dirty.size > 0);
  const inScope = el => el.matches && el.matches('textarea, input[type="text"], input:not([type])')
    && el.closest('[class*="st-key-SCOPE"]');
  const commit = el => {
    timers.delete(el);
    if (!el.isConnected || doc.activeElement !== el) return;  // left the field: Streamlit sent it on blur
    const enter = {key: 'Enter', code: 'Enter', keyCode: 13, which: 13, bubbles: true, cancelable: true,
                   ctrlKey: el.tagName === 'TEXTAREA'};
    el.dispatchEvent(new KeyboardEvent('keydown', enter));
    el.dataset.csCommitted = el.value;
  };
  doc.addEventListener('input', ev => {
    const el = ev.target;
    if (!inScope(el)) return;
    dirty.set(el, el.value);
    delete el.dataset.csCommitted;
    mark();
    clearTimeout(timers.get(el));
    timers.set(el, setTimeout(() => commit(el), DEBOUNCE));
  }, true);
  // A click on a link (another page) while a field holds uncommitted text: commit it first, so the edit's
  // rerun reaches the server before the page switch. Committed on blur instead, it follows the switch, and
  // Streamlit may merge the two requests into one for the page being left (the switch is then lost).
  doc.addEventListener('pointerdown', ev => {
    const el = doc.activeElement;
    if (!el || !dirty.has(el) || el.dataset.csCommitted === el.value) return;
    if (!(ev.target.closest && ev.target.closest('a[href]'))) return;
    clearTimeout(timers.get(el));
    commit(el);
  }, true);
  doc.addEventListener('focusout', ev => {  // Streamlit commits a field it leaves: no commit of ours after it
    const el = ev.target;
    if (!dirty.has(el)) return;
    clearTimeout(timers.get(el));
    timers.delete(el);
    el.dataset.csCommitted = el.value;
  }, true);
  // A field's value is on the server once a run shows it there: every run echoes the fingerprints of the
  // text values the server holds. Nothing here depends on seeing the script's running state, which a busy
  // browser may never render for a short run (then a field stayed "Unsaved" with its text on the server).
  const fingerprint = s => {  // FNV-1a over UTF-16 code units, as ui/autosave.py's fingerprint
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
    return h >>> 0;
  };
  const confirm = () => {
    const echo = dirty.size && doc.querySelector('[data-cs-has]');
    if (!echo) return;
    const has = new Set(echo.getAttribute('data-cs-has').split(',').filter(Boolean).map(Number));
    for (const [el, value] of dirty) {
      if (!el.isConnected || el.dataset.csCommitted === value && el.value === value && has.has(fingerprint(value)))
        dirty.delete(el);
    }
    mark();
  };
  new MutationObserver(confirm).observe(doc.body, {attributes: true, subtree: true, childList: true,
                                                    attributeFilter: ['data-cs-has']});
  w.addEventListener('beforeunload', ev => {
    if (dirty.size === 0) return;
    ev.preventDefault();
    ev.returnValue = 'Changes you typed have not been saved yet.';
  });
  w.__csAutosave = true;
})();
</script>
<style>
.st-key-autosave-script { display: none; }
body[data-cs-unsaved] .st-key-STATUS [data-testid="stMarkdownContainer"] { display: none; }
body[data-cs-unsaved] .st-key-STATUS::after { content: "Unsaved: saving while you type..."; color: #b45309;
  font-size: 0.875rem; }
</style>"""


def live_typing() -> None:
    """Add the typing script (see the module docstring), and the fingerprints of the text values the server
    holds, by which it confirms a field. Call once per run, last, on pages with SCOPE containers."""
    held = ",".join(str(h) for h in sorted({fingerprint(v) for v in st.session_state.values()
                                            if isinstance(v, str) and len(v) <= ECHO_MAX}))
    with st.container(key="autosave-script"):
        st.html(_LIVE_TYPING.replace("SCOPE", SCOPE).replace("STATUS", STATUS_KEY)
                .replace("DEBOUNCE", str(DEBOUNCE_MS)), unsafe_allow_javascript=True)
        st.html(f'<div data-cs-has="{held}"></div>')


@lru_cache(maxsize=256)  # every run fingerprints the same field values again
def fingerprint(text: str) -> int:
    """32-bit FNV-1a over the UTF-16 code units of `text` (what the page's script computes from a field)."""
    h = 0x811C9DC5
    data = text.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(data), 2):
        h = ((h ^ (data[i] | data[i + 1] << 8)) * 0x01000193) & 0xFFFFFFFF
    return h
