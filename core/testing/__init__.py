"""The conformance kit for provider plugins: run it against your provider and your fake server.

Two ways to use it (see docs/plugins.md):

* importable checks: ``from core.testing import run_all; run_all(harness, plugin=my_module)``;
* a pytest base class: ``class TestMine(ProviderConformance)`` with a ``harness`` fixture (and
  optionally a ``plugin`` fixture); every check becomes one test.

A *harness* connects the kit to your fake server (see `Harness`). Nothing here imports pytest or
needs a network beyond your loopback fake.
"""
from core.testing.checks import (Harness, check_cancel, check_catalog, check_errors, check_generation,
                                 check_health, check_registration, check_resume, check_secrets, run_all)
from core.testing.suite import ProviderConformance

__all__ = ["Harness", "ProviderConformance", "check_cancel", "check_catalog", "check_errors", "check_generation",
           "check_health", "check_registration", "check_resume", "check_secrets", "run_all"]
