"""The Activity page: the audit events a user may see (site admins: every event), newest first."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nugat.services import NotFound
from nugat.web.pages import Visitor, page, render, web

LIMIT = 200


@page(signed_in=True)
async def activity(request: Request, visitor: Visitor) -> Response:
    audit, viewer = web(request).core.audit, visitor.account.name
    user = request.query_params.get("user", "").strip()[:64]
    package = request.query_params.get("package", "").strip()[:100]
    error = None
    try:
        events = await run_in_threadpool(
            lambda: audit.events(viewer=viewer, user=user or None, package=package or None, limit=LIMIT)
        )
    except NotFound as exc:
        events, error = [], exc.message
    context = {
        "events": events,
        "user_filter": user,
        "package_filter": package,
        "error": error,
        "limit": LIMIT,
    }
    return render(request, visitor, "activity.html", context, status=404 if error else 200)


routes = [Route("/account/activity", activity, methods=["GET"])]
