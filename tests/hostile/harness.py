"""What the hostile-input tests share: pushing raw bytes, raw HTTP, and proof that nothing was stored."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from support.server import NugatServer, running_server
from support.zips import MIB

DATABASES = ("sqlite", "postgres")

LIMIT = 2 * MIB  # NUGAT_MAX_PACKAGE_BYTES of the hostile server
IDLE_TIMEOUT = 2  # seconds without upload data before a push is dropped
UPLOAD_TIMEOUT = 5  # seconds an upload may take in all
HOSTILE_ENV = {
    "NUGAT_MAX_PACKAGE_BYTES": str(LIMIT),
    "NUGAT_UPLOAD_IDLE_TIMEOUT": str(IDLE_TIMEOUT),
    "NUGAT_UPLOAD_TIMEOUT": str(UPLOAD_TIMEOUT),
}


@contextlib.contextmanager
def started(
    tmp_path_factory: pytest.TempPathFactory, name: str, database: str, env: dict[str, str]
) -> Iterator[NugatServer]:
    """A server of a test module's own, with ``env``; one that does not start fails the test."""
    data_dir = tmp_path_factory.mktemp(f"{name}-{database}")
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running_server(data_dir, database, extra_env=env))
        except Exception as exc:  # a broken server or an unreachable PostgreSQL fails (never skips) tests
            pytest.fail(f"could not start nugat serve ({database}): {exc}", pytrace=False)
        yield server


# The server's own files in its data folder; anything else that appears there was written by a request.
SERVER_FILES = re.compile(
    r"^(server\.log|secret\.key|nugat\.db(-wal|-shm|-journal|\.catchup)?|tmp/metrics-\d+/.*)$"
)
PACKAGE_TABLES = ("package_registrations", "package_versions", "package_owners", "pending_uploads")


@dataclass(frozen=True)
class Snapshot:
    files: frozenset[str]
    rows: Mapping[str, int]


class Feed:
    """A running server, a key that may push anything, and ways to look at what the server stored."""

    def __init__(self, server: NugatServer, key: str) -> None:
        self.server = server
        self.key = key
        self.engine = sa.create_engine(server.db_url, pool_pre_ping=True)

    def close(self) -> None:
        self.engine.dispose()

    def push(
        self,
        body: bytes,
        *,
        key: str | None = None,
        multipart: bool = True,
        headers: Mapping[str, str] | None = None,
        address: str = "127.0.0.1",
    ) -> httpx.Response:
        """PUT a package as nuget.exe does (multipart, the .nupkg as first part) or as the raw body."""
        sent = {"X-NuGet-ApiKey": self.key if key is None else key, **(headers or {})}
        with client(address) as c:
            if multipart:
                files = {"package": ("package.nupkg", body, "application/octet-stream")}
                return c.put(f"{self.server.url}/api/v2/package", files=files, headers=sent)
            return c.put(f"{self.server.url}/api/v2/package", content=body, headers=sent)

    def rows(self, sql: str, **params: object) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql), params)]

    def snapshot(self) -> Snapshot:
        root = self.server.data_dir
        files = frozenset(
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file() and not SERVER_FILES.match(str(p.relative_to(root)))
        )
        counts = {t: int(self.rows(f"SELECT count(*) FROM {t}")[0][0]) for t in PACKAGE_TABLES}  # noqa: S608
        return Snapshot(files, counts)

    def temp_files(self) -> list[Path]:
        """Uploads in the temp folder (which also holds the live server's metrics)."""
        return sorted((self.server.data_dir / "tmp").glob("upload-*"))

    def assert_nothing_stored(self, before: Snapshot) -> None:
        """No file (blob, document, temp upload) and no row appeared since ``before``."""
        after = self.snapshot()
        assert after.files == before.files, f"new files: {sorted(after.files - before.files)}"
        assert after.rows == before.rows
        assert self.temp_files() == []
        assert after.rows["pending_uploads"] == 0

    def versions(self, package_id: str) -> list[str]:
        return [
            str(r[0])
            for r in self.rows(
                "SELECT v.version FROM package_versions v JOIN package_registrations r "
                "ON r.id = v.registration_id WHERE r.id_lower = :id ORDER BY v.id",
                id=package_id.lower(),
            )
        ]


def client(address: str = "127.0.0.1", timeout: float = 30) -> httpx.Client:
    """An HTTP client whose requests come from ``address`` (any 127.x.y.z: a distinct client address)."""
    # Plain HTTP to the loopback: no TLS context (building one costs ~50 ms per client).
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address, verify=False), timeout=timeout)


def assert_refusal(resp: httpx.Response, status: int, message: str) -> None:
    """A NuGet-style refusal: the status, the message in the body and in X-NuGet-Warning."""
    assert resp.status_code == status, f"{resp.status_code}: {resp.text[:500]}"
    assert re.search(message, resp.text), resp.text[:500]
    warning = resp.headers.get("x-nuget-warning", "")
    assert re.search(message, warning), f"X-NuGet-Warning: {warning!r}"


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def parse_response(data: bytes) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1."), f"not an HTTP response: {data[:200]!r}"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(lines[0].split()[1]), headers, body)


def raw_exchange(
    url: str,
    request: bytes,
    *,
    then: Callable[[socket.socket], None] | None = None,
    timeout: float = 15,
    address: str = "127.0.0.1",
) -> RawResponse:
    """Send ``request`` as-is (no normalization of any kind), run ``then``, read the answer until close."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout, source_address=(address, 0)) as sock:
        sock.sendall(request)
        if then is not None:
            then(sock)
        return parse_response(read_all(sock, timeout))


def read_all(sock: socket.socket, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return data


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
