"""Shared helpers for the Streamlit pages (studio_app.py and pages/). Never imported by core."""
