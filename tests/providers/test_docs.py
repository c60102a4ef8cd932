"""docs/plugins.md agrees with the code: every hook (name and arguments), the Provider reference,
and the complete minimal plugin, which must be the sample plugin the tests install."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

from core import hookspecs, provider

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "plugins.md").read_text()


def _hookspecs() -> dict[str, str]:
    return {name: ", ".join(inspect.signature(fn).parameters)
            for name, fn in vars(hookspecs).items()
            if callable(fn) and hasattr(fn, "character_studio_spec")}


def _documented_hooks() -> dict[str, str]:
    section = DOC.split("## Hooks", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): ", ".join(a.strip() for a in m.group(2).split(",") if a.strip())
            for m in re.finditer(r"^### `(\w+)\(([^)]*)\)`", section, re.M)}


def test_every_hook_is_documented_with_its_arguments():
    assert _hookspecs(), "no hookspecs found"
    assert _documented_hooks() == _hookspecs()


def test_each_documented_hook_has_an_example():
    section = DOC.split("## Hooks", 1)[1].split("\n## ", 1)[0]
    for name in _hookspecs():
        body = section.split(f"### `{name}(", 1)[1].split("\n### ", 1)[0]
        assert "```python" in body and "@hookimpl" in body and f"def {name}(" in body


def test_provider_reference_covers_the_base_class():
    reference = DOC.split("## The Provider base class", 1)[1].split("\n## The conformance kit", 1)[0]
    public = [n for n in vars(provider.Provider) if not n.startswith("_")] + ["id", "display_name"]
    missing = [n for n in public if f"`{n}" not in reference]
    assert not missing, f"Provider members missing from docs/plugins.md: {missing}"
    for cls in ("GenerationRequest", "Submission", "Progress", "GenerationResult", "GeneratedImage",
                "ReferenceImage", "Health", "ProviderError"):
        assert f"`{cls}" in reference, cls


def test_minimal_plugin_is_the_tested_sample():
    sample = ROOT / "tests" / "sample_plugin"
    blocks = re.findall(r"```(?:python|toml)\n(.*?)```", DOC, re.S)
    assert (sample / "studio_sample_provider.py").read_text() in blocks
    assert (sample / "pyproject.toml").read_text() in blocks
    assert "[project.entry-points.character_studio]" in DOC


def test_kit_checks_are_documented():
    import core.testing

    for name in core.testing.__all__:
        if name.startswith("check_") or name in ("run_all", "ProviderConformance"):
            assert f"{name}" in DOC, name
