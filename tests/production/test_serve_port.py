"""``nugat serve`` on a port something already listens on refuses to start, with a clear message.

Its workers bind with ``SO_REUSEPORT`` (one port for N processes), and the kernel lets another process that
did so too share the port, splitting the connections between two servers: a second nugat started by
mistake on a live server's port would answer half its clients. So the port is first bound without it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.server import base_env, free_port, nugat_command, running_server

TAKEN = "is already in use by another process"


def serve(data_dir: Path, port: int, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``nugat serve`` on 127.0.0.1:``port``: what it printed and its exit, or a failure if it is still
    serving after ``timeout`` seconds (it and its workers are then killed)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        *nugat_command(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    env = base_env() | {"NUGAT_DATA_DIR": str(data_dir)}
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=data_dir,
        start_new_session=True,  # its workers too are killed by group below
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"nugat serve started on a port already taken:\n{out}\n{err}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.fixture
def held_port(request: pytest.FixtureRequest) -> Iterator[tuple[int, socket.socket]]:
    """A port a plain listening socket holds (``reuseport``: with SO_REUSEPORT, as a server's workers)."""
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if getattr(request, "param", "") == "reuseport":
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        yield port, listener


@pytest.mark.parametrize("held_port", ["plain", "reuseport"], indirect=True)
def test_a_port_another_socket_listens_on_is_refused(
    held_port: tuple[int, socket.socket], tmp_path: Path
) -> None:
    port, listener = held_port
    result = serve(tmp_path / "second", port)
    assert result.returncode != 0
    assert f"nugat: 127.0.0.1:{port} {TAKEN}" in result.stderr
    assert "Traceback" not in result.stderr and "nugat serving" not in result.stdout
    assert not (tmp_path / "second" / "nugat.db").exists()  # refused before touching anything
    with socket.create_connection(("127.0.0.1", port), timeout=5):  # the port's owner still gets them all
        accepted, _ = listener.accept()
        accepted.close()


def test_a_second_nugat_on_a_live_servers_port_is_refused_and_the_first_serves_on(tmp_path: Path) -> None:
    with running_server(tmp_path / "first", workers=2) as first:  # its own two workers share the port
        port = int(first.url.rsplit(":", 1)[1])
        result = serve(tmp_path / "second", port)
        assert result.returncode != 0
        assert f"nugat: 127.0.0.1:{port} {TAKEN}" in result.stderr
        for _ in range(20):  # every connection reaches the first server, none a second one
            assert httpx.get(first.source, timeout=10).status_code == 200
        assert first.process is not None and first.process.poll() is None
        # stopped, the server starts again on the same port at once (its closed connections do not hold it)
        first.stop()
        first.start()
        assert httpx.get(first.source, timeout=10).status_code == 200
