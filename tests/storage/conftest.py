"""Storage fixtures: moto's S3 server on 127.0.0.1, a backend parameter (local | s3), helpers."""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
import requests
from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from core.config import Settings
from core.studio import Studio
from tests.conftest import DB_BACKENDS, make_settings
from tests.ports import held_socket

logging.getLogger("werkzeug").setLevel(logging.ERROR)

FAKE_KEY = "AKIASTUDIOTESTKEY000"
FAKE_SECRET = "studio-test-secret-never-shown-0123456789"
REGION = "us-east-1"


class MotoServer:
    """moto's S3 server on loopback that can be stopped (port closed) and started again on the same port.

    It runs in this process, so buckets and objects survive a stop/start, like a real store's outage. Its
    port is bound once and held throughout: while stopped, connections are refused and nothing else can
    take the port.
    """

    def __init__(self):
        self._socket = held_socket()
        self.port = self._socket.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._app = DomainDispatcherApplication(create_backend_app)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "MotoServer":
        self._socket.listen(128)
        self._server = make_server("127.0.0.1", self.port, self._app, threaded=True,
                                   request_handler=MotoRequestHandler, fd=self._socket.fileno())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: the listening socket is shut down (clients get "connection refused") but stays bound."""
        if self._server is not None:
            self._server.shutdown()
            self._thread.join()
            self._socket.shutdown(socket.SHUT_RDWR)
            self._server.server_close()  # the server's duplicate of the socket
            self._server = None

    def close(self) -> None:
        self.stop()
        self._socket.close()

    @property
    def running(self) -> bool:
        return self._server is not None

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=FAKE_KEY,
                            aws_secret_access_key=FAKE_SECRET, region_name=REGION)

    def new_bucket(self) -> str:
        name = f"studio-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def aws_env(endpoint: str, **extra: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": FAKE_KEY, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET, "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint, "STUDIO_STORAGE_RETRY_BASE": "0.01", **extra}


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """botocore must never find real credentials or config, nor ask an instance metadata service."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.close()


@dataclass
class Backend:
    """How a test gets a studio on one storage backend."""

    name: str
    tmp: Path
    moto: MotoServer | None = None
    bucket: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    opened: list[Studio] = field(default_factory=list)

    @property
    def storage_url(self) -> str:
        if self.name == "s3":
            return f"s3://{self.bucket}/studio"
        return (self.tmp / "images").as_uri()

    def settings(self, home: Path | None = None, **env: str) -> Settings:
        return make_settings(home or self.tmp / "home", {"STUDIO_STORAGE_URL": self.storage_url, **self.env, **env})

    def open(self, home: Path | None = None, env: dict[str, str] | None = None, **kwargs) -> Studio:
        studio = Studio.open(settings=self.settings(home, **(env or {})), retry_base=kwargs.pop("retry_base", 0.01), **kwargs)
        self.opened.append(studio)
        return studio

    def object_keys(self) -> list[str]:
        """What is really in the store, listed without the studio's code."""
        if self.name == "s3":
            resp = self.moto.client().list_objects_v2(Bucket=self.bucket, Prefix="studio/")
            return sorted(o["Key"][len("studio/"):] for o in resp.get("Contents", []))
        root = self.tmp / "images"
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []

    def raw_read(self, key: str) -> bytes:
        if self.name == "s3":
            return self.moto.client().get_object(Bucket=self.bucket, Key=f"studio/{key}")["Body"].read()
        return (self.tmp / "images" / key).read_bytes()

    def raw_delete(self, key: str) -> None:
        if self.name == "s3":
            self.moto.client().delete_object(Bucket=self.bucket, Key=f"studio/{key}")
        else:
            (self.tmp / "images" / key).unlink()


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, db_env: dict[str, str]) -> Iterator[Backend]:
    if request.param == "s3":
        server: MotoServer = request.getfixturevalue("moto")
        b = Backend("s3", tmp_path, moto=server, bucket=server.new_bucket(), env={**aws_env(server.endpoint), **db_env})
    else:
        b = Backend("local", tmp_path, env=dict(db_env))
    yield b
    for studio in b.opened:
        studio.close()


def http_get(url: str) -> requests.Response:
    assert url.startswith("http://127.0.0.1:"), url  # nothing leaves the machine
    return requests.get(url, timeout=10)


def wait_until(condition: Callable[[], bool], studio: Studio, timeout: float = 30.0, what: str = "condition") -> None:
    """Block until `condition()` holds, waking on every job change (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        studio.engine.runner.wait_for_change(0.2)


@pytest.fixture(params=DB_BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    """Every test here that touches the database runs on DuckDB and on PostgreSQL."""
    return request.param
