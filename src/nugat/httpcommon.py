"""Request helpers the protocol handlers and the web pages share: base URLs, client addresses, safe
log and header text, and NuGet-style errors."""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from nugat.proxies import TrustedProxies
from nugat.readpath import FEED_PREFIX
from nugat.services import ServiceError, TooManyRequests
from nugat.services.readers import ANONYMOUS, ReadView
from nugat.settings import Settings

log = logging.getLogger("nugat")
_refusals = logging.getLogger("nugat.protocol")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_HOST_RE = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def base_url_from(
    scheme: str, host: str | None, forwarded_proto: str | None, forwarded_host: str | None
) -> str:
    """The feed's absolute base URL, as the client sees it (forwarded values only when trusted)."""
    scheme = (forwarded_proto or scheme).split(",")[0].strip().lower()
    host = (forwarded_host or host or "localhost").split(",")[0].strip()
    if scheme not in ("http", "https"):
        scheme = "http"
    if not _HOST_RE.match(host):
        host = "localhost"
    return f"{scheme}://{host}"


def base_url(request: Request) -> str:
    """The feed's base URL; on the credentialed source (``readpath.PRIVATE_SOURCE``) with its path."""
    settings = request.app.state.core.settings
    prefix: str = getattr(request.state, FEED_PREFIX, "")
    if settings.public_url:
        return str(settings.public_url) + prefix
    trusted = forwarded_trusted(request)
    h = request.headers
    base = base_url_from(
        request.url.scheme,
        h.get("host"),
        h.get("x-forwarded-proto") if trusted else None,
        h.get("x-forwarded-host") if trusted else None,
    )
    return base + prefix


def content_base(request: Request) -> str:
    """The base URL of package content (flat container, registration): ``NUGAT_CONTENT_URL`` when set,
    else the feed's own."""
    content_url: str | None = request.app.state.core.settings.content_url
    return content_url + getattr(request.state, FEED_PREFIX, "") if content_url else base_url(request)


def host_vary(settings: Settings) -> str:
    """The ``Vary`` of answers whose URLs are built from the request (empty when a fixed URL is set):
    a shared cache must not give one host's URLs to another. Package content's URLs (``content_base``)."""
    return url_vary(settings, settings.documents_url)


def url_vary(settings: Settings, fixed: str | None) -> str:
    """``host_vary`` of answers whose URLs start with ``fixed`` when it is set (``NUGAT_PUBLIC_URL`` for
    ``base_url``), else with the request's host."""
    if fixed:
        return ""
    return "Host, X-Forwarded-Host, X-Forwarded-Proto" if settings.trust_forwarded else "Host"


def _peer(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def forwarded_trusted(request: Request) -> bool:
    """Whether the request's X-Forwarded-* headers are believed: ``NUGAT_TRUST_FORWARDED=true`` and the
    direct peer is one of ``NUGAT_TRUSTED_PROXIES``."""
    core = request.app.state.core
    return bool(core.settings.trust_forwarded) and bool(core.proxies.trusts(_peer(request)))


def client_address(request: Request) -> str:
    """The address throttles and the audit log see: the peer's, or behind a trusted proxy the rightmost
    ``X-Forwarded-For`` address that is not a trusted proxy (the part a client writes is never believed)."""
    core = request.app.state.core
    trust_forwarded, proxies = core.settings.trust_forwarded, core.proxies
    if not trust_forwarded and not _warned_off and "x-forwarded-for" in request.headers:
        _warn_off(_peer(request), proxies)
    return scope_client_address(request.scope, trust_forwarded, proxies)


def scope_client_address(
    scope: MutableMapping[str, Any], trust_forwarded: bool, proxies: TrustedProxies
) -> str:
    """``client_address`` of an ASGI scope."""
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    if not trust_forwarded:
        return peer
    forwarded = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
    if forwarded and not proxies.trusts(peer):
        _warn_untrusted(peer)
    return proxies.client(peer, forwarded)[:64]


_warned: set[str] = set()
_warned_off = False


def _warn_off(peer: str, proxies: TrustedProxies) -> None:
    """Say once that a trusted proxy's X-Forwarded-For is ignored: all its clients share its address."""
    global _warned_off
    if proxies.trusts(peer):
        _warned_off = True
        log.warning(
            "ignoring X-Forwarded-For from the proxy %s: NUGAT_TRUST_FORWARDED is off, so its clients share "
            "its address (and its throttles)",
            one_line(peer),
        )


def _warn_untrusted(peer: str) -> None:
    """Say once per peer (up to 16) that its X-Forwarded-For is ignored: a proxy missing from the list."""
    if peer not in _warned and len(_warned) < 16:
        _warned.add(peer)
        log.warning(
            "ignoring X-Forwarded-For from %s: not in NUGAT_TRUSTED_PROXIES (add your proxy's address)",
            one_line(peer),
        )


def one_line(text: str) -> str:
    """``text`` on one line with control characters escaped: safe in a log line or a header.

    Messages quote what clients sent (ids, versions from the URL); a raw CR/LF would forge log lines,
    a NUL would make the header unsendable.
    """
    return _CONTROL_RE.sub(lambda m: f"\\x{ord(m[0]):02x}", " ".join(text.split()))


def warning_header(message: str) -> str:
    """X-NuGet-Warning value: one line of ASCII, at most 512 characters.

    Any other character is escaped (``\\u043e``): clients decode header bytes in different ways, and
    for a look-alike id the escape shows exactly which character is not what it seems.
    """
    return one_line(message).encode("ascii", "backslashreplace").decode("ascii")[:512]


def nuget_error(exc: ServiceError) -> Response:
    """A refusal the NuGet client shows well: the reason in the body and in X-NuGet-Warning."""
    headers = {"X-NuGet-Warning": warning_header(exc.message)}
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    return PlainTextResponse(exc.message, status_code=exc.status, headers=headers)


async def protocol_refusal(request: Request, exc: Exception) -> Response:
    """The one answer to a ``ServiceError`` a handler lets through (the pages show theirs themselves, see
    ``web.pages.page``): logged with the operation (the endpoint's name), then ``nuget_error``."""
    assert isinstance(exc, ServiceError)
    operation = getattr(request.scope.get("endpoint"), "__name__", "request")
    logging.getLogger("nugat.publish").info(
        "%s refused (%s): %s", operation, exc.status, one_line(exc.message)
    )
    return nuget_error(exc)


def json_response(data: object, status_code: int = 200) -> Response:
    return JSONResponse(data, status_code=status_code, headers={"cache-control": "no-cache"})


def read_view(request: Request) -> ReadView:
    """What the request may read, as ``readgate`` decided it (anonymous on routes it does not guard)."""
    view: ReadView = getattr(request.state, "read_view", ANONYMOUS)
    return view
