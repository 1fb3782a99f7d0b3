"""At most ``NUGAT_CLIENT_REQUEST_LIMIT`` requests of one client address in flight in each process.

A request waiting for its body (a page form, a push) costs a coroutine and about 45 KB; one address that
trickles thousands of bodies a byte at a time would hold that many, and when their timeouts all fall in
the same second, the server answers thousands at once while a normal visitor waits. Past the limit, a
request of that address is answered 429 at once, unread. The read path (``nugat.readpath``) answers from
memory and never waits for a client, so it sits in front of this layer and pays nothing for it.

The trusted proxies themselves (``NUGAT_TRUSTED_PROXIES``, the loopback by default) are never limited:
without ``NUGAT_TRUST_FORWARDED`` every client of a proxy has its address.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

ASGIScope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[ASGIScope, Receive, Send], Awaitable[None]]


class ClientLimit:
    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        address_of: Callable[[ASGIScope], str],
        exempt: Callable[[str], bool],
    ) -> None:
        self.app = app
        self.limit = limit
        self.address_of = address_of
        self.exempt = exempt
        self.in_flight: dict[str, int] = {}

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0:
            await self.app(scope, receive, send)
            return
        address = self.address_of(scope)
        count = self.in_flight.get(address, 0)
        if count >= self.limit and not self.exempt(address):
            await _refuse(send, address)
            return
        self.in_flight[address] = count + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self.in_flight[address] - 1
            if left:
                self.in_flight[address] = left
            else:
                del self.in_flight[address]


async def _refuse(send: Send, address: str) -> None:
    message = f"Too many requests at once from {address}; retry later".encode("ascii", "replace")
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(message)).encode()),
                (b"retry-after", b"1"),
                (b"x-nuget-warning", message),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": message})
