"""The content origin (``NUGAT_CONTENT_URL``): a host of its own for package content, as api.nuget.org is
beside www.nuget.org.

Requests whose host is the content host may only read package content (the flat container and the
registration documents). They reach the read path without their ``Cookie`` header, their answers never
carry ``Set-Cookie``, and every other path answers 404 there: no page, no form, no session ever exists
on that origin, so a package file it serves has nothing to act on even if a browser ran it. (A 404
rather than a redirect to the main site: nothing on the content host sends a browser anywhere.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from nugat.fileheaders import LOCKED_DOWN
from nugat.proxies import TrustedProxies
from nugat.readpath import PREFIXES, PRIVATE_SOURCE
from nugat.settings import authority, host_authority

ASGIScope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[ASGIScope, Receive, Send], Awaitable[None]]

NOT_HERE = b"Not found: this host serves package content only"
_NOT_HERE_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    *LOCKED_DOWN,
    (b"cache-control", b"no-store"),
    (b"content-length", str(len(NOT_HERE)).encode()),
]


def request_authority(scope: ASGIScope, trust_forwarded: bool) -> str:
    """The host the client asked for (``X-Forwarded-Host`` from a trusted proxy, else ``Host``)."""
    host = forwarded = b""
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
        elif name == b"x-forwarded-host" and trust_forwarded:
            forwarded = value
    return host_authority((forwarded or host).decode("latin-1").split(",")[0])


class ContentOrigin:
    """ASGI middleware in front of the read path: package content only, and no cookies, on the content
    host; requests for any other host pass unchanged."""

    def __init__(
        self, app: ASGIApp, content_url: str, trust_forwarded: bool, proxies: TrustedProxies | None = None
    ) -> None:
        self.app = app
        self.content = authority(content_url)
        self.trust_forwarded = trust_forwarded
        self.proxies = proxies  # when given, X-Forwarded-Host is believed only from these peers

    def _authority(self, scope: ASGIScope) -> str:
        trusted = self.trust_forwarded
        if trusted and self.proxies is not None:
            peer = scope.get("client")
            trusted = peer is not None and self.proxies.trusts(peer[0])
        return request_authority(scope, trusted)

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._authority(scope) != self.content:
            await self.app(scope, receive, send)
            return
        if not scope.get("path", "").removeprefix(PRIVATE_SOURCE).startswith(PREFIXES):
            await send({"type": "http.response.start", "status": 404, "headers": _NOT_HERE_HEADERS})
            await send({"type": "http.response.body", "body": NOT_HERE})
            return
        cookieless = dict(scope)
        cookieless["headers"] = [(k, v) for k, v in scope["headers"] if k != b"cookie"]

        async def send_cookieless(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"set-cookie"
                ]
            await send(message)

        await self.app(cookieless, receive, send_cookieless)
