"""Streamlit entry point: `streamlit run studio_app.py`."""
import streamlit as st

from core import Studio


@st.cache_resource
def get_studio() -> Studio:
    return Studio.open()


studio = get_studio()
st.title("Character Studio")
st.write(f"{studio.characters.list().total} characters")
