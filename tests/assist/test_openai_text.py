"""Contract: the OpenAI-compatible text model against a loopback server speaking /v1/chat/completions."""
from __future__ import annotations

import asyncio

import pytest

from core.assist.textmodel import ChatMessage, TextRequest
from core.errors import AssistFailed, BudgetExceeded, ProviderError
from providers.openai_text import OpenAITextProvider
from tests.assist.conftest import SPARSE


def _request(**kw) -> TextRequest:
    return TextRequest(model_key="test-chat-model", messages=[ChatMessage("system", "Be brief."),
                                                              ChatMessage("user", "Describe Mia.")], **kw)


async def _collect(provider, request):
    try:
        return [d async for d in provider.stream(request)]
    finally:
        await provider.aclose()


def test_a_completion_sends_the_documented_body_and_reads_the_answer(chat_fake):
    provider = OpenAITextProvider(chat_fake.secrets())
    chat_fake.answer = "Mia runs the corner cafe."
    result = asyncio.run(provider.complete(_request(max_tokens=123, temperature=0.5)))
    assert result.text == "Mia runs the corner cafe."
    sent = chat_fake.chats()[-1]
    assert sent["model"] == "test-chat-model" and sent["max_tokens"] == 123 and sent["temperature"] == 0.5
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Describe Mia."}]
    assert "stream" not in sent
    assert chat_fake.requests("submit")[-1].headers["authorization"] == f"Bearer {chat_fake.key}"


def test_streaming_reads_sse_pieces_until_done_and_the_usage_cost(chat_fake):
    chat_fake.answer = "one two three four five six"
    chat_fake.cost = 0.0042
    pieces = asyncio.run(_collect(OpenAITextProvider(chat_fake.secrets()), _request()))
    texts = [p.text for p in pieces if p.text]
    assert len(texts) >= 3 and "".join(texts) == "one two three four five six"
    assert [p.cost for p in pieces if p.cost is not None] == [0.0042]
    sent = chat_fake.chats()[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_a_local_server_needs_no_key():
    assert OpenAITextProvider({"STUDIO_TEXT_BASE_URL": "http://127.0.0.1:11434/v1"}).is_configured()
    assert not OpenAITextProvider({}).is_configured()


def test_admin_input_defaults_go_into_the_body(chat_fake):
    provider = OpenAITextProvider(chat_fake.secrets())
    asyncio.run(provider.complete(_request(input_defaults={"max_completion_tokens": 50, "top_p": 0.9})))
    sent = chat_fake.chats()[-1]
    assert sent["max_completion_tokens"] == 50 and sent["top_p"] == 0.9 and "max_tokens" not in sent


def test_a_429_in_a_stream_is_a_rate_limit_with_its_retry_after(chat_fake):
    chat_fake.inject(429)
    with pytest.raises(ProviderError) as err:
        asyncio.run(_collect(OpenAITextProvider(chat_fake.secrets()), _request()))
    assert err.value.kind == "rate_limited" and err.value.retry_after == 7
    assert chat_fake.key not in err.value.message


def test_through_the_studio_a_429_is_a_clear_message_and_the_character_stays(open_studio, chat_fake):
    studio = open_studio(chat_fake.secrets())
    mia = studio.characters.create(SPARSE)
    chat_fake.inject(429)
    with pytest.raises(AssistFailed, match=r"rate limited; try again in 7 s"):
        studio.assist.suggest(mia.id, "persona")
    assert studio.characters.get(mia.id).model_dump() == mia.model_dump()


def test_the_call_and_its_reported_cost_are_recorded(open_studio, chat_fake):
    studio = open_studio(chat_fake.secrets())
    mia = studio.characters.create(SPARSE)
    chat_fake.cost = 0.0031
    chat_fake.answer = "Warm, curious and a little stubborn, Mia listens more than she talks."
    suggestion = studio.assist.suggest(mia.id, "persona")
    assert suggestion.cost == pytest.approx(0.0031) and not suggestion.offline
    assert suggestion.model_name.startswith("test-chat-model")
    rows = studio.ctx.db.fetchall("SELECT owner, kind, subject, status, cost, provider_id FROM assist_calls")
    assert rows == [{"owner": "local", "kind": "suggest", "subject": "persona", "status": "ok",
                     "cost": pytest.approx(0.0031), "provider_id": "openai-text"}]


def test_assist_costs_count_in_the_monthly_budget_and_a_spent_budget_pauses_paid_assist(open_studio, chat_fake):
    studio = open_studio({**chat_fake.secrets(), "STUDIO_DEFAULT_BUDGET": "0.005"})
    mia = studio.characters.create(SPARSE)
    chat_fake.cost = 0.003
    chat_fake.answer = "Warm and curious."
    studio.assist.suggest(mia.id, "persona")
    assert studio.budgets.mine().spent == pytest.approx(0.003)
    studio.assist.suggest(mia.id, "persona")  # $0.002 was left: the call is made, its cost counted
    assert studio.budgets.mine().remaining == pytest.approx(-0.001)
    sent = len(chat_fake.chats())
    with pytest.raises(BudgetExceeded, match="monthly budget of \\$0.005 is spent"):
        studio.assist.suggest(mia.id, "persona")
    assert len(chat_fake.chats()) == sent  # nothing reached the service
