"""ImageStore: image files under one fsspec URL, addressed by relative keys.

The same code serves local disk (`file://...`) and S3 (`s3://bucket/prefix` through s3fs, or
any S3-compatible store via `AWS_ENDPOINT_URL`). Writes are all-or-nothing (local: temp file
and rename; object stores: one PUT) and are retried with backoff on transient errors
(connection reset or refused, timeouts, 5xx, throttling). The store is the one retry layer:
s3fs's and botocore's own retries are turned off so the behaviour is predictable and visible.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import fsspec

from core import redaction
from core.errors import StorageError
from core.retry import backoff_delay

if TYPE_CHECKING:
    from core.config import Settings, StorageSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}(/[A-Za-z0-9][A-Za-z0-9._-]{0,199}){0,9}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CONTENT_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg", "jpg": "image/jpeg"}

# S3 error codes worth another try; any 5xx and 429 count as well.
TRANSIENT_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded", "RequestTimeout",
    "RequestTimeoutException", "InternalError", "ServiceUnavailable", "BandwidthLimitExceeded",
    "PriorRequestNotComplete", "TransientError",
}
TRANSIENT_ERRNOS = {errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EPIPE,
                    errno.EBUSY, errno.EAGAIN, errno.EHOSTUNREACH, errno.ENETUNREACH, getattr(errno, "EREMOTEIO", 121)}
AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken", "InvalidToken",
              "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem", "InvalidClientTokenId", "403"}
PROBE_PREFIX = "studio-check"
SIGN_CACHE_MAX = 20_000


def check_key(key: str) -> str:
    """Refuse keys that could leave the storage root: `..`, absolute paths, odd characters."""
    if not isinstance(key, str) or not _KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise StorageError(f"invalid storage key {key!r}: use letters, digits, '.', '_', '-' and '/' only, relative, without '..'")
    return key


def safe_segment(value: str) -> str:
    """A user id as one key segment (ids like e-mail addresses are hashed)."""
    if _SEGMENT.match(value) and ".." not in value:
        return value
    return "u-" + hashlib.sha256(value.encode()).hexdigest()[:20]


def portrait_key(owner: str, character_id: str, job_id: str) -> str:
    return f"{safe_segment(owner)}/portraits/{character_id}/{job_id}.png"


def scene_key(owner: str, character_id: str, job_id: str) -> str:
    return f"{safe_segment(owner)}/scenes/{character_id}/{job_id}.png"


def comparison_key(owner: str, character_id: str, job_id: str) -> str:
    return f"{safe_segment(owner)}/comparisons/{character_id}/{job_id}.png"


def result_key(kind: str, owner: str, character_id: str, job_id: str) -> str:
    """Where a job of this kind (portrait, scene, comparison) stores its image."""
    keyfn = {"portrait": portrait_key, "scene": scene_key, "comparison": comparison_key}[kind]
    return keyfn(owner, character_id, job_id)


def reference_key(owner: str, sha: str, ext: str) -> str:
    return f"{safe_segment(owner)}/references/{sha}.{ext}"


def thumbnail_key(image_key: str) -> str:
    return image_key.rsplit(".", 1)[0] + ".thumb.webp"


def key_kind(key: str) -> str:
    """What a key holds by the layout: portrait, scene, reference, thumbnail, partial or other."""
    if key.endswith(".part"):
        return "partial"
    if key.endswith(".thumb.webp"):
        return "thumbnail"
    parts = key.split("/")
    if len(parts) >= 3:
        return {"portraits": "portrait", "scenes": "scene", "references": "reference",
                "comparisons": "comparison"}.get(parts[1], "other")
    return "other"


def redact_url(url: str) -> str:
    """A storage URL fit for logs and reports (credentials in the URL are cut out)."""
    return re.sub(r"(^[a-z0-9+.-]+://)[^/@]*@", r"\1***@", url)


_BUCKET = re.compile(r"^[A-Za-z0-9._-]{1,255}$")  # botocore's own check of a bucket name


def url_problem(url: str) -> str | None:
    """What is wrong with a storage URL before any client is made from it (None when nothing is):
    credentials written into it (they would be taken for the bucket's name and shown back), or an S3
    bucket name botocore would refuse."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("s3", "s3a"):
        return None
    host = rest.split("/", 1)[0]
    if "@" in host:
        return (f"The storage URL {redact_url(url)} carries credentials; give S3 credentials in AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and the URL as s3://bucket/prefix.")
    if not _BUCKET.match(host):
        return (f"The storage URL {redact_url(url)} does not name an S3 bucket: write it as s3://bucket/prefix "
                "(a bucket name holds letters, digits, '.', '-' and '_').")
    return None


def storage_options(url: str, storage: "StorageSettings") -> dict[str, Any]:
    """fsspec options for `url` from the storage settings (S3: credentials, region, endpoint, timeouts)."""
    protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
    if protocol not in ("s3", "s3a"):
        return {}
    opts: dict[str, Any] = {"use_listings_cache": False, "skip_instance_cache": True}
    client_kwargs: dict[str, Any] = {}
    if storage.access_key_id and storage.secret_access_key:
        opts["key"], opts["secret"] = storage.access_key_id, storage.secret_access_key
        if storage.session_token:
            opts["token"] = storage.session_token
    elif storage.profile:
        opts["profile"] = storage.profile
    if storage.region:
        client_kwargs["region_name"] = storage.region
    if storage.endpoint_url:
        client_kwargs["endpoint_url"] = storage.endpoint_url
        opts["endpoint_url"] = storage.endpoint_url
    if client_kwargs:
        opts["client_kwargs"] = client_kwargs
    config: dict[str, Any] = {"retries": {"total_max_attempts": 1, "mode": "standard"}, "signature_version": "s3v4",
                              "connect_timeout": storage.connect_timeout, "read_timeout": storage.read_timeout}
    if storage.addressing_style:  # "path" for some S3-compatible stores
        config["s3"] = {"addressing_style": storage.addressing_style}
    opts["config_kwargs"] = config
    return opts


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: connection trouble, timeouts, 5xx, throttling."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ConnectionError, TimeoutError, socket.timeout)):
            return True
        code, status = _error_code(current)
        if code in TRANSIENT_CODES or (status is not None and (status >= 500 or status == 429)):
            return True
        if code in AUTH_CODES or code in ("NoSuchBucket", "NoSuchKey") or (status is not None and 400 <= status < 500):
            return False
        name = type(current).__name__
        if name in ("EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError",
                    "ProxyConnectionError", "HTTPClientError", "IncompleteRead", "ResponseParserError",
                    "ClientPayloadError", "ServerDisconnectedError", "ClientConnectionError", "ClientOSError",
                    "FSTimeoutError", "ResponseStreamingError"):
            return True
        if isinstance(current, OSError) and current.errno in TRANSIENT_ERRNOS and not isinstance(
                current, (FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError, FileExistsError)):
            return True
        current = current.__cause__ or current.__context__
    return False


def _error_code(exc: BaseException) -> tuple[str | None, int | None]:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None, None
    code = (response.get("Error") or {}).get("Code")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return (str(code) if code is not None else None), (int(status) if status else None)


def _find_code(exc: BaseException) -> tuple[str | None, int | None]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code, status = _error_code(current)
        if code or status:
            return code, status
        current = current.__cause__ or current.__context__
    return None, None


def _chain_names(exc: BaseException) -> set[str]:
    names, seen, current = set(), set(), exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        names.add(type(current).__name__)
        current = current.__cause__ or current.__context__
    return names


class ImageStore:
    """Read and write image files under a storage URL (`file://...`, `s3://bucket/prefix`, ...)."""

    def __init__(self, url: str, *, sign_expiry: int = 3600, write_attempts: int = 4, retry_base: float = 0.25,
                 retry_cap: float = 5.0, redact: tuple[str, ...] = (), **storage_options):
        self.url = url
        self.sign_expiry = int(sign_expiry)
        self.write_attempts = max(1, int(write_attempts))
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        redaction.register(redact)  # credentials this store sends: masked in every message, as all secrets are
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except (ImportError, ValueError, TypeError) as exc:
            raise StorageError(redaction.redact(f"cannot open storage {redact_url(url)!r}: {exc}")) from None
        if hasattr(self.fs, "retries"):
            self.fs.retries = 1  # s3fs: the store retries, with its own backoff
        self.root = root.rstrip("/")
        self.local = "file" in _protocols(self.fs)
        self.is_s3 = bool({"s3", "s3a"} & set(_protocols(self.fs)))
        self._signed: dict[tuple[str, str | None], tuple[str, float]] = {}
        self._sign_lock = threading.Lock()
        self.stats = {"write_retries": 0, "read_retries": 0, "writes": 0, "sign_failures": 0}
        if self.local:
            try:
                self.fs.makedirs(self.root, exist_ok=True)
            except OSError as exc:
                raise StorageError(self._explain(exc, "write")) from None

    @classmethod
    def from_settings(cls, settings: "Settings", url: str | None = None, *, check: bool = True) -> "ImageStore":
        """The store for `url` (default: the settings' storage URL) with options from the environment.

        With `check`, a startup check runs: a StorageError says what to fix when the bucket is
        missing, the credentials are refused or the endpoint cannot be reached.
        """
        url = url or settings.storage_url
        if problem := url_problem(url):
            raise StorageError(problem)
        storage = settings.storage
        secrets = tuple(v or "" for v in (storage.secret_access_key, storage.session_token, storage.access_key_id))
        store = cls(url, sign_expiry=settings.sign_expiry, write_attempts=storage.write_attempts,
                    retry_base=storage.retry_base, redact=secrets, **storage_options(url, storage))
        if check:
            store.check()
        return store

    # -- keys and paths ------------------------------------------------------------------
    def path(self, key: str) -> str:
        return f"{self.root}/{check_key(key)}"

    @property
    def display_url(self) -> str:
        return redact_url(self.url)

    @property
    def bucket(self) -> str | None:
        return self.root.split("/", 1)[0] if self.is_s3 else None

    # -- checks --------------------------------------------------------------------------
    def check(self) -> None:
        """Startup check: the store exists, accepts the credentials, and takes a write and a delete."""
        probe = f"{self.root}/{PROBE_PREFIX}-{uuid.uuid4().hex}.txt"
        stage = "list"
        try:
            if self.is_s3:
                bucket, _, prefix = self.root.partition("/")
                self._retry("check", lambda: self.fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=prefix, MaxKeys=1),
                            3, "read_retries")
            else:
                self.fs.makedirs(self.root, exist_ok=True)
            stage = "write"
            if self.local:
                with self.fs.open(probe, "wb") as fh:
                    fh.write(b"ok")
            else:
                self.fs.pipe_file(probe, b"ok")
            stage = "delete"
            self.fs.rm_file(probe)
        except Exception as exc:  # noqa: BLE001 - every backend raises its own types
            raise StorageError(self._explain(exc, stage)) from None

    def _explain(self, exc: BaseException, stage: str = "list") -> str:
        """A startup error that says what to do (never includes credentials)."""
        where = self.display_url
        code, status = _find_code(exc)
        names = _chain_names(exc)
        endpoint = getattr(self.fs, "endpoint_url", None) or (getattr(self.fs, "client_kwargs", {}) or {}).get("endpoint_url")
        if self.is_s3:
            bucket = self.bucket
            if code == "NoSuchBucket" or (status == 404 and code in (None, "404")):
                return (f"Storage check failed: the S3 bucket {bucket!r} does not exist"
                        f"{f' at {endpoint}' if endpoint else ''}. Create it (for example `aws s3 mb s3://{bucket}`) "
                        f"or point STUDIO_STORAGE_URL at an existing bucket (now {where}).")
            if stage != "list" and code == "AccessDenied":
                return (f"Storage check failed: S3 accepted the credentials but refused to {stage} objects in bucket "
                        f"{bucket!r} (AccessDenied). Allow s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject "
                        f"on {where} for these credentials.")
            if code in AUTH_CODES or status == 403 or isinstance(exc, PermissionError):
                return (f"Storage check failed: S3 refused the credentials for bucket {bucket!r} ({code or status or 'access denied'}). "
                        "Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys), "
                        "and that they may list, read, write and delete objects in the bucket.")
            if "NoCredentialsError" in names or "PartialCredentialsError" in names:
                return ("Storage check failed: no AWS credentials were found for S3. Set AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment of the studio.")
            if "ProfileNotFound" in names:
                return ("Storage check failed: the AWS profile named by AWS_PROFILE is not in the AWS config files. "
                        "Set AWS_PROFILE to a configured profile, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.")
            if "InvalidRegionError" in names:
                return ("Storage check failed: AWS_DEFAULT_REGION (or AWS_REGION) is not a region name; "
                        "set it to one such as us-east-1.")
            if isinstance(exc, ValueError) and "Invalid endpoint" in str(exc):
                return ("Storage check failed: AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3, STUDIO_S3_ENDPOINT_URL) is "
                        "not a URL; set it to one such as http://minio:9000, or unset it for AWS.")
            if is_transient(exc) or "EndpointConnectionError" in names:
                return (f"Storage check failed: cannot reach the S3 endpoint {endpoint or '(AWS default)'} for bucket {bucket!r}. "
                        "Check the network and AWS_ENDPOINT_URL (for S3-compatible stores such as MinIO) and AWS_DEFAULT_REGION.")
            return redaction.redact(f"Storage check failed for {where}: {type(exc).__name__}: {exc}. "
                               "Check STUDIO_STORAGE_URL and the AWS_* settings.")
        if isinstance(exc, PermissionError):
            return f"Storage check failed: the studio may not write to {where}. Fix the folder's permissions or set STUDIO_STORAGE_URL."
        return redaction.redact(f"Storage check failed for {where}: {type(exc).__name__}: {exc}. Check STUDIO_STORAGE_URL.")

    # -- retries -------------------------------------------------------------------------
    def _retry(self, what: str, fn: Callable[[], T], attempts: int, counter: str) -> T:
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001
                if attempt >= attempts or not is_transient(exc):
                    raise
                delay = backoff_delay(attempt, self.retry_base, self.retry_cap)
                self.stats[counter] += 1
                log.warning("storage: %s failed (attempt %d of %d), retrying in %.2fs: %s", what, attempt, attempts,
                            delay, redaction.redact(f"{type(exc).__name__}: {exc}"))
                time.sleep(delay)
        raise AssertionError("unreachable")

    # -- objects -------------------------------------------------------------------------
    def write(self, key: str, data: bytes) -> None:
        """Write all of `data` or nothing (local: temp file + rename; object stores: one PUT), with retries."""
        path = self.path(key)
        try:
            self._retry(f"write {key}", lambda: self._write_once(path, data), self.write_attempts, "write_retries")
        except Exception as exc:  # noqa: BLE001 - every backend raises its own types
            raise StorageError(redaction.redact(f"could not write {key}: {_describe(exc)}")) from exc
        self.stats["writes"] += 1

    def _write_once(self, path: str, data: bytes) -> None:
        if self.local:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            tmp = f"{path}.{uuid.uuid4().hex}.part"
            try:
                with self.fs.open(tmp, "wb") as fh:
                    fh.write(data)
                self.fs.mv(tmp, path)
            except BaseException:
                try:
                    self.fs.rm_file(tmp)
                except Exception:  # noqa: BLE001
                    pass
                raise
        elif self.is_s3:
            ext = path.rsplit(".", 1)[-1].lower()
            extra = {"ContentType": CONTENT_TYPES[ext]} if ext in CONTENT_TYPES else {}
            self.fs.pipe_file(path, data, **extra)
        else:
            self.fs.pipe_file(path, data)

    def read(self, key: str) -> bytes:
        path = self.path(key)
        try:
            return self._retry(f"read {key}", lambda: self.fs.cat_file(path), 2, "read_retries")
        except FileNotFoundError:
            raise StorageError(f"image {key} is missing from storage") from None
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise StorageError(redaction.redact(f"could not read {key}: {_describe(exc)}")) from exc

    def exists(self, key: str) -> bool:
        path = self.path(key)
        try:
            return bool(self._retry(f"check {key}", lambda: self.fs.exists(path), 2, "read_retries"))
        except Exception as exc:  # noqa: BLE001
            raise StorageError(redaction.redact(f"could not check {key}: {_describe(exc)}")) from exc

    def info(self, key: str) -> tuple[int, float | None] | None:
        """(size, modification time) of a stored key, or None when it is absent."""
        path = self.path(key)
        try:
            info = self._retry(f"stat {key}", lambda: self.fs.info(path), 2, "read_retries")
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001
            raise StorageError(redaction.redact(f"could not check {key}: {_describe(exc)}")) from exc
        return int(info.get("size") or 0), _mtime(info)

    def delete(self, key: str) -> None:
        """Delete if present; safe to repeat."""
        path = self.path(key) if not key.endswith(".part") else f"{self.root}/{key}"
        try:
            self._retry(f"delete {key}", lambda: self._delete_once(path), self.write_attempts, "write_retries")
        except Exception as exc:  # noqa: BLE001
            raise StorageError(redaction.redact(f"could not delete {key}: {_describe(exc)}")) from exc
        with self._sign_lock:
            for cache_key in [k for k in self._signed if k[0] == key]:
                self._signed.pop(cache_key, None)

    def _delete_once(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass

    def keys(self, prefix: str = "", *, include_partial: bool = False) -> Iterator[tuple[str, int, float | None]]:
        """Every stored key below `prefix`, with size and modification time (epoch seconds).

        Leftover temporary files of interrupted local writes (`*.part`) are listed only with
        `include_partial`.
        """
        base = self.root + ("/" + prefix.strip("/") if prefix else "")
        try:
            found = self._retry(f"list {prefix or '/'}", lambda: self.fs.find(base, detail=True), 3, "read_retries")
        except FileNotFoundError:
            return
        except Exception as exc:  # noqa: BLE001
            raise StorageError(redaction.redact(f"could not list {prefix or 'the store'}: {_describe(exc)}")) from exc
        for path, info in sorted(found.items()):
            if info.get("type") == "directory":
                continue
            key = path[len(self.root) + 1:] if path.startswith(self.root + "/") else path
            if key.endswith(".part") and not include_partial:
                continue
            yield key, int(info.get("size") or 0), _mtime(info)

    # -- display -------------------------------------------------------------------------
    @property
    def signs_urls(self) -> bool:
        return not self.local and self.sign_expiry > 0 and hasattr(self.fs, "sign")

    def signed_url(self, key: str, *, download_as: str | None = None) -> str | None:
        """A presigned URL on stores that make them (cached until 80% of its life); None on local disk.

        `download_as` asks the store to send the file as a download with that file name. None is
        also returned when signing fails, so callers fall back to reading the bytes.
        """
        if not self.signs_urls:
            return None
        now = time.time()
        cache_key = (key, download_as)
        with self._sign_lock:
            hit = self._signed.get(cache_key)
            if hit and hit[1] > now:
                return hit[0]
        extra = {}
        if download_as:
            safe = re.sub(r"[^A-Za-z0-9._-]+", "-", download_as)[:120] or "image"
            extra["ResponseContentDisposition"] = f'attachment; filename="{safe}"'
        try:
            url = self.fs.sign(self.path(key), expiration=self.sign_expiry, **extra)
        except NotImplementedError:
            return None
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001 - no credentials, bad region...: show bytes or a placeholder
            self.stats["sign_failures"] += 1
            log.warning("storage: could not sign a URL for %s: %s", key, redaction.redact(f"{type(exc).__name__}: {exc}"))
            return None
        with self._sign_lock:
            if len(self._signed) >= SIGN_CACHE_MAX:  # drop expired entries, then the oldest half
                self._signed = {k: v for k, v in self._signed.items() if v[1] > now}
                if len(self._signed) >= SIGN_CACHE_MAX:
                    self._signed = dict(sorted(self._signed.items(), key=lambda kv: kv[1][1])[SIGN_CACHE_MAX // 2:])
            self._signed[cache_key] = (url, now + self.sign_expiry * 0.8)
        return url

    def __repr__(self) -> str:
        return f"<ImageStore {self.display_url}>"


def _describe(exc: BaseException) -> str:
    code, status = _find_code(exc)
    text = f"{type(exc).__name__}: {exc}"
    if code and code not in text:
        text += f" ({code})"
    return text


def _protocols(fs) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)


def _mtime(info: dict) -> float | None:
    value = info.get("mtime") or info.get("LastModified") or info.get("created")
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return value.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
