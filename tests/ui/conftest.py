"""AppTest fixtures: a temporary studio home and the one cached Studio shared with the app under test."""
from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st

from tests.ui.ui_helpers import app_test, run_entrypoint

ENV = ("STUDIO_DB", "STUDIO_STORAGE_URL", "STUDIO_LOCAL_USER", "FAL_KEY",
       "REPLICATE_API_TOKEN", "OPENAI_API_KEY", "RUNPOD_API_KEY")


@pytest.fixture(autouse=True)
def run_entrypoint_like_streamlit_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.runtime.scriptrunner import script_runner

    monkeypatch.setattr(script_runner, "_mpa_v1", run_entrypoint)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh STUDIO_HOME; the cached Studio is released (closed) before and after the test."""
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STUDIO_LOAD_PLUGINS", "")  # built-in providers only, whatever else is installed
    st.cache_resource.clear()
    yield tmp_path / "home"
    st.cache_resource.clear()


@pytest.fixture
def studio(home: Path):
    """The same Studio object the app gets from st.cache_resource (DuckDB allows one per file and process)."""
    from ui.app import get_studio

    return get_studio()


@pytest.fixture
def at(home: Path):
    """An AppTest of the whole app (st.navigation), not run yet."""
    return app_test()
