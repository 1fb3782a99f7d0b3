"""Routes of the web pages, their static files and the favicon; the site's "Not found" page for a
browser at an address no route has (a NuGet client, or any path of the feed, still gets the plain
answer it always got)."""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from nugat.readpath import FEED_PREFIX
from nugat.web import (
    account,
    activity,
    admin,
    apikeys,
    gallery,
    orgs,
    owners,
    publishing,
    recovery,
    twofactor,
)
from nugat.web.pages import Visitor, page, render

STATIC = Path(__file__).parent / "static"
# Paths of the feed and of the server's own probes: their answers are for NuGet clients and tools.
PROTOCOL_PATHS = ("/v3", "/api", "/private", "/health", "/metrics", "/read-access")
_STATUS = "nugat.missing_status"
NOT_FOUND = "There is no page at this address. Check it, or search for a package."


async def favicon(request: Request) -> Response:
    """Browsers ask every site for ``/favicon.ico``: a 16, 32 and 48 px icon."""
    return FileResponse(
        STATIC / "favicon.ico", media_type="image/x-icon", headers={"cache-control": "public, max-age=86400"}
    )


routes: list[BaseRoute] = [
    *owners.routes,  # before gallery's /packages/{id}/{version}
    *gallery.routes,
    *account.routes,
    *recovery.routes,
    *twofactor.routes,
    *apikeys.routes,
    *publishing.routes,
    *orgs.routes,
    *activity.routes,
    *admin.routes,
    Route("/favicon.ico", favicon, methods=["GET", "HEAD"]),
    Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
]


def _for_a_browser(request: Request) -> bool:
    """A browser's GET of a page address: never one of the feed (``/private/...`` included) or a probe."""
    path = request.url.path
    return (
        request.method in ("GET", "HEAD")
        and "text/html" in request.headers.get("accept", "")
        and FEED_PREFIX not in request.scope.get("state", {})
        and not path.startswith(PROTOCOL_PATHS)
    )


@page()
async def _missing_page(request: Request, visitor: Visitor) -> Response:
    status = request.scope.get("state", {}).get(_STATUS, 404)
    return render(
        request, visitor, "message.html", {"title": "Not found", "message": NOT_FOUND}, status=status
    )


async def not_found(request: Request, exc: Exception) -> Response:
    """No route for this address (404) or not for this method (405): a browser gets the site's page, with
    the same status; anyone else the plain answer as before."""
    assert isinstance(exc, HTTPException)
    if not _for_a_browser(request):
        return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
    request.scope.setdefault("state", {})[_STATUS] = exc.status_code
    response = await _missing_page(request)
    response.headers.update(exc.headers or {})
    return response
