"""Small helpers the protocol handlers share: base URLs, client addresses and NuGet-style errors."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from nugat.services import ServiceError, TooManyRequests
from nugat.settings import Settings

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
    settings = request.app.state.core.settings
    if settings.public_url:
        return str(settings.public_url)
    trusted = settings.trust_forwarded
    h = request.headers
    return base_url_from(
        request.url.scheme,
        h.get("host"),
        h.get("x-forwarded-proto") if trusted else None,
        h.get("x-forwarded-host") if trusted else None,
    )


def content_base(request: Request) -> str:
    """The base URL of package content (flat container, registration): ``NUGAT_CONTENT_URL`` when set,
    else the feed's own."""
    content_url: str | None = request.app.state.core.settings.content_url
    return content_url or base_url(request)


def host_vary(settings: Settings) -> str:
    """The ``Vary`` of answers whose URLs are built from the request (empty when a fixed URL is set):
    a shared cache must not give one host's URLs to another."""
    if settings.documents_url:
        return ""
    return "Host, X-Forwarded-Host, X-Forwarded-Proto" if settings.trust_forwarded else "Host"


def client_address(request: Request) -> str:
    if request.app.state.core.settings.trust_forwarded:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return request.client.host if request.client else "unknown"


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


def json_response(data: object, status_code: int = 200) -> Response:
    return JSONResponse(data, status_code=status_code, headers={"cache-control": "no-cache"})
