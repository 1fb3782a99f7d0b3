"""Site admin pages: reserved package id prefixes (list, reserve for owners, release)."""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nugat.protocol.http import client_address
from nugat.services import Forbidden, ServiceError
from nugat.web.pages import Visitor, page, redirect, refused, render, web

NOTICES = {"reserved": "The prefix was reserved.", "released": "The reservation was released."}
_SPLIT = re.compile(r"[\s,]+")


async def _prefixes(
    request: Request,
    visitor: Visitor,
    *,
    error: str | None = None,
    status: int = 200,
    values: dict[str, str] | None = None,
) -> Response:
    if not visitor.account.is_admin:
        return refused(request, visitor, Forbidden("Only site admins can reserve or release id prefixes"))
    found = await run_in_threadpool(web(request).core.prefixes.all)
    context = {
        "prefixes": found,
        "error": error,
        "values": values or {},
        "notice": NOTICES.get(request.query_params.get("done", "")),
    }
    return render(request, visitor, "prefixes.html", context, status=status)


@page(signed_in=True)
async def prefixes(request: Request, visitor: Visitor) -> Response:
    return await _prefixes(request, visitor)


@page(signed_in=True)
async def reserve(request: Request, visitor: Visitor) -> Response:
    service, by = web(request).core.prefixes, visitor.account.name
    prefix, owners = visitor.field("prefix").strip(), visitor.field("owners").strip()
    names = [n for n in _SPLIT.split(owners) if n]
    try:
        address = client_address(request)
        await run_in_threadpool(lambda: service.reserve(prefix, names, by=by, address=address))
    except ServiceError as exc:
        values = {"prefix": prefix, "owners": owners}
        return await _prefixes(request, visitor, error=exc.message, status=exc.status, values=values)
    return redirect("/admin/prefixes?done=reserved")


@page(signed_in=True)
async def release(request: Request, visitor: Visitor) -> Response:
    service, by = web(request).core.prefixes, visitor.account.name
    prefix, owner = visitor.field("prefix"), visitor.field("owner")
    try:
        address = client_address(request)
        await run_in_threadpool(lambda: service.release(prefix, owner, by=by, address=address))
    except ServiceError as exc:
        return await _prefixes(request, visitor, error=exc.message, status=exc.status)
    return redirect("/admin/prefixes?done=released")


routes = [
    Route("/admin/prefixes", prefixes, methods=["GET"]),
    Route("/admin/prefixes", reserve, methods=["POST"]),
    Route("/admin/prefixes/release", release, methods=["POST"]),
]
