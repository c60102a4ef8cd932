"""Every setting the studio reads from the environment is documented in the README's Configuration
section: the names are found in the code (string constants, and what each built-in provider declares),
so a new setting without a line in the README fails here."""
from __future__ import annotations

import ast
import re
from pathlib import Path

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
