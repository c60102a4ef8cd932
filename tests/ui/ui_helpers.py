"""Helpers shared by the AppTest modules (a uniquely named module: several test folders have a conftest)."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest


def page(at: AppTest, name: str) -> AppTest:
    """Run the app once (registers the st.navigation pages), switch to pages/<name>.py and run that page."""
    at.run()
    at.switch_page(f"pages/{name}.py")
    return at.run()


def texts(at: AppTest) -> str:
    """All markdown, captions, alerts and headings of the last run, joined (for `in` checks)."""
    parts = []
    for group in (at.markdown, at.caption, at.info, at.warning, at.error, at.success, at.title, at.subheader,
                  at.header):
        parts += [str(e.value) for e in group]
    return "\n".join(parts)
