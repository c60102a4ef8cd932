"""The conformance kit's text checks pass for each built-in text model."""
from __future__ import annotations

import pytest

import providers.gemini_text
import providers.offline_text
import providers.openai_text
from core.plugin_api import TextModelConformance
from tests.fakes.chat import GeminiTextFake, OpenAIChatFake


class TestOpenAICompatible(TextModelConformance):
    @pytest.fixture
    def harness(self):
        fake = OpenAIChatFake()
        yield fake
        fake.close()

    @pytest.fixture
    def plugin(self):
        return providers.openai_text


class TestGeminiText(TextModelConformance):
    @pytest.fixture
    def harness(self):
        fake = GeminiTextFake()
        yield fake
        fake.close()

    @pytest.fixture
    def plugin(self):
        return providers.gemini_text


class OfflineHarness:
    provider_class = providers.offline_text.OfflineTextProvider
    has_service = False

    def secrets(self) -> dict[str, str]:
        return {}

    def inject(self, status: int) -> None:
        raise AssertionError("the offline suggester has no service")

    def received(self, value: str) -> bool:
        return False


class TestOfflineSuggester(TextModelConformance):
    @pytest.fixture
    def harness(self):
        return OfflineHarness()

    @pytest.fixture
    def plugin(self):
        return providers.offline_text
