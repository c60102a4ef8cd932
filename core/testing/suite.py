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


def _as_test(check):
    def test(self, harness):
        check(harness)

    test.__doc__ = check.__doc__
    return test


for _check in checks.CHECKS:
    setattr(ProviderConformance, "test_" + _check.__name__.removeprefix("check_"), _as_test(_check))
