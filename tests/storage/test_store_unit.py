"""ImageStore details: options from the environment, error classification, the signed-URL cache, secrets."""
from __future__ import annotations

import errno

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from core import storage
from core.config import Settings, StorageSettings
from core.errors import StorageError
from core.storage import ImageStore, is_transient, key_kind, storage_options
from tests.storage.conftest import FAKE_SECRET, aws_env


def test_storage_options_come_from_the_usual_aws_settings(tmp_path):
    opts = storage_options("s3://bucket/prefix", StorageSettings.from_env({
        "AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}))
    assert opts["key"] == "AK" and opts["secret"] == "SK"
    assert opts["client_kwargs"] == {"region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:9000"}
    assert opts["endpoint_url"] == "http://127.0.0.1:9000"
    assert opts["config_kwargs"]["retries"] == {"total_max_attempts": 1, "mode": "standard"}  # the store retries
    assert storage_options("file:///tmp/x", StorageSettings.from_env({"AWS_ACCESS_KEY_ID": "AK"})) == {}
    settings = Settings.from_env(home=tmp_path / "h", env={"STUDIO_SIGN_EXPIRY": "900", "STUDIO_GC_GRACE_SECONDS": "60",
                                                     "STUDIO_UPLOAD_MAX_AGE": "120"})
    assert (settings.sign_expiry, settings.gc_grace_seconds, settings.upload_max_age) == (900, 60, 120)


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize("exc, transient", [
    (_client_error("SlowDown", 503), True),
    (_client_error("InternalError", 500), True),
    (_client_error("TooManyRequests", 429), True),
    (_client_error("RequestTimeout", 400), True),
    (_client_error("AccessDenied", 403), False),
    (_client_error("NoSuchBucket", 404), False),
    (ConnectionResetError(errno.ECONNRESET, "reset by peer"), True),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
    (TimeoutError("timed out"), True),
    (NotADirectoryError(errno.ENOTDIR, "not a directory"), False),
    (FileNotFoundError("gone"), False),
])
def test_transient_errors_are_told_apart(exc, transient):
    assert is_transient(exc) is transient
    wrapped = OSError(errno.EIO, "wrapped")
    wrapped.__cause__ = exc
    assert is_transient(wrapped) is transient  # s3fs translates ClientError and keeps it as the cause


def test_key_kinds():
    assert [key_kind(k) for k in ("u/portraits/c/j.png", "u/portraits/c/j.thumb.webp", "u/scenes/c/j.png",
                                  "u/references/abc.webp", "u/portraits/c/j.png.1a2b.part", "studio-check-1.txt")] == \
        ["portrait", "thumbnail", "scene", "reference", "partial", "other"]


def test_signed_urls_are_cached_until_80_percent_of_their_life(moto, monkeypatch):
    bucket = moto.new_bucket()
    url = f"s3://{bucket}/p"
    store = ImageStore(url, sign_expiry=100, **storage_options(url, StorageSettings.from_env(aws_env(moto.endpoint))))
    calls = []
    real_sign = store.fs.sign
    monkeypatch.setattr(store.fs, "sign", lambda *a, **kw: calls.append(a) or real_sign(*a, **kw))
    now = [1_000_000.0]
    monkeypatch.setattr(storage.time, "time", lambda: now[0])
    first = store.signed_url("u/a.png")
    assert store.signed_url("u/a.png") == first and len(calls) == 1
    now[0] += 79
    store.signed_url("u/a.png")
    assert len(calls) == 1
    now[0] += 2  # past 80 of 100 seconds: signed afresh
    store.signed_url("u/a.png")
    assert len(calls) == 2
    assert "X-Amz-Expires=100" in first
    store.sign_expiry = 0  # presigned URLs off: bytes are served instead
    assert store.signed_url("u/a.png") is None


def test_secrets_never_appear_in_errors(moto, tmp_path):
    url = "s3://bucket-that-is-not-there/p"
    env = aws_env(moto.endpoint)
    settings = Settings.from_env(home=tmp_path / "h", env={**env, "STUDIO_STORAGE_URL": url})
    with pytest.raises(StorageError) as err:
        ImageStore.from_settings(settings)
    assert FAKE_SECRET not in err.value.message and env["AWS_ACCESS_KEY_ID"] not in err.value.message
    store = ImageStore.from_settings(settings, check=False)
    assert StorageError(f"oops {FAKE_SECRET}").message == "oops ***"  # the store's credentials are masked everywhere
    assert FAKE_SECRET not in repr(store) and FAKE_SECRET not in repr(settings)
