"""The real NuGet client with a content origin (``NUGAT_CONTENT_URL``, issue 10, item 1): it pushes to
the feed's URL and restores package content from the content host, which it finds in the service index.

The content host is ``localhost`` on another port: a small TCP relay to the same ``nugat serve``,
which notes the paths asked through it (proof that the client went there for the content).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.nugetexe import NuGetClient, installed_packages
from support.server import NugatServer, free_port, running_server, user_key

pytestmark = pytest.mark.e2e

BuildPackage = Callable[..., Path]
_REQUEST_LINE = re.compile(rb"(?:GET|HEAD) (\S+) HTTP/1\.[01]\r\n")


@contextlib.contextmanager
def relay(target_port: int) -> Iterator[tuple[int, list[str]]]:
    """A TCP relay on 127.0.0.1 to ``target_port``; yields its port and the paths requested through it."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    paths: list[str] = []
    stop = threading.Event()

    def pump(src: socket.socket, dst: socket.socket, note: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if note:
                    paths.extend(m.decode() for m in _REQUEST_LINE.findall(data))
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            upstream = socket.create_connection(("127.0.0.1", target_port), timeout=60)
            client.settimeout(60)
            for src, dst, note in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=pump, args=(src, dst, note), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], paths
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@pytest.fixture(scope="module")
def content_feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NugatServer, str, list[str]]]:
    port = free_port()
    with relay(port) as (content_port, paths):
        content = f"http://localhost:{content_port}"
        env = {"NUGAT_CONTENT_URL": content}
        with running_server(tmp_path_factory.mktemp("content-e2e"), extra_env=env, port=port) as server:
            yield server, content, paths


def test_nuget_exe_restores_from_the_content_host(
    content_feed: tuple[NugatServer, str, list[str]],
    nuget: NuGetClient,
    build_package: BuildPackage,
    tmp_path: Path,
) -> None:
    server, content, paths = content_feed
    key = user_key(server, "origin", ["push"])
    assert nuget.push(build_package("Origin.Lib", "1.0.0"), key, server.source).ok
    app = build_package("Origin.App", "2.0.0", [("Origin.Lib", "[1.0.0, )")])
    assert nuget.push(app, key, server.source).ok
    assert paths == [], "pushes go to the feed's own URL"

    index = server.get_json("/v3/index.json")
    base = next(r["@id"] for r in index["resources"] if r["@type"] == "PackageBaseAddress/3.0.0")
    assert base == f"{content}/v3/flatcontainer/"

    result = nuget.install("Origin.App", "2.0.0", source=server.source, output_dir=tmp_path / "out")
    assert result.ok, result.output
    assert installed_packages(tmp_path / "out") == {"Origin.App.2.0.0", "Origin.Lib.1.0.0"}
    asked = set(paths)
    assert "/v3/flatcontainer/origin.lib/1.0.0/origin.lib.1.0.0.nupkg" in asked, paths
    assert "/v3/flatcontainer/origin.app/2.0.0/origin.app.2.0.0.nupkg" in asked, paths
    assert any(p.startswith("/v3/registration") for p in asked), paths
    assert not any(p.startswith(("/v3/index.json", "/api/")) for p in asked), paths
