"""The conformance kit for provider plugins: run it against your provider and your fake server.

Import it from the plugin API (`from core.plugin_api import run_all, ProviderConformance`). Two ways
to use it (see docs/plugins.md):

* importable checks: ``run_all(harness, plugin=my_module)``, or one ``check_*`` at a time;
* a pytest base class: ``class TestMine(ProviderConformance)`` with ``harness`` and ``plugin``
  fixtures; every check becomes one test.

Text (chat) model plugins have their own checks (`check_text_*`, `run_text_checks`,
`TextModelConformance`) and harness (`TextHarness`).

A *harness* connects the kit to your fake server (see `Harness`). Nothing here imports pytest or
needs a network beyond loopback.
"""
from core.testing.checks import (CHECKS, Harness, check_cancel, check_catalog, check_errors, check_failure,
                                 check_generation, check_health, check_image_to_image, check_key_stays_home,
                                 check_registration, check_resume, check_secrets, check_seed, run_all)
from core.testing.suite import ProviderConformance
from core.testing.text_checks import (TEXT_CHECKS, TextHarness, TextModelConformance, check_text_catalog,
                                      check_text_complete, check_text_errors, check_text_health,
                                      check_text_registration, check_text_secrets, check_text_stream, run_text_checks)

__all__ = ["CHECKS", "Harness", "ProviderConformance", "check_cancel", "check_catalog", "check_errors", "check_failure",
           "check_generation", "check_health", "check_image_to_image", "check_key_stays_home", "check_registration",
           "check_resume", "check_secrets", "check_seed", "run_all", "TEXT_CHECKS", "TextHarness", "TextModelConformance",
           "check_text_catalog", "check_text_complete", "check_text_errors", "check_text_health",
           "check_text_registration", "check_text_secrets", "check_text_stream", "run_text_checks"]
