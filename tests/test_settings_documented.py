"""Every setting the studio reads from the environment is documented in the README's Configuration
section: the names are found in the code (string constants, and what each built-in provider declares),
so a new setting without a line in the README fails here."""
from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from core.config import Settings, StorageSettings
from core.errors import InvalidSetting
from core.plugins import collect_providers, make_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
SETTING = re.compile(r"^(STUDIO|AWS|FAL|REPLICATE|OPENAI|RUNPOD|GEMINI)_[A-Z0-9_]+$")
SOURCES = [*ROOT.glob("core/**/*.py"), *ROOT.glob("providers/*.py"), *ROOT.glob("ui/*.py"), ROOT / "studio_app.py"]


def _configuration_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]


def _names_in_code() -> set[str]:
    names = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SETTING.match(node.value):
                names.add(node.value)
    return names


def _declared_by_providers() -> set[str]:
    names = set()
    for cls in collect_providers(make_plugin_manager("")).values():
        names |= cls.declared_env()
    return names


def test_the_scan_finds_settings():
    found = _names_in_code()
    assert {"STUDIO_HOME", "STUDIO_STORAGE_URL", "AWS_SECRET_ACCESS_KEY"} <= found  # the scan itself works
    assert {"OPENAI_API_KEY", "FAL_QUEUE_URL"} <= _declared_by_providers()


def test_every_setting_is_documented_in_the_readme():
    section = _configuration_section()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
    missing = sorted((_names_in_code() | _declared_by_providers()) - documented)
    assert not missing, f"settings read by the code but not in the README's Configuration section: {missing}"


def _settings_fields() -> list[tuple[str, str | None]]:
    """(field, environment variable) of every field of Settings and of its nested StorageSettings."""
    out = []
    for cls in (Settings, StorageSettings):
        out += [(f"{cls.__name__}.{f.name}", f.metadata.get("env", "?")) for f in dataclasses.fields(cls)]
    return out


def test_every_settings_field_names_its_variable_and_the_readme_documents_it():
    section = _configuration_section()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
    fields = _settings_fields()
    unnamed = [name for name, env in fields if env == "?"]
    assert not unnamed, f"Settings fields that do not say which variable they come from: {unnamed}"
    undocumented = [f"{name} ({env})" for name, env in fields if env is not None and env not in documented]
    assert not undocumented, f"Settings fields whose variable is not in the README: {undocumented}"
    # Only what no variable sets: the provider mapping, a caller's choice, the nested storage settings.
    assert {name for name, env in fields if env is None} == {"Settings.secrets", "Settings.start_runner",
                                                             "Settings.storage"}


NUMERIC = ["STUDIO_MAX_ATTEMPTS", "STUDIO_JOB_DEADLINE", "STUDIO_SIGN_EXPIRY", "STUDIO_GC_GRACE_SECONDS",
           "STUDIO_UPLOAD_MAX_AGE", "STUDIO_DB_THREADS", "STUDIO_LEASE_SECONDS", "STUDIO_RUNNER_SLOTS",
           "STUDIO_STORAGE_CONNECT_TIMEOUT", "STUDIO_STORAGE_READ_TIMEOUT", "STUDIO_STORAGE_WRITE_ATTEMPTS",
           "STUDIO_STORAGE_RETRY_BASE", "STUDIO_POLL_INTERVAL", "STUDIO_PROVIDER_TIMEOUT", "STUDIO_DOWNLOAD_DEADLINE",
           "STUDIO_DEFAULT_BUDGET", "STUDIO_ASSIST_RATE", "STUDIO_ASSIST_TIMEOUT", "STUDIO_COMPARE_CONFIRM_USD"]


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("value", ["x", "-1", "nan"])
def test_a_bad_number_is_refused_naming_its_variable(tmp_path, name, value):
    with pytest.raises(InvalidSetting) as err:
        Settings.from_env(home=tmp_path, env={name: value})
    assert name in err.value.message and "Traceback" not in err.value.message


def test_numeric_settings_are_read_as_numbers(tmp_path):
    settings = Settings.from_env(home=tmp_path, env={"STUDIO_MAX_ATTEMPTS": "5", "STUDIO_LEASE_SECONDS": "12.5",
                                                     "STUDIO_STORAGE_WRITE_ATTEMPTS": "2", "STUDIO_POLL_INTERVAL": "0.2"})
    assert (settings.max_attempts, settings.lease_seconds, settings.storage.write_attempts, settings.poll_interval) == (
        5, 12.5, 2, 0.2)
    assert Settings.from_env(home=tmp_path, env={"STUDIO_DEBUG": "1"}).debug
    assert not Settings.from_env(home=tmp_path, env={"STUDIO_DEBUG": "0"}).debug


def test_every_numeric_setting_is_tested():
    numeric = {f.metadata["env"] for cls in (Settings, StorageSettings) for f in dataclasses.fields(cls)
               if f.metadata.get("env") and f.type in ("int", "float", "float | None", "int | None")}
    assert numeric == set(NUMERIC)
