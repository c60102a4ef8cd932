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


def test_every_public_field_of_the_plugin_api_is_documented():
    import dataclasses

    import core.plugin_api as api

    for model in (api.ModelSpec, api.Capabilities, api.ReferenceMapping):
        missing = [f for f in model.model_fields if f"`{f}`" not in DOC]
        assert not missing, f"{model.__name__} fields missing from docs/plugins.md: {missing}"
    for cls in (api.GenerationRequest, api.Submission, api.Progress, api.GenerationResult, api.GeneratedImage,
                api.ReferenceImage, api.Health):
        missing = [f.name for f in dataclasses.fields(cls) if f"`{f.name}`" not in DOC]
        assert not missing, f"{cls.__name__} fields missing from docs/plugins.md: {missing}"
    harness = [n for n in ("provider_class", "secrets", "inject", "submissions", "received", "fail_next",
                           "cancellations", "model_key", "i2i_model_key", "has_cancel", "takes_seed", "poll_limit_s")
               if f"`{n}" not in DOC]
    assert not harness, harness
    from core.testing import Harness

    declared = {n for n in vars(Harness) if not n.startswith("_")} | set(Harness.__annotations__)
    assert not [n for n in declared if f"`{n}" not in DOC]


def test_each_check_says_what_it_asserts_and_is_in_the_docs_table():
    import core.testing

    for check in (core.testing.check_registration, *core.testing.CHECKS):
        assert check.__doc__ and len(check.__doc__) > 40, check.__name__
        assert re.search(rf"^\| `{check.__name__}(\(|`)", DOC, re.M), check.__name__


def test_the_docs_import_only_from_the_plugin_api():
    blocks = re.findall(r"```python\n(.*?)```", DOC, re.S)
    imports = [line for block in blocks for line in block.splitlines() if re.match(r"\s*(from|import) core\b", line)]
    assert imports and all(line.strip().startswith("from core.plugin_api import") for line in imports), imports


def test_the_example_fake_is_the_tested_one():
    blocks = re.findall(r"```python\n(.*?)```", DOC, re.S)
    assert (ROOT / "tests" / "fakes" / "sample.py").read_text() in blocks


def test_notebook_job_progress_fields_are_documented():
    readme = (ROOT / "README.md").read_text()
    for name in ("status", "stage", "percent", "queue_position", "progress_message", "last_error", "attempts"):
        assert f"`{name}`" in readme, name


def test_the_default_models_are_listed_in_the_docs_and_the_readme():
    """docs/plugins.md's "Default models" table names each built-in's seeded models with their priority,
    and the README's feature list names them too (RunPod's come from its settings)."""
    from providers.fal import FalProvider
    from providers.gemini import GeminiProvider
    from providers.openai import OpenAIProvider
    from providers.replicate import ReplicateProvider

    table = DOC.split("### Default models", 1)[1].split("\n\n")[2]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| (.*) \|$", table, re.M)}
    readme = (ROOT / "README.md").read_text().split("Default models:", 1)[1].split("\n- ", 1)[0]
    for cls in (GeminiProvider, FalProvider, ReplicateProvider, OpenAIProvider):
        for spec in cls({}).default_models():
            assert f"`{spec.model_key}`" in rows[cls.id], f"{spec.model_key} missing from the plugins.md table"
            if spec.modality == "image":
                assert f"`{spec.model_key}` ({spec.priority})" in rows[cls.id], f"{spec.model_key}'s priority"
                assert f"`{spec.model_key}`" in readme or f"`{spec.model_key.rsplit('/', 1)[-1]}`" in readme, \
                    f"{spec.model_key} missing from the README's default models"
