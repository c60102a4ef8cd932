"""The provider base class: what a provider declares and the plumbing every provider shares.

A provider subclass declares its id, display name, key variables, base URL and default
models, and implements either `generate` (one-shot) or `submit`/`poll`/`result`/`cancel`
(resumable). HTTP, error classification, Retry-After, image download (with the image limits,
a deadline and checked redirects) and secret redaction live here so no provider repeats them.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import email.utils
import io
import ipaddress
import json
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx
from PIL import Image

from core import redaction
from core.config import clean_secret
from core.errors import ImageTooLarge, ProviderError
from core.images import MAX_IMAGE_BYTES, read_header
from core.images import sha256  # noqa: F401 - part of the plugin API
from core.models import Capabilities, ModelSpec

# Tunings every provider reads (seconds): status poll interval, request timeout, result download deadline.
SHARED_SETTINGS = ("STUDIO_POLL_INTERVAL", "STUDIO_PROVIDER_TIMEOUT", "STUDIO_DOWNLOAD_DEADLINE")
PollState = Literal["queued", "running", "completed", "failed", "canceled"]
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
MESSAGE_LIMIT = 500  # characters of a provider's error body kept in a message


@dataclass
class ReferenceImage:
    """A reference image handed to a provider: the bytes, and a URL when the store can sign one."""

    data: bytes
    content_type: str
    sha256: str
    url: str | None = None

    def data_uri(self) -> str:
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode()}"

    def base64(self) -> str:
        """The image as bare base64 (no `data:` prefix), for services that take it so; record it by
        hash all the same (`recorded_inputs` replaces the mapped field)."""
        return base64.b64encode(self.data).decode()


@dataclass
class GenerationRequest:
    """One image to generate, as the engine hands it to a provider."""

    job_id: str
    model_key: str
    prompt: str
    width: int = 1024
    height: int = 1024
    seed: int = 0
    references: list[ReferenceImage] = field(default_factory=list)
    capabilities: Capabilities = field(default_factory=Capabilities)
    input_defaults: dict[str, Any] = field(default_factory=dict)
    safety_checker: bool = True
    content_rating: str = "sfw"

    @property
    def mode(self) -> str:
        return "i2i" if self.references else "txt2img"


@dataclass
class Submission:
    """What `submit` returns: the provider's request id and the exact inputs sent."""

    request_id: str
    inputs: dict[str, Any]


@dataclass
class Progress:
    """What `poll` returns. `percent` only when the provider reports real progress."""

    state: PollState
    queue_position: int | None = None
    percent: float | None = None
    message: str | None = None
    error: str | None = None


@dataclass
class GeneratedImage:
    """A result image. A provider that drew the image itself may also hand over the decoded
    `pixels`, which spares the studio decoding the bytes again for the thumbnail."""

    data: bytes
    content_type: str
    width: int
    height: int
    pixels: Image.Image | None = field(default=None, repr=False)


@dataclass
class GenerationResult:
    images: list[GeneratedImage]
    inputs: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    provider_ms: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    cost: float | None = None  # USD, where the provider's answer states what the request cost


@dataclass
class Health:
    state: Literal["ok", "rejected", "unreachable", "not_configured", "unknown"]
    message: str

    def __post_init__(self) -> None:
        self.message = redaction.redact(self.message)


class Provider:
    """Base class of every image provider. Subclass it and register it through the hook."""

    id: ClassVar[str]
    display_name: ClassVar[str]
    key_env: ClassVar[tuple[str, ...]] = ()
    secret_env: ClassVar[tuple[str, ...]] = ()
    base_url_env: ClassVar[str | None] = None
    setting_env: ClassVar[tuple[str, ...]] = ()
    default_base_url: ClassVar[str | None] = None
    resumable: ClassVar[bool] = False
    preview: ClassVar[bool] = False
    default_concurrency: ClassVar[int] = 4
    poll_interval: ClassVar[float] = 1.0
    timeout: ClassVar[float] = 60.0
    max_inline_reference_bytes: ClassVar[int] = 256 * 1024
    download_deadline: ClassVar[float] = 120.0
    max_redirects: ClassVar[int] = 3

    def __init__(self, secrets: Mapping[str, str] | None = None):
        declared = self.declared_env()
        self._secrets = {k: v for k, v in (secrets or {}).items() if k in declared}
        # The keys this provider sends: stripped; one with a control character stops the start.
        for name in (*self.key_env, *self.secret_env):
            if value := self._secrets.get(name):
                redaction.register([value])
                self._secrets[name] = clean_secret(name, value)
        redaction.register(self.secret_values())
        self._clients: dict[int, httpx.AsyncClient] = {}
        # Deployment (and test) overrides of the class defaults.
        self.poll_interval = _float(self.secret("STUDIO_POLL_INTERVAL"), type(self).poll_interval)
        self.timeout = _float(self.secret("STUDIO_PROVIDER_TIMEOUT"), type(self).timeout)
        self.download_deadline = _float(self.secret("STUDIO_DOWNLOAD_DEADLINE"), type(self).download_deadline)

    # -- declaration -----------------------------------------------------------------
    @classmethod
    def declared_env(cls) -> frozenset[str]:
        """The settings this provider may see: its keys (`key_env`, `secret_env`), its base URL
        variable, the other variables it lists in `setting_env`, and the shared provider tunings.
        The studio hands a provider only these; the rest of the environment (other providers' keys,
        storage credentials) is not in its mapping."""
        return frozenset({*cls.key_env, *cls.secret_env, *cls.setting_env, *SHARED_SETTINGS} | {cls.base_url_env} - {None})

    def default_models(self) -> list[ModelSpec]:
        """The models this provider seeds into the catalog."""
        return []

    def secret(self, name: str) -> str | None:
        return self._secrets.get(name) or None

    def api_key(self) -> str | None:
        """The key from the first of `key_env` that is set."""
        for name in self.key_env:
            if self.secret(name):
                return self.secret(name)
        return None

    def is_configured(self) -> bool:
        return not self.key_env or self.api_key() is not None

    @property
    def base_url(self) -> str | None:
        override = self.secret(self.base_url_env) if self.base_url_env else None
        return (override or self.default_base_url or "").rstrip("/") or None

    def auth_headers(self) -> dict[str, str]:
        key = self.api_key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def auth_headers_for(self, url: str) -> dict[str, str]:
        """Auth headers for one URL: only the base URL's origin gets the key (a URL from a response
        pointing elsewhere, e.g. a CDN, never does)."""
        base = self.base_url
        return self.auth_headers() if base is None or _origin(url) == _origin(base) else {}

    def configured_hosts(self) -> set[tuple[str, int]]:
        """The host:port pairs this provider is configured to reach (its base URL's): a redirect or a
        result URL may point there even when it is a local or private address."""
        return {host_port(self.base_url)} if self.base_url else set()

    # -- the work (override one style) -------------------------------------------------
    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """One-shot providers: generate and return the image(s)."""
        raise NotImplementedError

    async def submit(self, request: GenerationRequest) -> Submission:
        """Resumable providers: start the work, return the provider's request id."""
        raise NotImplementedError

    async def poll(self, request_id: str, request: GenerationRequest) -> Progress:
        raise NotImplementedError

    async def result(self, request_id: str, request: GenerationRequest) -> GenerationResult:
        raise NotImplementedError

    async def cancel(self, request_id: str) -> None:
        """Ask the provider to stop; providers without a cancel API leave this as is."""

    async def health(self) -> Health:
        """A cheap call telling whether the key is accepted."""
        if not self.is_configured():
            return Health("not_configured", f"Set {' or '.join(self.key_env)} to use {self.display_name}.")
        return Health("unknown", "This provider has no health check.")

    async def probe(self, method: str, url: str, **kwargs) -> Health:
        """A health check from one cheap call: 401/403 rejected, no answer unreachable, else ok."""
        if not self.is_configured():
            return await Provider.health(self)
        try:
            await self.request(method, url, **kwargs)
        except ProviderError as exc:
            if exc.kind == "auth":
                return Health("rejected", exc.message)
            if exc.kind in ("unreachable", "timeout", "connection"):
                return Health("unreachable", exc.message)
            if exc.status is not None and exc.status < 500:
                return Health("ok", f"{self.display_name} answered; the key is accepted.")
            return Health("unreachable", exc.message)
        return Health("ok", f"{self.display_name} answered; the key is accepted.")

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()

    # -- shared plumbing -----------------------------------------------------------------
    def secret_values(self) -> list[str]:
        """Every secret this provider was given: its keys and every secret-named setting."""
        names = {*self.key_env, *self.secret_env} | {n for n in self._secrets if redaction.is_secret_name(n)}
        values = [v for n in names if (v := self.secret(n)) and len(v) >= redaction.MIN_LENGTH]
        key = self.api_key()
        return values + [key] if key and len(key) >= redaction.MIN_LENGTH else values

    def scrub(self, text: str) -> str:
        """`text` without any secret (see `core.redaction`, which every message passes through)."""
        return redaction.redact(text)

    @property
    def client(self) -> httpx.AsyncClient:
        """One client per provider and event loop, with timeouts."""
        loop_id = id(asyncio.get_running_loop())
        client = self._clients.get(loop_id)
        if client is None:
            client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=10.0),
                follow_redirects=False,  # `_send` follows them, checking every hop
                headers={"User-Agent": "character-studio"},
            )
            self._clients[loop_id] = client
        return client

    async def request(self, method: str, url: str, *, retry_safe: bool = True, **kwargs) -> httpx.Response:
        """Send a request; turn transport failures and error statuses into ProviderError.

        `retry_safe=False` marks a call that must not be repeated blindly once it may have
        reached the server (a create without idempotency): its transport errors after the
        request was sent are permanent, so the engine looks the job up instead of resending.
        """
        if not url.startswith(("http://", "https://")):
            url = f"{self.base_url}/{url.lstrip('/')}"
        headers = {**self.auth_headers_for(url), **kwargs.pop("headers", {})}
        try:
            first = self.client.build_request(method, url, headers=headers, **kwargs)
            response = await self._send(first, trusted=self.configured_hosts() | {host_port(first.url)})
        except httpx.ConnectError as exc:
            raise ProviderError(self.scrub(f"{self.display_name} is unreachable: {exc}"), retryable=True, kind="unreachable") from None
        except httpx.TimeoutException as exc:
            sent = not isinstance(exc, httpx.ConnectTimeout)
            message = f"{self.display_name} timed out ({type(exc).__name__})"
            if sent and not retry_safe:
                message += f"; the request may have reached {self.display_name}, so it is not sent again"
            raise ProviderError(self.scrub(message), retryable=retry_safe or not sent, kind="timeout") from None
        except httpx.TransportError as exc:
            message = f"{self.display_name} connection failed: {exc}"
            if not retry_safe:
                message += f"; the request may have reached {self.display_name}, so it is not sent again"
            raise ProviderError(self.scrub(message), retryable=retry_safe, kind="connection") from None
        if response.status_code >= 400:
            raise self.classify(response)
        return response

    def classify(self, response: httpx.Response) -> ProviderError:
        """Turn an error response into a retryable or permanent ProviderError."""
        status = response.status_code
        message = self.error_message(response)
        retryable = status in RETRYABLE_STATUS
        kind = {401: "auth", 403: "auth", 404: "not_found", 422: "validation", 400: "validation", 429: "rate_limited"}.get(status)
        if status >= 500:
            kind = "server"
        return ProviderError(
            self.scrub(f"{self.display_name} error {status}: {message}"),
            retryable=retryable, status=status, retry_after=self.retry_after(response), kind=kind,
        )

    def error_message(self, response: httpx.Response) -> str:
        """The provider's own message from an error body (JSON `detail`/`error`/`message`, or text),
        redacted and then cut to MESSAGE_LIMIT characters."""
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return redaction.clip(response.text.strip(), MESSAGE_LIMIT) or response.reason_phrase
        return redaction.clip(_message_from(body) or "", MESSAGE_LIMIT) or response.reason_phrase

    async def _send(self, request: httpx.Request, *, trusted: set[tuple[str, int]], stream: bool = False) -> httpx.Response:
        """Send, following at most `max_redirects` redirects; every hop's target is checked first
        (`_check_target`), and a redirect's body is never read."""
        for _ in range(self.max_redirects + 1):
            response = await self.client.send(request, stream=stream)
            if not response.is_redirect:
                return response
            await response.aclose()
            request = response.next_request
            await self._check_target(request.url, trusted)
            for name in self.auth_headers():  # the key goes where auth_headers_for says, nowhere else
                request.headers.pop(name, None)
            request.headers.update(self.auth_headers_for(str(request.url)))
        raise ProviderError(f"{self.display_name} redirected more than {self.max_redirects} times (a redirect loop?)",
                            retryable=False, kind="redirect")

    async def _check_target(self, url: httpx.URL, trusted: set[tuple[str, int]]) -> None:
        """Refuse a URL a response pointed to unless it is on a configured host or every address of
        its host is public: no request to loopback, private or link-local services on our behalf."""
        if url.scheme not in ("http", "https"):
            raise ProviderError(f"{self.display_name} pointed to a {url.scheme or 'relative'} URL; only http(s) is followed",
                                retryable=False, kind="redirect")
        host, port = host_port(url)
        if (host, port) in trusted:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise ProviderError(f"{self.display_name} pointed to {host}, which does not resolve",
                                retryable=True, kind="unreachable") from None
        for *_, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if not address.is_global:
                raise ProviderError(f"{self.display_name} pointed to {host} ({address}), a local or private address "
                                    "that is not the provider's configured host; not followed",
                                    retryable=False, kind="redirect")

    @staticmethod
    def retry_after(response: httpx.Response) -> float | None:
        """Seconds to wait from `retry-after-ms`, `Retry-After` (seconds or a date) or `ratelimit-reset`;
        a value that is none of these is ignored (None), never an error."""
        h = response.headers
        if ms := h.get("retry-after-ms"):
            try:
                return max(0.0, float(ms) / 1000)
            except ValueError:
                pass
        for name in ("retry-after", "ratelimit-reset"):
            value = h.get(name)
            if not value:
                continue
            try:
                return max(0.0, float(value))
            except ValueError:
                pass
            if name == "retry-after":  # an HTTP date; anything else is ignored
                try:
                    parsed = email.utils.parsedate_to_datetime(value)
                except (TypeError, ValueError, IndexError):
                    continue
                if parsed.tzinfo is None:  # a date without a zone is GMT (RFC 9110)
                    parsed = parsed.replace(tzinfo=datetime.timezone.utc)
                return max(0.0, parsed.timestamp() - time.time())
        return None

    async def download(self, source: str, *, max_bytes: int = MAX_IMAGE_BYTES, origin: str | None = None) -> GeneratedImage:
        """Fetch a result image from a URL, a data URI or bare base64, and check it is an image within
        the limits uploads have (bytes, and pixels read from the header before any decoding).

        A URL must be on a configured host (or `origin`'s, the configured URL the result came from),
        or on a public address; so must every redirect (at most `max_redirects`); the whole download
        must finish within `download_deadline` seconds.
        """
        if source.startswith("data:"):
            try:
                header, payload = source.split(",", 1)
            except ValueError:
                raise ProviderError("malformed data URI in the result", retryable=False) from None
            data = _b64(payload, max_bytes) if ";base64" in header else payload.encode()
        elif source.startswith(("http://", "https://")):
            trusted = self.configured_hosts() | ({host_port(origin)} if origin else set())
            data = await self._fetch(source, max_bytes, trusted)
        else:
            data = _b64(source, max_bytes)
        if len(data) > max_bytes:
            raise _too_large(max_bytes)
        return image_from_bytes(data)

    async def _fetch(self, url: str, max_bytes: int, trusted: set[tuple[str, int]]) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.download_deadline):
                request = self.client.build_request("GET", url, headers=self.auth_headers_for(url))
                await self._check_target(request.url, trusted)
                response = await self._send(request, trusted=trusted, stream=True)
                try:
                    if response.status_code >= 400:
                        await response.aread()
                        raise self.classify(response)
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise _too_large(max_bytes)
                        chunks.append(chunk)
                finally:
                    await response.aclose()
        except TimeoutError:
            # A slow-drip body: retrying costs nothing where the result can be fetched again.
            raise ProviderError(f"downloading the result took longer than {self.download_deadline:g} s",
                                retryable=self.resumable, kind="timeout") from None
        except httpx.TransportError as exc:
            raise ProviderError(f"downloading the result failed: {type(exc).__name__}: {exc}", retryable=True,
                                kind="connection") from None
        return b"".join(chunks)

    async def reference_value(self, ref: ReferenceImage) -> str:
        """A reference as the provider takes it: signed URL, else a small data URI, else an upload."""
        if ref.url:
            return ref.url
        if len(ref.data) <= self.max_inline_reference_bytes:
            return ref.data_uri()
        return await self.upload_reference(ref)

    async def upload_reference(self, ref: ReferenceImage) -> str:
        """Providers with an upload API override this; the default inlines the image anyway."""
        return ref.data_uri()

    def recorded_inputs(self, sent: dict[str, Any], request: GenerationRequest) -> dict[str, Any]:
        """The inputs as the recipe records them: what was sent, references named by hash, not inlined."""
        out = dict(sent)
        mapping = request.capabilities.reference
        if mapping and request.references and mapping.field in out:
            refs = [f"sha256:{r.sha256}" for r in request.references[: mapping.limit]]
            out[mapping.field] = refs if mapping.form == "list" else refs[0]
        return out

    async def place_references(self, payload: dict[str, Any], request: GenerationRequest) -> dict[str, Any]:
        """Put the request's references into the field the model's mapping names."""
        mapping = request.capabilities.reference
        if not request.references:
            return payload
        if mapping is None:
            raise ProviderError(f"model {request.model_key} does not take a reference image", retryable=False, kind="validation")
        values = [await self.reference_value(r) for r in request.references[: mapping.limit]]
        payload[mapping.field] = values if mapping.form == "list" else values[0]
        return payload


def image_sources(output: Any) -> list[str]:
    """Image references in a model's output: URLs, data URIs or bare base64, in the common shapes.

    Accepts a string, a list, `{"images": [...]}` (items strings or objects with `url`, `data` or
    `image`), `{"image": ...}`, `{"url": ...}` and `{"output": ...}`.
    """
    if isinstance(output, str):
        return [output] if output else []
    if isinstance(output, list):
        return [src for item in output for src in image_sources(item)]
    if isinstance(output, dict):
        for key in ("images", "image", "output", "image_url", "url", "data", "b64_json"):
            if key in output and output[key]:
                found = image_sources(output[key])
                if found:
                    return found
    return []


def _origin(url: str) -> tuple[str, str]:
    parts = httpx.URL(url)
    return parts.scheme, parts.netloc.decode()


def host_port(url: str | httpx.URL) -> tuple[str, int]:
    """A URL's (host, port), the port filled in from the scheme: what `configured_hosts` holds."""
    url = httpx.URL(url)
    return url.host.lower(), url.port or (443 if url.scheme == "https" else 80)


def _too_large(max_bytes: int) -> ProviderError:
    return ProviderError(f"the result image is larger than the limit of {max_bytes // (1024 * 1024)} MB",
                         retryable=False, kind="too_large")


def _float(value: str | None, default: float) -> float:
    try:
        return float(value) if value else default
    except ValueError:
        return default


def _b64(payload: str, max_bytes: int) -> bytes:
    if len(payload) * 3 // 4 > max_bytes + 3:  # refused before decoding
        raise _too_large(max_bytes)
    try:
        return base64.b64decode(payload.strip(), validate=False)
    except (binascii.Error, ValueError):
        raise ProviderError("the result is not valid base64 image data", retryable=False) from None


def image_from_bytes(data: bytes) -> GeneratedImage:
    """Check bytes are a PNG/JPEG/WebP image within the image limits (bytes, and pixels read from the
    header, so a decompression bomb is refused undecoded) and describe them."""
    try:
        header = read_header(data)
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
    except ImageTooLarge as exc:
        raise ProviderError(f"the provider's result is too large: {exc.message}", retryable=False, kind="too_large") from None
    except Exception:  # noqa: BLE001 - InvalidImage, and the many types Pillow raises for bad data
        raise ProviderError("the provider's result is not a readable image", retryable=False) from None
    if header.format not in IMAGE_FORMATS:
        raise ProviderError(f"the provider returned an unsupported image format ({header.format})", retryable=False)
    return GeneratedImage(data=data, content_type=IMAGE_FORMATS[header.format], width=header.width, height=header.height)


def _message_from(body: Any) -> str | None:
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        parts = [_message_from(x) for x in body]
        return "; ".join(p for p in parts if p) or None
    if isinstance(body, dict):
        if "msg" in body:
            loc = ".".join(str(x) for x in body.get("loc", []) if x != "body")
            return f"{loc}: {body['msg']}" if loc else str(body["msg"])
        for key in ("error", "detail", "message", "title"):
            if key in body and body[key]:
                found = _message_from(body[key])
                if found:
                    return found
    return None

