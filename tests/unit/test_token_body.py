"""``nugat.protocol.token``'s body reader: bounded in size (declared or counted) and in time."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.requests import Request

from nugat.protocol import token
from support.asgi import run

HEADERS = [(b"content-type", b"application/json"), (b"user-agent", b"nuget/login-action")]


def request(chunks: list[bytes], headers: list[tuple[bytes, bytes]], stall: bool = False) -> Request:
    pending = list(chunks)

    async def receive() -> dict[str, Any]:
        if pending:
            return {"type": "http.request", "body": pending.pop(0), "more_body": bool(pending) or stall}
        await asyncio.Event().wait()  # a client that sends nothing more
        raise AssertionError("unreachable")

    scope = {"type": "http", "method": "POST", "path": "/api/v2/token", "headers": HEADERS + headers}
    return Request(scope, receive)


def refusal(req: Request) -> tuple[int, str]:
    with pytest.raises(token._Refused) as caught:
        run(token._body(req))
    return caught.value.status, caught.value.message


def test_a_well_formed_body_is_read() -> None:
    body = json.dumps({"username": " alice ", "tokenType": "ApiKey"}).encode()
    assert run(token._body(request([body[:10], body[10:]], []))) == ("alice", False)


def test_a_stalled_body_gets_408_within_the_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token, "BODY_TIMEOUT", 0.2)
    req = request([b'{"username":'], [(b"content-length", b"100")], stall=True)
    assert refusal(req) == (408, "The request body took too long: send it within 0.2 seconds")


def test_a_body_over_the_limit_is_refused_declared_or_counted() -> None:
    declared = request([], [(b"content-length", str(token.BODY_LIMIT + 1).encode())], stall=True)
    assert refusal(declared) == (413, f"The request body is larger than {token.BODY_LIMIT} bytes")
    counted = request([b" " * 10_000, b" " * 10_000], [])
    assert refusal(counted) == (413, f"The request body is larger than {token.BODY_LIMIT} bytes")
    assert refusal(request([], [(b"content-length", b"-1")]))[0] == 413
