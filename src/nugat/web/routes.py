"""Routes of the web pages and their static files."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from nugat.web import account, activity, admin, apikeys, gallery, orgs, owners

routes: list[BaseRoute] = [
    *owners.routes,  # before gallery's /packages/{id}/{version}
    *gallery.routes,
    *account.routes,
    *apikeys.routes,
    *orgs.routes,
    *activity.routes,
    *admin.routes,
    Mount("/static", app=StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
]
