"""Loopback ports for test servers, bound once and handed over (a uniquely named module: several test folders
have a conftest).

A port found free, released and bound again later can be taken by anything in between. So:
- an in-process server gets a socket that stays bound for the server's whole life (`held_socket`);
- a server in a child process is told port 0 and the port it listens on is read back (`listening_port`);
- a URL where nothing listens keeps its port bound, not listening, while it is used (`refused_port`).
"""
from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

LOOPBACK = "127.0.0.1"


def held_socket() -> socket.socket:
    """A TCP socket bound to a fresh loopback port and not listening: connections are refused, and the
    kernel hands the port to no other socket while this one is open. `listen()` makes it accept;
    `shutdown(SHUT_RDWR)` turns a listening socket back into a refusing one that still holds the port (a
    server's outage and restart).

    Linux releases a port picked by bind(port 0) when such a socket stops listening; a port bound by number
    stays. So a first socket picks the port and this one binds it by number (both SO_REUSEADDR and neither
    listening, so one of them holds the port throughout) before the first is closed. SO_REUSEADDR stays on,
    as on any server's socket, so it can listen again while connections it accepted linger; a socket picking
    a port (bind to 0, or connect) never gets one that is bound like this.
    """
    picker = socket.socket()
    sock = socket.socket()
    try:
        picker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        picker.bind((LOOPBACK, 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(picker.getsockname())
    except BaseException:
        sock.close()
        raise
    finally:
        picker.close()
    return sock


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port where connections are refused, for as long as the block runs."""
    with held_socket() as sock:
        yield sock.getsockname()[1]


def listening_port(proc: subprocess.Popen, timeout: float = 60.0) -> int:
    """The loopback TCP port that `proc` (a server told to listen on port 0) listens on, once it listens."""
    deadline = time.monotonic() + timeout
    watched = psutil.Process(proc.pid)
    while True:
        try:
            ports = {c.laddr.port for c in watched.net_connections(kind="tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr.ip in (LOOPBACK, "::ffff:127.0.0.1")}
        except psutil.NoSuchProcess:
            ports = set()
        if len(ports) == 1:
            return ports.pop()
        if len(ports) > 1:
            raise RuntimeError(f"process {proc.pid} listens on several ports: {sorted(ports)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {proc.pid} did not listen on {LOOPBACK} within {timeout} s")
        try:  # check again every 50 ms, returning at once if the process ends
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        raise RuntimeError(f"process {proc.pid} exited with {proc.returncode} before listening")
