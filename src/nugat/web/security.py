"""Security headers on the answers of the routed application (pages, static files, publish).

The stored V3 documents are served before routing (``nugat.readpath``) and do not pass through here.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nugat.httpcommon import base_url

# No inline script or style: the pages load /static/site.js and /static/site.css only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
# On answers over https (TLS here, a trusted proxy's X-Forwarded-Proto, or an https NUGAT_PUBLIC_URL): a
# browser that saw the site once never tries it over plain http again, where a network attacker could show
# it a sign-in form of their own. The site's host only: other hosts of its domain are not this server's.
STRICT_TRANSPORT_SECURITY = (b"strict-transport-security", b"max-age=31536000")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = HEADERS
        if scope.get("scheme") == "https" or base_url(Request(scope)).startswith("https:"):
            headers = [*HEADERS, STRICT_TRANSPORT_SECURITY]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((name, value) for name, value in headers if name not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
