"""Page forms are bounded before anything is parsed: at most 64 KiB, no file parts, a few dozen fields.

Every POST of the web pages goes through one reader (nugat.web.formbody), before the CSRF check and
before a signed-out visitor is sent to the sign-in page. Raw sockets send exactly these bytes. The
server's TMPDIR is an empty folder of its own, which must stay empty; its peak memory may not grow by
10 MiB over all the oversized forms together.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostile.harness import RawResponse, raw_exchange, started
from hostile.test_bad_packages import worker_peak_rss
from support.server import NugatServer
from support.zips import MIB

FORM_LIMIT = 64 * 1024
FORM_TIMEOUT = 10  # nugat.web.formbody.FORM_TIMEOUT, to which up to half of it is added
PATHS = [
    "/signin",
    "/signup",
    "/signout",
    "/account/password",
    "/account/apikeys",
    "/account/apikeys/abc/edit",
    "/orgs/Contoso/members",
    "/packages/Some.Lib/owners",
    "/admin/prefixes",
]
TOO_LARGE = r"A page form is at most 64 KiB"
NO_FILES = r"Pages take no files"
URLENCODED = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NugatServer]:
    tmpdir = tmp_path_factory.mktemp("server-tmpdir")
    with started(tmp_path_factory, "forms", "sqlite", {"TMPDIR": str(tmpdir)}) as server:
        yield server
    assert list(tmpdir.iterdir()) == []


def server_tmpdir(server: NugatServer) -> Path:
    return Path(server.env["TMPDIR"])


def request(server: NugatServer, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {server.url.removeprefix('http://')}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def assert_page(resp: RawResponse, status: int, message: str) -> None:
    text = resp.body.decode("utf-8", "replace")
    assert resp.status == status, f"{resp.status}: {text[:300]}"
    assert re.search(message, text), text[:2000]


def stream(blocks: Iterator[bytes]) -> object:
    """Send ``blocks`` until the server answers and closes (bounded by the blocks given)."""

    def send(sock: socket.socket) -> None:
        try:
            for block in blocks:
                sock.sendall(block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: exactly what should happen

    return send


@pytest.fixture(scope="module")
def peak_before(server: NugatServer) -> int:
    """The server's peak memory once every page-form code path ran once (a refusal of each kind)."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    raw_exchange(server.url, request(server, "/signin", {**form, "Content-Length": "5"}, b"a=1&b"))
    raw_exchange(server.url, request(server, "/signin", {**form, "Content-Length": str(10**9)}))
    raw_exchange(server.url, request(server, "/signin", {**form, "Content-Length": "4000"}, b"a&" * 2000))
    return worker_peak_rss(server)


def test_a_form_declared_over_the_limit_is_refused_before_its_body(server: NugatServer) -> None:
    # The attack, 1,000 fields of 1 MiB, declares about 1 GiB; nothing of it is sent.
    for path in PATHS:
        for declared in (FORM_LIMIT + 1, 1000 * (MIB + 8), 2**63 - 1):
            headers = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(declared)}
            started_at = time.monotonic()
            resp = raw_exchange(server.url, request(server, path, headers), timeout=5)
            assert_page(resp, 413, TOO_LARGE)
            assert time.monotonic() - started_at < 2, path  # not waiting for a body


def test_a_chunked_form_is_counted_as_it_arrives(server: NugatServer, peak_before: int) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked"}
    field = b"password=" + b"a" * (MIB - 10) + b"&"
    for path in ("/signin", "/account/email"):
        blocks = (chunk(field) for _ in range(64))  # 64 MiB at most, if never answered
        resp = raw_exchange(server.url, request(server, path, headers), then=stream(blocks), timeout=30)
        assert_page(resp, 413, TOO_LARGE)
    grown_kb = worker_peak_rss(server) - peak_before
    assert grown_kb < 10 * 1024, f"the server's peak memory grew by {grown_kb} kB"


def test_a_file_part_is_refused_unread_and_nothing_reaches_the_disk(
    server: NugatServer, peak_before: int
) -> None:
    part = (
        b'--b\r\nContent-Disposition: form-data; name="csrf"\r\n\r\nx\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    block = b"\0" * MIB
    for path in ("/signin", "/signup", "/account/apikeys"):
        chunked = {"Content-Type": "multipart/form-data; boundary=b", "Transfer-Encoding": "chunked"}
        blocks = iter([chunk(part), *(chunk(block) for _ in range(64))])
        resp = raw_exchange(server.url, request(server, path, chunked), then=stream(blocks), timeout=30)
        assert_page(resp, 400, NO_FILES)
        small = part + b"tiny\r\n--b--\r\n"
        headers = {"Content-Type": "multipart/form-data; boundary=b", "Content-Length": str(len(small))}
        assert_page(raw_exchange(server.url, request(server, path, headers, small)), 400, NO_FILES)
        declared = {"Content-Type": "multipart/form-data; boundary=b", "Content-Length": str(2 << 30)}
        assert_page(raw_exchange(server.url, request(server, path, declared), timeout=5), 400, NO_FILES)
    assert list(server_tmpdir(server).iterdir()) == []
    assert not list((server.data_dir / "tmp").glob("upload-*"))
    grown_kb = worker_peak_rss(server) - peak_before
    assert grown_kb < 10 * 1024, f"the server's peak memory grew by {grown_kb} kB"


@pytest.mark.parametrize(
    ("content_type", "body", "status", "message"),
    [
        (
            "application/x-www-form-urlencoded",
            b"&".join(b"f%d=1" % i for i in range(1000)),
            400,
            "at most 32 fields",
        ),
        ("application/x-www-form-urlencoded", b"a&" * 33, 400, "at most 32 fields"),
        ("application/json", b'{"login": "alice"}', 400, "sent as application/x-www-form-urlencoded"),
        ("text/plain", b"login=alice", 400, "sent as application/x-www-form-urlencoded"),
    ],
    ids=["1,000 fields", "33 empty fields", "json", "text"],
)
def test_a_form_of_too_many_fields_or_another_type_is_refused(
    server: NugatServer, content_type: str, body: bytes, status: int, message: str
) -> None:
    headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
    for path in ("/signin", "/account/email"):
        assert_page(raw_exchange(server.url, request(server, path, headers, body)), status, message)


def test_a_form_within_the_bounds_is_read(server: NugatServer) -> None:
    """32 fields of a form up to the limit reach the CSRF check, which refuses this one."""
    body = b"&".join(b"f%d=" % i + b"a" * 2000 for i in range(31)) + b"&csrf=x"
    assert len(body) <= FORM_LIMIT
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(len(body))}
    assert_page(
        raw_exchange(server.url, request(server, "/signin", headers, body)), 403, "This form has expired"
    )


def test_a_stalled_form_gets_408(server: NugatServer) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "1000"}
    started_at = time.monotonic()
    resp = raw_exchange(server.url, request(server, "/signin", headers, b"login=alice"), timeout=30)
    assert_page(resp, 408, rf"^The form took too long: send it within {FORM_TIMEOUT} seconds$")
    assert FORM_TIMEOUT <= time.monotonic() - started_at < FORM_TIMEOUT * 1.5 + 2
