"""The conformance checks. Each raises AssertionError (with a reason) when the provider fails it."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

import pluggy

from core import hookspecs
from core.errors import ProviderError
from core.models import ModelSpec
from core.plugins import collect_providers
from core.provider import GenerationRequest, GenerationResult, Health, Provider, ReferenceImage, image_from_bytes, sha256

T = TypeVar("T")
ERROR_CASES = ((401, False), (403, False), (422, False), (429, True), (500, True), (503, True))
POLL_LIMIT_S = 30.0


@runtime_checkable
class Harness(Protocol):
    """What the kit needs from your test setup (usually methods on your fake server).

    provider_class  your Provider subclass
    secrets()       the environment that points it at your fake (key, base URL override; set
                    STUDIO_POLL_INTERVAL low so polling is quick)
    inject(status)  make the next job-creating call (submit, or generate for one-shot
                    providers) answer this HTTP status with your service's error body
    submissions()   how many jobs your fake has accepted so far
    model_key       optional: the model to test (default: the first text-to-image default model)
    """

    provider_class: type[Provider]

    def secrets(self) -> dict[str, str]: ...

    def inject(self, status: int) -> None: ...

    def submissions(self) -> int: ...


def _run(provider: Provider, work: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await work()
        finally:
            await provider.aclose()

    return asyncio.run(main())


def _model(harness: Harness, provider: Provider, *, i2i: bool = False) -> ModelSpec | None:
    models = provider.default_models()
    wanted = getattr(harness, "i2i_model_key" if i2i else "model_key", None)
    for spec in models:
        if wanted and spec.model_key == wanted:
            return spec
    if wanted:
        return ModelSpec(model_key=wanted, display_name=wanted)
    usable = [m for m in models if m.modality == "image" and (m.capabilities.supports_i2i if i2i else m.capabilities.supports_txt2img)]
    return usable[0] if usable else None


def _request(spec: ModelSpec, reference: bytes | None = None) -> GenerationRequest:
    refs = [ReferenceImage(reference, "image/png", sha256(reference))] if reference else []
    return GenerationRequest(job_id="conformance", model_key=spec.model_key, prompt="a conformance portrait",
                             width=512, height=512, seed=1234, references=refs, capabilities=spec.capabilities,
                             input_defaults=dict(spec.input_defaults))


async def _complete(provider: Provider, request_id: str, request: GenerationRequest) -> GenerationResult:
    deadline = time.monotonic() + POLL_LIMIT_S
    while True:
        progress = await provider.poll(request_id, request)
        assert progress.state in ("queued", "running", "completed", "failed", "canceled"), progress.state
        if progress.state == "completed":
            return await provider.result(request_id, request)
        assert progress.state not in ("failed", "canceled"), f"the job ended {progress.state}: {progress.error}"
        assert time.monotonic() < deadline, f"the job did not complete within {POLL_LIMIT_S}s of polling"
        await asyncio.sleep(provider.poll_interval)


async def _generate(provider: Provider, request: GenerationRequest) -> GenerationResult:
    if not provider.resumable:
        return await provider.generate(request)
    submission = await provider.submit(request)
    assert isinstance(submission.request_id, str) and submission.request_id, "submit must return a request id"
    return await _complete(provider, submission.request_id, request)


def _tiny_png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 32), (90, 140, 200)).save(out, "PNG")
    return out.getvalue()


# -- the checks -------------------------------------------------------------------------------
def check_registration(plugin: object, provider_id: str | None = None) -> type[Provider]:
    """The plugin's `register_providers` hook registers Provider subclasses with an id and a name."""
    pm = pluggy.PluginManager("character_studio")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin)
    found = collect_providers(pm)
    assert found, "register_providers registered no provider"
    for pid, cls in found.items():
        assert isinstance(pid, str) and pid and pid == pid.strip().lower(), f"bad provider id {pid!r}"
        assert getattr(cls, "display_name", ""), f"{cls.__name__} has no display_name"
    if provider_id is not None:
        assert provider_id in found, f"{provider_id!r} not registered (found {sorted(found)})"
        return found[provider_id]
    return next(iter(found.values()))


def check_catalog(harness: Harness) -> list[ModelSpec]:
    """Declaration and default models: keys, base URL override, models with coherent capabilities."""
    cls = harness.provider_class
    secrets = harness.secrets()
    if cls.key_env:
        assert not cls({}).is_configured(), "a provider with key_env must not be configured without its key"
    provider = cls(secrets)
    assert provider.is_configured(), "the harness secrets must configure the provider"
    if cls.base_url_env and cls.base_url_env in secrets:
        assert provider.base_url == secrets[cls.base_url_env].rstrip("/"), "the base URL must be overridable"
    if provider.resumable:
        for name in ("submit", "poll", "result"):
            assert getattr(cls, name) is not getattr(Provider, name), f"a resumable provider must implement {name}"
    else:
        assert cls.generate is not Provider.generate, "a one-shot provider must implement generate"
    models = provider.default_models()
    keys = [m.model_key for m in models]
    assert len(keys) == len(set(keys)), f"duplicate model keys: {keys}"
    for spec in models:
        assert isinstance(spec, ModelSpec), f"default_models must return ModelSpec, got {type(spec).__name__}"
        caps = spec.capabilities
        if caps.supports_i2i:
            assert caps.reference is not None, f"{spec.model_key}: an image-to-image model needs a reference mapping"
        assert caps.supports_txt2img or caps.supports_i2i or spec.modality != "image", f"{spec.model_key} can do nothing"
    return models


def check_generation(harness: Harness) -> GenerationResult:
    """Text-to-image (and image-to-image when a model takes a reference) end to end against the fake."""
    provider = harness.provider_class(harness.secrets())
    spec = _model(harness, provider)
    assert spec is not None, "no text-to-image model to test (set harness.model_key)"
    before = harness.submissions()
    result = _run(provider, lambda: _generate(provider, _request(spec)))
    assert result.images, "the result has no image"
    image_from_bytes(result.images[0].data)
    assert harness.submissions() == before + 1, "one generation must be exactly one submission"
    text = repr(result.inputs) + repr(result.metadata)
    assert not any(v in text for v in provider.secret_values()), "a key leaked into the recorded inputs"
    i2i = _model(harness, provider, i2i=True)
    if i2i is not None and i2i.capabilities.supports_i2i:
        provider = harness.provider_class(harness.secrets())
        out = _run(provider, lambda: _generate(provider, _request(i2i, _tiny_png())))
        assert out.images, "the image-to-image result has no image"
        field = i2i.capabilities.reference.field
        if field in out.inputs:
            assert "base64" not in str(out.inputs[field]), "record references by hash (recorded_inputs), not inline"
    return result


def check_errors(harness: Harness) -> None:
    """401/403/422 are permanent; 429 and 5xx retryable; messages carry no key."""
    for status, retryable in ERROR_CASES:
        provider = harness.provider_class(harness.secrets())
        spec = _model(harness, provider)
        harness.inject(status)
        call = (lambda p=provider: p.generate(_request(spec))) if not provider.resumable else \
            (lambda p=provider: p.submit(_request(spec)))
        try:
            _run(provider, call)
        except ProviderError as exc:
            assert exc.retryable is retryable, f"HTTP {status} must be {'retryable' if retryable else 'permanent'}"
            assert not any(v in exc.message for v in provider.secret_values()), f"HTTP {status}: key in the message"
        else:
            raise AssertionError(f"HTTP {status} did not raise ProviderError (did the harness inject it?)")


def check_cancel(harness: Harness) -> None:
    """Cancel of a submitted job either succeeds or raises ProviderError (the engine treats it as best effort)."""
    provider = harness.provider_class(harness.secrets())
    if not provider.resumable:
        _run(provider, lambda: provider.cancel("any"))  # the default is a no-op
        return
    spec = _model(harness, provider)

    async def work() -> None:
        submission = await provider.submit(_request(spec))
        try:
            await provider.cancel(submission.request_id)
        except ProviderError:
            pass

    _run(provider, work)


def check_resume(harness: Harness) -> None:
    """A resumable job finishes from its request id alone, in a fresh provider instance, without resubmitting."""
    first = harness.provider_class(harness.secrets())
    if not first.resumable:
        return
    spec = _model(harness, first)
    request = _request(spec)
    submission = _run(first, lambda: first.submit(request))
    count = harness.submissions()
    fresh = harness.provider_class(harness.secrets())  # as after a restart
    result = _run(fresh, lambda: _complete(fresh, submission.request_id, request))
    assert result.images, "the resumed job has no image"
    assert harness.submissions() == count, "resuming must not submit again"


def check_secrets(harness: Harness) -> None:
    """The key is among the values scrubbed from messages."""
    provider = harness.provider_class(harness.secrets())
    key = provider.api_key()
    if key:
        assert key in provider.secret_values(), "api_key() must be scrubbed"
        assert key not in provider.scrub(f"error: {key}"), "scrub must remove the key"


def check_health(harness: Harness) -> Health:
    """health() answers a Health without raising."""
    provider = harness.provider_class(harness.secrets())
    health = _run(provider, provider.health)
    assert isinstance(health, Health) and health.state in ("ok", "rejected", "unreachable", "not_configured", "unknown")
    return health


def run_all(harness: Harness, plugin: Any = None) -> None:
    """Every check, in order."""
    if plugin is not None:
        registered = check_registration(plugin, harness.provider_class.id)
        assert registered is harness.provider_class, "the plugin registers a different class"
    check_catalog(harness)
    check_secrets(harness)
    check_generation(harness)
    check_errors(harness)
    check_cancel(harness)
    check_resume(harness)
    check_health(harness)
