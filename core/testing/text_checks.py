"""The conformance checks for text (chat) model plugins: `register_text_models` and `TextProvider`.

A *text harness* connects them to your fake of the service (see `TextHarness`); a model that needs no
service (an offline, template-based one) sets `has_service = False` and its network checks pass trivially.
"""
from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

import pluggy

from core import hookspecs
from core.assist.textmodel import ChatMessage, TextDelta, TextProvider, TextRequest, TextResult
from core.errors import ProviderError

ERROR_CASES = ((401, False), (403, False), (422, False), (429, True), (500, True), (503, True))
MARKER = "conformance-marker-7d1f"  # in the request's user message: finding it at the service means it was sent


@runtime_checkable
class TextHarness(Protocol):
    """What the text checks need (usually methods on your fake server).

    provider_class    your TextProvider subclass
    secrets()         the environment pointing it at your fake (key, base URL)
    inject(status)    the next chat call answers this HTTP status with your service's error body, echoing the
                      request's key in it (as careless services do)
    received(value)   whether any request the fake got carried the text `value`
    optional: model_key (default the first default model), has_service (False: no network at all)
    """

    provider_class: type[TextProvider]

    def secrets(self) -> dict[str, str]: ...

    def inject(self, status: int) -> None: ...

    def received(self, value: str) -> bool: ...


def _request(harness: TextHarness, provider: TextProvider) -> TextRequest:
    key = getattr(harness, "model_key", None) or provider.default_models()[0].model_key
    return TextRequest(model_key=key, task="suggest:description", max_tokens=200,
                       messages=[ChatMessage("system", "You help write characters."),
                                 ChatMessage("user", f"Describe Mia, a cheerful barista. ({MARKER})")],
                       subject={"name": "Mia", "gender": "female", "description": "A cheerful barista.",
                                "content_rating": "sfw"})


def _run(provider: TextProvider, coro):
    async def main():
        try:
            return await coro
        finally:
            await provider.aclose()

    return asyncio.run(main())


def _service(harness: TextHarness) -> bool:
    return getattr(harness, "has_service", True)


def check_text_registration(plugin: object, provider_id: str) -> type[TextProvider]:
    """The `register_text_models` hook registers TextProvider subclasses with a lowercase id and a display name."""
    pm = pluggy.PluginManager("character_studio")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin)
    found: dict[str, type] = {}
    pm.hook.register_text_models(register=lambda cls: found.setdefault(getattr(cls, "id", "?"), cls))
    assert provider_id in found, f"register_text_models registered {sorted(found)}, not {provider_id!r}"
    cls = found[provider_id]
    assert isinstance(cls, type) and issubclass(cls, TextProvider), f"{cls!r} is not a TextProvider subclass"
    assert cls.id == cls.id.lower() and cls.display_name, "the id must be lowercase and a display name set"
    return cls


def check_text_catalog(harness: TextHarness) -> None:
    """The harness secrets configure the provider, `complete` is implemented, and the default models are
    `chat` models with unique keys."""
    cls = harness.provider_class
    assert cls.complete is not TextProvider.complete, "a text provider must implement complete"
    provider = cls(harness.secrets())
    assert provider.is_configured(), "the harness secrets must configure the provider"
    models = provider.default_models()
    assert models, "a text provider declares at least one default model"
    assert all(m.modality == "chat" for m in models), "text models have the 'chat' modality"
    assert len({m.model_key for m in models}) == len(models), "default model keys must be unique"


def check_text_complete(harness: TextHarness) -> None:
    """`complete` answers with text, and (with a service) the request's messages reached it."""
    provider = harness.provider_class(harness.secrets())
    result = _run(provider, provider.complete(_request(harness, provider)))
    assert isinstance(result, TextResult) and result.text.strip(), f"no text in {result!r}"
    if _service(harness):
        assert harness.received(MARKER), "the user message did not reach the service"


def check_text_stream(harness: TextHarness) -> None:
    """`stream` yields TextDelta pieces that join into a non-empty answer (a provider declaring
    `streams = True` sends the service's pieces as they come)."""
    provider = harness.provider_class(harness.secrets())

    async def collect() -> list[TextDelta]:
        return [d async for d in provider.stream(_request(harness, provider))]

    pieces = _run(provider, collect())
    assert pieces and all(isinstance(p, TextDelta) for p in pieces), f"stream yielded {pieces!r}"
    assert "".join(p.text for p in pieces).strip(), "the streamed answer is empty"


def check_text_errors(harness: TextHarness) -> None:
    """401/403/422 are permanent, 429/500/503 retryable (a 429 is `rate_limited`); no key in the message."""
    if not _service(harness):
        return
    secrets = harness.secrets()
    for status, retryable in ERROR_CASES:
        provider = harness.provider_class(secrets)
        harness.inject(status)
        try:
            _run(provider, provider.complete(_request(harness, provider)))
        except ProviderError as exc:
            assert exc.retryable is retryable, f"HTTP {status}: retryable should be {retryable}"
            if status == 429:
                assert exc.kind == "rate_limited", f"HTTP 429 should be kind 'rate_limited', got {exc.kind!r}"
            key = provider.api_key()
            assert not key or key not in exc.message, f"HTTP {status}: the key is in the error message"
        else:
            raise AssertionError(f"HTTP {status} did not raise ProviderError")


def check_text_secrets(harness: TextHarness) -> None:
    """The provider's key is among the values scrubbed from every message."""
    provider = harness.provider_class(harness.secrets())
    key = provider.api_key()
    if key:
        assert key not in provider.scrub(f"a message quoting {key}"), "the key is not redacted"


def check_text_health(harness: TextHarness) -> None:
    """`health` answers ok with the harness secrets (and `rejected` with a wrong key where a key is needed)."""
    provider = harness.provider_class(harness.secrets())
    health = _run(provider, provider.health())
    assert health.state == "ok", f"health with the harness secrets: {health.state} ({health.message})"
    if _service(harness) and provider.key_env:
        wrong = {**harness.secrets(), provider.key_env[0]: "wrong-key-for-the-check"}
        other = harness.provider_class(wrong)
        health = _run(other, other.health())
        assert health.state == "rejected", f"health with a wrong key: {health.state} ({health.message})"


TEXT_CHECKS = (check_text_catalog, check_text_complete, check_text_stream, check_text_errors, check_text_secrets,
               check_text_health)


def run_text_checks(harness: TextHarness, *, plugin: object | None = None) -> None:
    """Every text check, in order (registration too when `plugin` is given)."""
    if plugin is not None:
        assert check_text_registration(plugin, harness.provider_class.id) is harness.provider_class
    for check in TEXT_CHECKS:
        check(harness)


class TextModelConformance:
    """A pytest base class: subclass it with `harness` and `plugin` fixtures; every text check is a test."""

    def test_text_registration(self, harness, plugin):
        assert check_text_registration(plugin, harness.provider_class.id) is harness.provider_class


def _as_test(check):
    def test(self, harness):
        check(harness)

    test.__doc__ = check.__doc__
    return test


for _check in TEXT_CHECKS:
    setattr(TextModelConformance, "test_" + _check.__name__.removeprefix("check_"), _as_test(_check))
