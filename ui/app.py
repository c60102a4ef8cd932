"""The app frame's shared state: the one Studio per process, the current user, the selected character,
flash messages and error rendering. Pages import these; they never open their own Studio."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import streamlit as st
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core import Studio
from core.auth import Identity
from core.config import Settings
from core.errors import InvalidInput, NotFound, StudioError
from ui import auth, autosave

log = logging.getLogger(__name__)
T = TypeVar("T")

KEY_ENVS = ("FAL_KEY", "REPLICATE_API_TOKEN", "OPENAI_API_KEY", "RUNPOD_API_KEY")
SELECTED = "selected_character_id"
REQUESTED_PAGE = "_requested_page"


def _streamlit_secrets() -> dict[str, Any]:
    """Provider keys may also come from .streamlit/secrets.toml; no file means no secrets."""
    try:
        return {k: v for k, v in st.secrets.to_dict().items() if isinstance(v, (str, int))}
    except Exception:  # noqa: BLE001 - a missing or unreadable secrets file is not an error here
        return {}


def _close(studio: Studio) -> None:
    try:
        studio.close()
    except Exception as exc:  # noqa: BLE001 - releasing must not fail the caller
        log.warning("closing the studio failed: %s", exc)


@st.cache_resource(show_spinner="Opening the studio...", on_release=_close)
def get_studio() -> Studio:
    """The process-wide Studio (opened once; its job runner runs in this process)."""
    return Studio.open(settings=Settings.from_env(secrets=_streamlit_secrets()))


CurrentUser = Identity


def current_user() -> CurrentUser:
    """Who is using the app, as the sign-in mode (`STUDIO_AUTH`) says (ui/auth.py); `SignInRefused` when
    nobody is signed in. Whether the user is an admin is the deployment's configuration
    (`Settings.is_admin`), not the UI's to say."""
    return auth.identify(get_studio().ctx.settings)


def studio() -> Studio:
    """The Studio acting for the current user (cheap: shares the process-wide engine)."""
    user = current_user()
    base = get_studio()
    if base.actor.id == user.id:
        return base
    return base.as_user(user.id, display_name=user.display_name, email=user.email)


def require_frame() -> None:
    """Pages run only inside studio_app.py's st.navigation. In a fresh server process whose first request
    is a deep link (say /portraits?character=...), Streamlit still uses its legacy pages/ mode (until
    st.navigation is first called) and would run the page file alone, without the frame: switch that
    mode off and rerun the same URL through the entrypoint."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def dropped_page_switch(pages: list[StreamlitPage], editor: StreamlitPage) -> StreamlitPage | None:
    """The page the user switched to, when this run is a late edit from `editor` that replaced that switch
    (else None). Call first thing in the entrypoint, before any st call: a newer request interrupts a run at
    its first st call, and every run that starts must be noted.

    A text field commits its value only after it has lost focus and the page has redrawn (a frame later). A
    click on a page link made in one quick press (a tap, or automation) sends the page switch first; the
    edit's rerun follows, naming the page being left, and Streamlit runs that page instead: the switch is
    lost. Such a run is for the editor's page and carries an edit made there, although the run before it was
    for another page: the page the user asked for last. (When the edit instead arrives with the switch, the
    run is for the other page and nothing is to be done.)
    """
    ctx = get_script_run_ctx()
    requested = ctx.page_script_hash if ctx is not None else None
    before = st.session_state.get(REQUESTED_PAGE)
    st.session_state[REQUESTED_PAGE] = requested
    edited = autosave.take_edit_mark()
    # StreamlitPage keeps its script hash private; it is what runs and st.switch_page go by.
    if edited and requested == editor._script_hash and before != requested:
        return next((p for p in pages if p._script_hash == before), None)
    return None


# -- the selected character (shared by all pages, mirrored in ?character=<id>) -----------
def selected_character_id() -> str | None:
    return st.session_state.get(SELECTED)


def select_character(character_id: str | None) -> None:
    """Select a character (call from callbacks or before the sidebar picker renders)."""
    st.session_state[SELECTED] = character_id
    # Write the URL only when it changes: a needless write during a run can race a page switch.
    if character_id:
        if st.query_params.get("character") != character_id:
            st.query_params["character"] = character_id
    elif "character" in st.query_params:
        del st.query_params["character"]


def sync_selection_with_url(s: Studio) -> None:
    """A link with ?character=<id> opens that character; the URL always shows the selection."""
    from_url = st.query_params.get("character")
    current = st.session_state.get(SELECTED)
    if from_url and from_url != current:
        current = from_url
    if current:
        try:
            s.characters.get(current)
        except NotFound:
            if from_url == current:
                flash("The character in the link was not found; it may have been deleted.", "warning")
            current = None
    select_character(current)


PICKER_LIMIT = 500


@st.cache_data(max_entries=256, show_spinner=False)
def _picker_names(user_id: str, revision: tuple[int, str], _s: Studio) -> dict[str, str]:
    """The picker's options (id -> shown name) for a user at a revision of the characters: rebuilt only after
    a character was created, edited or deleted (by anyone: the revision is read from the database)."""
    page = _s.characters.list(limit=PICKER_LIMIT)
    return {c.id: c.name + ("" if c.owner == user_id else " (public)") for c in page.items}


def character_picker(s: Studio) -> str | None:
    """The sidebar's character selector (same selection on every page)."""
    names = dict(_picker_names(s.actor.id, s.characters.revision(), s))
    options = list(names)
    current = selected_character_id()
    if current and current not in names:
        try:
            names[current] = s.characters.get(current).name
            options.insert(0, current)
        except StudioError:
            current = None
    if not options:
        st.sidebar.caption("No characters yet.")
        return None
    wanted = current if current in options else None
    if st.session_state.get("character_picker") != wanted:  # write widget state only when it must change
        st.session_state["character_picker"] = wanted

    def changed() -> None:
        select_character(st.session_state.get("character_picker"))

    st.sidebar.selectbox("Character", options, format_func=lambda i: names.get(i, i), key="character_picker",
                         placeholder="Choose a character", on_change=changed)
    return selected_character_id()


# -- messages ---------------------------------------------------------------------------
def flash(message: str, kind: str = "success") -> None:
    """A message shown once at the top of the next run (survives st.rerun())."""
    st.session_state.setdefault("_flash", []).append((kind, message))


def show_flash() -> None:
    for kind, message in st.session_state.pop("_flash", []):
        if kind == "success":
            st.toast(message, icon=":material/check_circle:")
        elif kind == "warning":
            st.warning(message, icon=":material/warning:")
        else:
            st.error(message, icon=":material/error:")


def error_text(exc: StudioError) -> str:
    if isinstance(exc, InvalidInput):
        return "; ".join(f"{field.replace('_', ' ').capitalize()}: {msg}" for field, msg in exc.errors.items())
    return exc.message


def attempt(fn: Callable[..., T], *args: Any, where: Any = None, **kwargs: Any) -> T | None:
    """Run a core call; a StudioError becomes an st.error (in `where` if given) and None."""
    try:
        return fn(*args, **kwargs)
    except StudioError as exc:
        (where or st).error(error_text(exc), icon=":material/error:")
        return None


def attempt_later(fn: Callable[..., T], *args: Any, success: str | None = None, **kwargs: Any) -> T | None:
    """For callbacks: run a core call; success or error is shown at the top of the coming run."""
    try:
        result = fn(*args, **kwargs)
    except StudioError as exc:
        flash(error_text(exc), "error")
        return None
    if success:
        flash(success)
    return result


@contextmanager
def guarded(what: str = "this page") -> Iterator[None]:
    """No traceback ever reaches the page: core errors as st.error, bugs as a short message (logged)."""
    try:
        yield
    except StudioError as exc:
        st.error(error_text(exc), icon=":material/error:")
    except Exception as exc:  # noqa: BLE001 - the page must keep working
        log.exception("error while rendering %s", what)
        st.error(f"Something went wrong while showing {what}: {type(exc).__name__}: {exc}. "
                 "The details are in the server log.", icon=":material/error:")


def provider_banner(s: Studio) -> None:
    """Tell the user when only the offline preview provider can generate, and how to add a key."""
    if not s.models.only_preview():
        return
    envs = list(KEY_ENVS)
    for p in s.models.providers():
        if not p.text:  # a text model's key (AI assist) makes no images
            envs += [e for e in p.key_env if e not in envs]
    names = ", ".join(f"`{e}`" for e in envs)
    st.info(
        "**Preview mode**: only the offline preview provider is configured, so portraits are locally drawn "
        f"placeholders. To generate real images, set a provider key ({names}) in the environment or in "
        "`.streamlit/secrets.toml` and restart the studio.", icon=":material/info:")


def require_character(s: Studio, action: str = "work on portraits"):
    """The selected character, or an empty state that says what to do next (returns None)."""
    cid = selected_character_id()
    if not cid:
        if s.characters.list(limit=1).total == 0:
            st.info(f"No characters yet. Create one on the **Characters** page to {action}.", icon=":material/person_add:")
        else:
            st.info(f"Choose a character in the sidebar to {action}.", icon=":material/arrow_back:")
        st.page_link("pages/characters.py", label="Go to Characters", icon=":material/group:")
        return None
    try:
        return s.characters.get(cid)
    except NotFound:
        select_character(None)
        st.warning("That character no longer exists. Choose another one in the sidebar.")
        return None


def save_with_errors(errors_key: str, save: Callable[[], object]) -> bool:
    """Run a form's save; core errors land in session_state[errors_key] by field ("_" for the whole form)."""
    try:
        save()
    except InvalidInput as exc:
        st.session_state[errors_key] = {k.split(".", 1)[0]: v for k, v in exc.errors.items()}
        return False
    except StudioError as exc:
        st.session_state[errors_key] = {"_": exc.message}
        return False
    return True
