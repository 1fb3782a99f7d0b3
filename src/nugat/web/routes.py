"""Routes of the web pages, their static files and the favicon."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

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

STATIC = Path(__file__).parent / "static"


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
