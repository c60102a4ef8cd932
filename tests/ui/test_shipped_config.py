"""The shipped .streamlit/config.toml is safe for production (issue 15: the file watcher cost ~15% CPU)."""
from __future__ import annotations

import tomllib
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"


def test_no_file_watcher_and_no_run_on_save():
    config = tomllib.loads(CONFIG.read_text())
    assert config["server"]["fileWatcherType"] == "none"
    assert config["server"]["runOnSave"] is False
    assert config["runner"]["magicEnabled"] is False
    assert config["runner"]["postScriptGC"] is False  # a full collection after every rerun: ~20% of the CPU


def test_streamlit_reads_these_options_from_the_shipped_file(monkeypatch):
    """The names are Streamlit's own: its config parser takes them from this file."""
    from streamlit import config

    monkeypatch.chdir(CONFIG.parents[1])
    config.get_config_options(force_reparse=True)
    try:
        assert config.get_option("server.fileWatcherType") == "none"
        assert config.get_option("server.runOnSave") is False
        assert config.get_option("runner.postScriptGC") is False
    finally:
        monkeypatch.undo()
        config.get_config_options(force_reparse=True)
