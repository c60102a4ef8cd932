"""Helpers shared by the AppTest modules (a uniquely named module: several test folders have a conftest)."""
from __future__ import annotations

import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "studio_app.py"


def run_entrypoint(main_script_path: str) -> None:
    """What `streamlit run` does once st.navigation has been called: run the entrypoint, which runs the page.

    AppTest resets PagesManager.uses_pages_directory before every run, so with a pages/ folder present it
    would run a switched-to page alone (the legacy pages/ mode). Installed as script_runner._mpa_v1.
    """
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False
    code = compile(Path(main_script_path).read_text(), main_script_path, "exec")
    exec(code, sys.modules["__main__"].__dict__)  # noqa: S102 - the app's own entrypoint


def app_test(query: dict[str, str] | None = None, timeout: float = 30) -> AppTest:
    """An AppTest of the whole app (not run yet), with URL query parameters."""
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at


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
