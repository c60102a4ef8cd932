"""The conformance checks. Each raises AssertionError (with a reason) when the provider fails it.

The generation checks run the provider inside a real studio (a temporary home, the studio's own
job runner with its retries and backoff), so a fake that answers 429s, 5xx and slow responses
now and then, as real services do, is fine; the other checks call the provider directly.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import tempfile
import time
from collections.abc import Iterator
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

import pluggy

from core import hookspecs
from core.errors import ProviderError, StudioError
from core.models import Job, ModelSpec, Recipe
from core.plugins import collect_providers
from core.provider import GenerationRequest, GenerationResult, Health, Provider, ReferenceImage, image_from_bytes, sha256

T = TypeVar("T")
ERROR_CASES = ((401, False), (403, False), (422, False), (429, True), (500, True), (503, True))
POLL_LIMIT_S = 30.0
SEED = 918273  # unusual enough that finding it in a request means the seed was sent
FAILURE = "conformance: the service failed this job"


@runtime_checkable
class Harness(Protocol):
    """What the kit needs from your test setup (usually methods on your fake server).

    provider_class    your Provider subclass
    secrets()         the environment that points it at your fake (key, base URL override; set
                      STUDIO_POLL_INTERVAL low so polling is quick)
    inject(status)    make the next job-creating call (submit, or generate for one-shot
                      providers) answer this HTTP status with your service's error body
    submissions()     how many jobs your fake has accepted so far
    received(value)   whether any request the fake got carried `value`: bytes as they are, or
                      base64-encoded (an image, however it was sent), text as it is
    fail_next(msg)    jobs accepted from now on fail at the service with this message (None: they
                      succeed again), reported the way your service reports failures
    cancellations()   how many cancel requests the fake has received
    optional: model_key, i2i_model_key (the models to test; default the first text-to-image and
    image-to-image default models), has_cancel (False: the service has no cancel API),
    takes_seed (False: the service takes no seed), poll_limit_s (seconds a job may take, 30)
    """

    provider_class: type[Provider]

    def secrets(self) -> dict[str, str]: ...

    def inject(self, status: int) -> None: ...

    def submissions(self) -> int: ...

    def received(self, value: bytes | str) -> bool: ...

    def fail_next(self, message: str | None) -> None: ...

    def cancellations(self) -> int: ...


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


class _KitPlugin:
    """Registers the harness's provider class in the kit's studio."""

    def __init__(self, cls: type[Provider]):
        from core.plugin_api import PLUGIN_API_VERSION

        self.cls, self.plugin_api_version = cls, PLUGIN_API_VERSION

    @hookspecs.hookimpl
    def register_providers(self, register):
        register(self.cls)


@contextlib.contextmanager
def _studio(harness: Harness) -> Iterator[Any]:
    """A studio in a temporary home running the harness's provider through its own job runner."""
    from core.config import Settings
    from core.studio import Studio

    with tempfile.TemporaryDirectory(prefix="studio-kit-") as home:
        env = {**harness.secrets(), "STUDIO_LOAD_PLUGINS": ""}
        studio = Studio.open(settings=Settings.from_env(home=home, env=env), plugins=[_KitPlugin(harness.provider_class)],
                             retry_base=0.05)
        try:
            yield studio
        finally:
            studio.close()


def _run_job(harness: Harness, studio: Any, spec: ModelSpec, reference: bytes | None = None, **options: Any) -> Job:
    """Queue one portrait on `spec` through the facade and wait for it to end."""
    pid = harness.provider_class.id
    model = next((m for m in studio.models.list(modality=None) if m.provider_id == pid and m.model_key == spec.model_key),
                 None) or studio.models.add(pid, spec)
    character = studio.characters.create({"name": "Kit", "description": "A conformance test portrait."})
    if reference is not None:
        options.update(reference="upload", reference_key=studio.uploads.add(reference))
    [job] = studio.portraits.generate(character.id, {"model_id": model.id, "width": 512, "height": 512, **options})
    limit = getattr(harness, "poll_limit_s", POLL_LIMIT_S)
    try:
        return studio.jobs.wait(job.id, timeout=limit)[0]
    except StudioError:
        current = studio.jobs.get(job.id)
        raise AssertionError(f"the job did not end within {limit:g} s (stage {current.stage!r}, last error "
                             f"{current.last_error!r})") from None


def _completed(studio: Any, job: Job) -> Recipe:
    assert job.status == "completed", f"the job ended {job.status}: {job.last_error}"
    portrait = studio.portraits.get(job.result_id)
    image_from_bytes(studio.images.read(portrait.image_key))
    return portrait.recipe


def _no_secrets(provider: Provider, text: str, where: str) -> None:
    assert not any(v in text for v in provider.secret_values()), f"a key leaked into {where}"


def check_generation(harness: Harness) -> Recipe:
    """Text-to-image through the studio's engine (its retries included): the job completes with a
    readable image, the fake accepted exactly one job, and no key reaches the recipe. Returns the recipe."""
    provider = harness.provider_class(harness.secrets())
    spec = _model(harness, provider)
    assert spec is not None, "no text-to-image model to test (set harness.model_key)"
    with _studio(harness) as studio:
        before = harness.submissions()
        recipe = _completed(studio, _run_job(harness, studio, spec))
        assert harness.submissions() == before + 1, (
            f"one generation must be exactly one job at the service, it made {harness.submissions() - before}")
        _no_secrets(provider, repr(recipe), "the recipe")
    return recipe


def check_image_to_image(harness: Harness) -> None:
    """Image-to-image (when a default model takes a reference) through the engine: the reference
    image reaches the service, and the recipe names it by hash (`recorded_inputs`), never inline
    (no data URI, no bare base64)."""
    provider = harness.provider_class(harness.secrets())
    spec = _model(harness, provider, i2i=True)
    if spec is None or not spec.capabilities.supports_i2i:
        return
    with _studio(harness) as studio:
        job = _run_job(harness, studio, spec, reference=_tiny_png())
        recipe = _completed(studio, job)
        sent = studio.images.read(job.request.reference_key)
        assert harness.received(sent), "the reference image never reached the service (place_references?)"
        text = repr(recipe)
        encoded = base64.b64encode(sent).decode()
        assert encoded[:64] not in text and "base64," not in text, (
            "the recipe stores the reference inline (base64): record references by hash with recorded_inputs")


def check_seed(harness: Harness) -> None:
    """The seed a user asks for reaches the service (not checked where the harness says the service
    takes no seed: `takes_seed = False`). The recipe records the seed the service reports, if any."""
    if not getattr(harness, "takes_seed", True):
        return
    provider = harness.provider_class(harness.secrets())
    spec = _model(harness, provider)
    with _studio(harness) as studio:
        _completed(studio, _run_job(harness, studio, spec, seed=SEED))
    assert harness.received(str(SEED)), f"the seed {SEED} never reached the service: the provider ignores the seed"


def check_failure(harness: Harness) -> None:
    """A job the service fails ends `failed` (not running forever, not completed), with the
    service's message, after exactly one submission: poll() maps the service's failure state."""
    provider = harness.provider_class(harness.secrets())
    spec = _model(harness, provider)
    harness.fail_next(FAILURE)
    try:
        with _studio(harness) as studio:
            before = harness.submissions()
            try:
                job = _run_job(harness, studio, spec)
            except AssertionError as exc:
                raise AssertionError(f"the service failed the job but the studio never learnt it ({exc}): map the "
                                     "service's failure state to Progress(state='failed', error=...) in poll()") from None
    finally:
        harness.fail_next(None)
    assert job.status == "failed", f"the service failed the job, but it ended {job.status}"
    assert FAILURE in (job.last_error or ""), f"the job's error does not carry the service's message: {job.last_error!r}"
    assert harness.submissions() <= before + 1, "a job the service failed was submitted again"


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
    """Cancel of a submitted job reaches the service (one cancel request), unless the harness says the
    service has no cancel API (`has_cancel = False`); a ProviderError from cancel is allowed (best effort)."""
    provider = harness.provider_class(harness.secrets())
    if not provider.resumable:
        _run(provider, lambda: provider.cancel("any"))  # one-shot: nothing to cancel
        return
    spec = _model(harness, provider)
    before = harness.cancellations()

    async def work() -> None:
        submission = await provider.submit(_request(spec))
        try:
            await provider.cancel(submission.request_id)
        except ProviderError:
            pass

    _run(provider, work)
    if getattr(harness, "has_cancel", True):
        assert harness.cancellations() == before + 1, (
            "cancel() sent no cancel request to the service (which has a cancel API: harness.has_cancel)")


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
    try:
        result = _run(fresh, lambda: _complete(fresh, submission.request_id, request))
    except (AssertionError, ProviderError) as exc:
        raise AssertionError(f"a fresh provider instance could not finish the job from its request id ({exc}): "
                             "poll, result and cancel must need only the request id and the request") from None
    assert result.images, "the resumed job has no image"
    assert harness.submissions() == count, "resuming must not submit again"


def check_secrets(harness: Harness) -> None:
    """The key is among the values scrubbed from messages."""
    provider = harness.provider_class(harness.secrets())
    key = provider.api_key()
    if key:
        assert key in provider.secret_values(), "api_key() must be scrubbed"
        assert key not in provider.scrub(f"error: {key}"), "scrub must remove the key"


def check_key_stays_home(harness: Harness) -> None:
    """The key goes only to the provider's own origin: a request to another host (another loopback
    port, as a result or CDN URL would be) carries no secret, in any header."""
    provider = harness.provider_class(harness.secrets())
    secrets = provider.secret_values()
    if not secrets:
        return
    seen: list[bytes] = []
    with _Listener(seen) as url:
        assert not any(v in repr(provider.auth_headers_for(url)) for v in secrets), (
            "auth_headers_for() gives the key to another host")
        try:
            _run(provider, lambda: provider.request("GET", url + "/elsewhere.png"))
        except ProviderError:
            pass
    heard = b"".join(seen).decode("latin-1")
    assert heard, "the request to the other host never arrived"
    assert not any(v in heard for v in secrets), "the key was sent to a host other than the provider's"


class _Listener:
    """A loopback server on its own port that records the raw requests it gets and answers 404."""

    def __init__(self, seen: list[bytes]):
        import threading

        self.seen = seen
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.seen.append(data)
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc) -> None:
        self.sock.close()
        self.thread.join(5)


def check_health(harness: Harness) -> Health:
    """health() says "ok" with the harness's key, "rejected" with a wrong key (when the provider has
    key_env), and "unreachable" when the base URL points where nothing listens (when it has base_url_env)."""
    cls = harness.provider_class
    secrets = harness.secrets()
    provider = cls(secrets)
    health = _run(provider, provider.health)
    assert isinstance(health, Health), f"health() must return a Health, not {type(health).__name__}"
    assert health.state == "ok", f"health() with a valid key says {health.state!r}: {health.message}"
    if cls.key_env:
        wrong = cls({**secrets, **{n: "wrong-key-for-conformance" for n in cls.key_env if n in secrets}})
        state = _run(wrong, wrong.health).state
        assert state == "rejected", f"health() with a key the service refuses says {state!r}, not 'rejected'"
    if cls.base_url_env and cls.base_url_env in secrets:
        with socket.socket() as unused:  # bound, not listening: connections are refused
            unused.bind(("127.0.0.1", 0))
            away = cls({**secrets, cls.base_url_env: f"http://127.0.0.1:{unused.getsockname()[1]}"})
            state = _run(away, away.health).state
        assert state == "unreachable", f"health() with nothing listening at the base URL says {state!r}, not 'unreachable'"
    return health


def run_all(harness: Harness, plugin: Any = None) -> None:
    """Every check, in order."""
    if plugin is not None:
        registered = check_registration(plugin, harness.provider_class.id)
        assert registered is harness.provider_class, "the plugin registers a different class"
    for check in CHECKS:
        check(harness)


CHECKS = (check_catalog, check_secrets, check_key_stays_home, check_generation, check_image_to_image, check_seed,
          check_failure, check_errors, check_cancel, check_resume, check_health)
