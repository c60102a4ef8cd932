"""A pytest base class running every conformance check as its own test.

    class TestMyProvider(ProviderConformance):
        @pytest.fixture
        def harness(self):        # required: your Harness (usually your fake server)
            ...
        @pytest.fixture
        def plugin(self):         # required: the object with your register_providers hook
            return my_plugin_module

The class name has no ``Test`` prefix, so importing it does not collect it twice.
"""
from __future__ import annotations

from core.testing import checks


class ProviderConformance:
    """Subclass with `harness` and `plugin` fixtures."""

    def test_registration(self, harness, plugin):
        assert checks.check_registration(plugin, harness.provider_class.id) is harness.provider_class

    def test_catalog(self, harness):
        checks.check_catalog(harness)

    def test_secrets(self, harness):
        checks.check_secrets(harness)

    def test_generation(self, harness):
        checks.check_generation(harness)

    def test_error_classification(self, harness):
        checks.check_errors(harness)

    def test_cancel(self, harness):
        checks.check_cancel(harness)

    def test_resume(self, harness):
        checks.check_resume(harness)

    def test_health(self, harness):
        checks.check_health(harness)

