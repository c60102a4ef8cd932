"""Contract: the Gemini text model against a loopback server speaking generateContent / streamGenerateContent."""
from __future__ import annotations

import asyncio

import pytest

from core.assist.textmodel import ChatMessage, TextRequest
from core.errors import ProviderError
from providers.gemini_text import GeminiTextProvider
from tests.assist.conftest import SPARSE


def _request(rating: str = "sfw") -> TextRequest:
    return TextRequest(model_key="gemini-2.5-flash", content_rating=rating, max_tokens=200,
                       messages=[ChatMessage("system", "Be brief."), ChatMessage("user", "Describe Mia.")])


def test_generate_content_carries_the_system_instruction_and_the_rating(gemini_text_fake):
    provider = GeminiTextProvider(gemini_text_fake.secrets())
    gemini_text_fake.answer = "Mia, barista."
    assert asyncio.run(provider.complete(_request())).text == "Mia, barista."
    req = gemini_text_fake.requests("submit")[-1]
    assert req.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    body = req.json()
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Describe Mia."}]}]
    assert body["generationConfig"]["maxOutputTokens"] == 200
    sexual = next(s for s in body["safetySettings"] if s["category"] == "HARM_CATEGORY_SEXUALLY_EXPLICIT")
    assert sexual["threshold"] == "BLOCK_LOW_AND_ABOVE"


def test_streaming_uses_alt_sse_and_joins_the_pieces(gemini_text_fake):
    gemini_text_fake.answer = "alpha beta gamma delta epsilon zeta"
    provider = GeminiTextProvider(gemini_text_fake.secrets())

    async def collect():
        try:
            return [d.text async for d in provider.stream(_request("nsfw"))]
        finally:
            await provider.aclose()

    pieces = asyncio.run(collect())
    assert len(pieces) >= 3 and "".join(pieces) == "alpha beta gamma delta epsilon zeta"
    req = gemini_text_fake.requests("submit")[-1]
    assert req.path.endswith(":streamGenerateContent") and req.query["alt"] == ["sse"]


def test_a_429_waits_for_its_retry_delay(gemini_text_fake):
    gemini_text_fake.inject(429)
    provider = GeminiTextProvider(gemini_text_fake.secrets())
    with pytest.raises(ProviderError) as err:
        asyncio.run(provider.complete(_request()))
    assert err.value.kind == "rate_limited" and err.value.retryable
    assert gemini_text_fake.key not in err.value.message


def test_through_the_studio_gemini_writes_the_suggestion(open_studio, gemini_text_fake):
    studio = open_studio(gemini_text_fake.secrets())
    mia = studio.characters.create(SPARSE)
    gemini_text_fake.answer = "curious, loyal, witty"
    suggestion = studio.assist.suggest(mia.id, "traits")
    assert suggestion.values == {"traits": "curious, loyal, witty"}
    assert studio.characters.get(mia.id).traits is None  # a suggestion is never saved by itself
