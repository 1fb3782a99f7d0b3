"""Hostile uploads: bodies over the size limit, malformed multipart, slow, stalled and abandoned uploads.

Each is answered with a precise 4xx (when the client is still there to read it) and leaves no temp file.
Raw sockets send exactly these bytes: an HTTP library would fix or refuse most of them.
"""

from __future__ import annotations

import re
import socket
import time

import pytest

from hostile.harness import IDLE_TIMEOUT, LIMIT, UPLOAD_TIMEOUT, Feed, RawResponse, raw_exchange, wait_until
from support.zips import incompressible, package

LIMIT_MESSAGE = r"^The package is larger than the 2 MB limit$"


def put(feed: Feed, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [
        "PUT /api/v2/package HTTP/1.1",
        f"Host: {feed.server.url.removeprefix('http://')}",
        f"X-NuGet-ApiKey: {feed.key}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def assert_answer(resp: RawResponse, status: int, message: str) -> None:
    text = resp.body.decode("utf-8", "replace")
    assert resp.status == status, f"{resp.status}: {text[:300]}"
    assert re.search(message, text), text[:300]
    assert re.search(message, resp.headers.get("x-nuget-warning", ""))


def assert_no_upload_left(feed: Feed) -> None:
    wait_until(lambda: feed.temp_files() == [], 5, "the temp upload to be removed")
    assert feed.rows("SELECT count(*) FROM pending_uploads") == [(0,)]


def assert_no_server_error(feed: Feed) -> None:
    log = feed.server.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "Exception in ASGI application" not in log, feed.server.log_tail()
    assert feed.server.get("/health").status_code == 200


@pytest.mark.parametrize("content_type", ["application/octet-stream", "multipart/form-data; boundary=b"])
def test_declared_size_over_the_limit_is_refused_before_the_body_is_read(
    feed: Feed, content_type: str
) -> None:
    for declared in (LIMIT + 64 * 1024 + 1, 10**12, 2**63 - 1):
        # No body is sent at all: a server waiting for it would answer 408 after the idle timeout.
        resp = raw_exchange(
            feed.server.url, put(feed, {"Content-Type": content_type, "Content-Length": str(declared)})
        )
        assert_answer(resp, 413, LIMIT_MESSAGE)
    # Past 64 bits the HTTP layer itself refuses the header.
    resp = raw_exchange(
        feed.server.url, put(feed, {"Content-Type": content_type, "Content-Length": str(2**64)})
    )
    assert resp.status == 400
    assert feed.temp_files() == []


@pytest.mark.parametrize("multipart", [False, True])
def test_chunked_body_over_the_limit_is_refused_while_streaming(feed: Feed, multipart: bool) -> None:
    content_type = "multipart/form-data; boundary=b" if multipart else "application/octet-stream"
    head = put(feed, {"Content-Type": content_type, "Transfer-Encoding": "chunked"})
    prefix = b'--b\r\nContent-Disposition: form-data; name="package"; filename="p.nupkg"\r\n\r\n'
    block = incompressible(64 * 1024)

    def stream(sock: socket.socket) -> None:
        sent = 0
        try:
            if multipart:
                sock.sendall(chunk(prefix))
            while sent < 3 * LIMIT:  # bounded: stops at 3x the limit even if never answered
                sock.sendall(chunk(block))
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: exactly what should happen

    resp = raw_exchange(feed.server.url, head, then=stream)
    assert_answer(resp, 413, LIMIT_MESSAGE)
    assert_no_upload_left(feed)


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("multipart/form-data; boundary=b", b"--b--\r\n", r"^The request has no package: send the \.nupkg"),
        ("multipart/form-data", b"--b--\r\n", r"^The multipart body has no boundary$"),
        (
            "multipart/form-data; boundary=b",
            b"--b\r\nthis is not a part header\r\n\r\n",
            r"^The multipart body is malformed",
        ),
        ("application/octet-stream", b"", r"^The request body is empty: send a \.nupkg$"),
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--b--\r\n',
            r"^The file is not a valid zip archive",
        ),
    ],
    ids=["no part", "no boundary", "malformed part", "empty body", "text part instead of a file"],
)
def test_push_without_a_package_is_refused(feed: Feed, content_type: str, body: bytes, message: str) -> None:
    before = feed.snapshot()
    resp = raw_exchange(
        feed.server.url, put(feed, {"Content-Type": content_type, "Content-Length": str(len(body))}, body)
    )
    assert_answer(resp, 400, message)
    feed.assert_nothing_stored(before)


def test_stalled_upload_times_out_and_leaves_nothing(feed: Feed) -> None:
    before = feed.snapshot()
    body = package("Stalled.Pkg")
    start = time.monotonic()
    # Declares the whole body, sends a third of it, then waits (for at most twice the idle timeout).
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(body))}
    resp = raw_exchange(
        feed.server.url, put(feed, headers, body[: len(body) // 3]), timeout=2 * IDLE_TIMEOUT + 5
    )
    assert_answer(resp, 408, rf"^The upload stalled: no data for {IDLE_TIMEOUT} seconds$")
    assert IDLE_TIMEOUT <= time.monotonic() - start < IDLE_TIMEOUT + 8
    feed.assert_nothing_stored(before)


def test_trickling_upload_is_cut_at_the_total_timeout(feed: Feed) -> None:
    before = feed.snapshot()
    head = put(feed, {"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"})

    def trickle(sock: socket.socket) -> None:
        # A byte every half second keeps clear of the idle timeout; bounded in count and time.
        deadline = time.monotonic() + UPLOAD_TIMEOUT + 5
        try:
            while time.monotonic() < deadline:
                sock.sendall(chunk(b"P"))
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            pass

    start = time.monotonic()
    resp = raw_exchange(feed.server.url, head, then=trickle, timeout=UPLOAD_TIMEOUT + 10)
    assert_answer(resp, 408, rf"^The upload took longer than {UPLOAD_TIMEOUT} seconds$")
    assert UPLOAD_TIMEOUT <= time.monotonic() - start < UPLOAD_TIMEOUT + 6
    feed.assert_nothing_stored(before)


@pytest.mark.parametrize("chunked", [False, True])
def test_abandoned_upload_leaves_nothing(feed: Feed, chunked: bool) -> None:
    before = feed.snapshot()
    abandoned = "push abandoned: the client disconnected during the upload"
    seen = feed.server.log_path.read_text().count(abandoned)
    version = "2.0.0" if chunked else "1.0.0"
    body = package("Abandoned.Pkg", version, payload=incompressible(512 * 1024))
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(len(body))}
    half = body[: len(body) // 2]
    host, port = feed.server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(put(feed, {"Content-Type": "application/octet-stream", **framing}))
        sock.sendall(chunk(half) if chunked else half)
        wait_until(lambda: feed.temp_files() != [], 5, "the upload to start")
    # The client is gone mid-body: the server notices it (not a stall) and drops the upload.
    wait_until(lambda: feed.temp_files() == [], IDLE_TIMEOUT + 5, "the temp upload to be removed")
    feed.assert_nothing_stored(before)
    assert feed.server.log_path.read_text().count(abandoned) == seen + 1
    assert_no_server_error(feed)
    assert feed.push(package("Abandoned.Pkg", version)).status_code == 201
