"""ImageStore: image files under one fsspec URL, addressed by relative keys."""
from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from collections.abc import Iterator

import fsspec

from core.errors import StorageError

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}(/[A-Za-z0-9][A-Za-z0-9._-]{0,199}){0,9}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


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


def reference_key(owner: str, sha: str, ext: str) -> str:
    return f"{safe_segment(owner)}/references/{sha}.{ext}"


def thumbnail_key(image_key: str) -> str:
    return image_key.rsplit(".", 1)[0] + ".thumb.webp"


class ImageStore:
    """Read and write image files under a storage URL (`file://...`, `s3://bucket/prefix`, ...)."""

    def __init__(self, url: str, *, sign_expiry: int = 3600, **storage_options):
        self.url = url
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except (ImportError, ValueError) as exc:
            raise StorageError(f"cannot open storage {url!r}: {exc}") from None
        self.root = root.rstrip("/")
        self.local = "file" in _protocols(self.fs)
        self.sign_expiry = sign_expiry
        self._signed: dict[str, tuple[str, float]] = {}
        self._sign_lock = threading.Lock()
        if self.local:
            self.fs.makedirs(self.root, exist_ok=True)

    def path(self, key: str) -> str:
        return f"{self.root}/{check_key(key)}"

    def write(self, key: str, data: bytes) -> None:
        """Write all of `data` or nothing (local: temp file + rename; object stores: one PUT)."""
        path = self.path(key)
        try:
            if self.local:
                self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
                tmp = f"{path}.{uuid.uuid4().hex}.part"
                with self.fs.open(tmp, "wb") as fh:
                    fh.write(data)
                self.fs.mv(tmp, path)
            else:
                self.fs.pipe_file(path, data)
        except Exception as exc:  # noqa: BLE001 - every backend raises its own types
            raise StorageError(f"could not write {key}: {exc}") from exc

    def read(self, key: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(key))
        except FileNotFoundError:
            raise StorageError(f"image {key} is missing from storage") from None
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise StorageError(f"could not read {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self.path(key)))

    def delete(self, key: str) -> None:
        """Delete if present; safe to repeat."""
        try:
            self.fs.rm_file(self.path(key))
        except FileNotFoundError:
            pass
        except Exception as exc:  # noqa: BLE001
            raise StorageError(f"could not delete {key}: {exc}") from exc
        self._signed.pop(key, None)

    def keys(self, prefix: str = "") -> Iterator[tuple[str, int, float | None]]:
        """Every stored key below `prefix`, with size and modification time (epoch seconds)."""
        base = self.root + ("/" + prefix.strip("/") if prefix else "")
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return
        for path, info in found.items():
            key = path[len(self.root) + 1:] if path.startswith(self.root + "/") else path
            if key.endswith(".part"):
                continue
            yield key, int(info.get("size") or 0), _mtime(info)

    def signed_url(self, key: str) -> str | None:
        """A presigned URL on stores that make them (cached until shortly before expiry); None on local disk."""
        if self.local or not hasattr(self.fs, "sign"):
            return None
        now = time.time()
        with self._sign_lock:
            hit = self._signed.get(key)
            if hit and hit[1] > now:
                return hit[0]
        try:
            url = self.fs.sign(self.path(key), expiration=self.sign_expiry)
        except NotImplementedError:
            return None
        with self._sign_lock:
            self._signed[key] = (url, now + self.sign_expiry * 0.8)
        return url


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
