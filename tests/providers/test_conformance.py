"""The plugin-author conformance kit (core.testing) run against the built-in providers."""
from __future__ import annotations

import importlib

import pytest

from core.testing import ProviderConformance, run_all
from tests.fakes.fal import FalFake
from tests.fakes.gemini import GeminiFake
from tests.fakes.openai import OpenAIFake
from tests.fakes.replicate import ReplicateFake
from tests.fakes.runpod import RunPodFake
from tests.providers.conftest import SENTINEL

FAKES = {"fal": FalFake, "replicate": ReplicateFake, "openai": OpenAIFake, "runpod": RunPodFake, "gemini": GeminiFake}


@pytest.fixture(autouse=True)
def _no_key_in_logs(sentinel_logs):
    yield


class TestBuiltinConformance(ProviderConformance):
    @pytest.fixture(params=sorted(FAKES))
    def harness(self, request):
        server = FAKES[request.param](SENTINEL)
        yield server
        server.close()

    @pytest.fixture
    def plugin(self, harness):
        return importlib.import_module(harness.provider_class.__module__)


def test_run_all_importable_api():
    server = FalFake(SENTINEL)
    try:
        run_all(server, plugin=importlib.import_module("providers.fal"))
        assert server.count("cancel") == 1 and server.count("submit") >= 9
    finally:
        server.close()


def test_the_kit_catches_a_misclassifying_provider():
    """A provider that treats 401 as retryable fails the error check."""
    from core.testing import check_errors
    from providers.fal import FalProvider

    class Sloppy(FalProvider):
        def classify(self, response):
            error = super().classify(response)
            error.retryable = True
            return error

    server = FalFake(SENTINEL)
    server.provider_class = Sloppy
    try:
        with pytest.raises(AssertionError, match="HTTP 401 must be permanent"):
            check_errors(server)
    finally:
        server.close()


def test_the_kit_catches_a_provider_that_cannot_resume():
    """A provider that only keeps its status URLs in memory fails the resume check."""
    from core.testing import check_resume
    from providers.fal import FalProvider

    class Forgetful(FalProvider):
        async def poll(self, request_id, request):
            if request_id not in self._urls:
                raise RuntimeError("unknown request (state was only in memory)")
            return await super().poll(request_id, request)

    server = FalFake(SENTINEL)
    server.provider_class = Forgetful
    try:
        with pytest.raises((RuntimeError, AssertionError), match="only in memory"):
            check_resume(server)
    finally:
        server.close()
