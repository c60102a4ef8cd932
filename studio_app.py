"""Streamlit entry point: `streamlit run studio_app.py`.

Gets the process-wide Studio, lets in only a signed-in user (ui/auth.py), shows admin pages to admins only,
keeps the selected character in the URL, shows the preview-mode banner and runs the chosen page. Pages live
in pages/ and stay thin.
"""
import streamlit as st

from ui import app, auth, autosave, layout

CHARACTERS = st.Page("pages/characters.py", title="Characters", icon=":material/group:", default=True)
PAGES = [
    CHARACTERS,
    st.Page("pages/portraits.py", title="Portraits", icon=":material/photo_library:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/grid_view:"),
    st.Page("pages/scenes.py", title="Scenes", icon=":material/landscape:"),
    st.Page("pages/queue.py", title="Queue", icon=":material/pending_actions:"),
    st.Page("pages/models.py", title="Models", icon=":material/tune:"),
    st.Page("pages/users.py", title="Users", icon=":material/manage_accounts:"),
]
switched_to = app.dropped_page_switch(PAGES, editor=CHARACTERS)  # before any st call (see there)
st.set_page_config(page_title="Character Studio", page_icon="🎨", layout="wide")

with app.guarded("the studio"):
    settings = app.get_studio().ctx.settings
    user = auth.gate(settings, PAGES)  # a visitor not let in gets the page that says why; nothing else runs
    studio = app.studio()
    page = st.navigation(auth.pages_for(PAGES, studio.actor.is_admin))  # admin pages: hidden and closed to others
    layout.narrow_screen_rules()
    if switched_to is not None:
        st.switch_page(switched_to)  # the edit is kept: pending changes are saved on that page
    app.sync_selection_with_url(studio)
    with st.sidebar:
        st.caption(f"Signed in as **{user.display_name}**")
        auth.sign_out_button(settings)
    app.character_picker(studio)
    if page.title != "Characters":
        # Edits made on the Characters page just before switching pages are saved here.
        autosave.flush(studio)
    app.provider_banner(studio)
    app.show_flash()
    page.run()
