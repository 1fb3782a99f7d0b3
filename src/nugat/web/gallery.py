"""The package pages: home with search, package details, and My packages (unlist, relist)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nugat.httpcommon import base_url, client_address
from nugat.services import ServiceError
from nugat.services.search import Query
from nugat.web.catalog import package_details
from nugat.web.pages import Visitor, not_found, page, read_view, redirect_notice, render, web

PAGE_SIZE = 20


def _page_number(request: Request) -> int:
    try:
        return max(1, min(int(request.query_params.get("page", "1")), 10_000))
    except ValueError:
        return 1


@page(reads=True)
async def home(request: Request, visitor: Visitor) -> Response:
    q = request.query_params.get("q", "").strip()[:256]
    number = _page_number(request)
    view = read_view(request, visitor)
    query = Query(
        q=q, skip=(number - 1) * PAGE_SIZE, take=PAGE_SIZE, prerelease=True, semver2=True, view=view
    )
    total, hits = await run_in_threadpool(web(request).core.search.search, query)

    def link(n: int) -> str:
        return "/packages?" + urlencode({"q": q, "page": n} if q else {"page": n})

    last = max(1, -(-total // PAGE_SIZE))
    context = {
        "q": q,
        "total": total,
        "hits": hits,
        "number": number,
        "last": last,
        "last_link": link(last) if number > last and total else None,  # past the last page
        "previous": link(min(number - 1, last)) if number > 1 else None,
        "next": link(number + 1) if number * PAGE_SIZE < total else None,
    }
    return render(request, visitor, "home.html", context)


@page(reads=True)
async def details(request: Request, visitor: Visitor) -> Response:
    core = web(request).core
    package_id, version = request.path_params["id"], request.path_params.get("version")
    viewer = visitor.user.name if visitor.user else None
    view = read_view(request, visitor)
    found = None
    if await run_in_threadpool(core.readers.can_read, view, package_id):
        found = await run_in_threadpool(
            package_details, core.db, core.storage, package_id, version, viewer, core.readers.checker(view)
        )
    if found is None:
        what = f"{package_id} {version}" if version else package_id
        return not_found(request, visitor, f"There is no package {what} on this server.")
    meta = found.shown.metadata_json
    project_url = meta.get("project_url") or ""
    access = (
        await run_in_threadpool(core.owners.access, found.package_id, visitor.user.name)
        if visitor.user
        else None
    )
    context = {
        "d": found,
        "meta": meta,
        "project_url": project_url if project_url.startswith(("https://", "http://")) else None,
        "source": f"{base_url(request)}/v3/index.json",
        "manages_owners": access is not None and access[1].allowed,
    }
    return render(request, visitor, "package.html", context)


@page(signed_in=True)
async def my_packages(request: Request, visitor: Visitor) -> Response:
    accounts = web(request).core.accounts
    owners = await run_in_threadpool(accounts.key_owners, visitor.account.id)
    packages = await run_in_threadpool(accounts.packages_of, [o.id for o in owners])
    return render(request, visitor, "my_packages.html", {"packages": packages})


async def _set_listed(request: Request, visitor: Visitor, listed: bool) -> Response:
    package_id, version = request.path_params["id"], request.path_params["version"]
    try:
        await run_in_threadpool(
            web(request).core.packages.set_listed,
            package_id,
            version,
            listed,
            visitor.account.name,
            client_address(request),
        )
    except ServiceError as exc:
        context = {"title": "Not changed", "message": exc.message}
        return render(request, visitor, "message.html", context, status=exc.status)
    done = "listed again." if listed else "unlisted: it no longer shows in search."
    return redirect_notice(visitor, "/account/packages", f"{package_id} {version} {done}")


@page(signed_in=True)
async def unlist(request: Request, visitor: Visitor) -> Response:
    return await _set_listed(request, visitor, listed=False)


@page(signed_in=True)
async def relist(request: Request, visitor: Visitor) -> Response:
    return await _set_listed(request, visitor, listed=True)


routes = [
    Route("/", home, methods=["GET"]),
    Route("/packages", home, methods=["GET"]),
    Route("/packages/{id}", details, methods=["GET"]),
    Route("/packages/{id}/{version}", details, methods=["GET"]),
    Route("/account/packages", my_packages, methods=["GET"]),
    Route("/account/packages/{id}/{version}/unlist", unlist, methods=["POST"]),
    Route("/account/packages/{id}/{version}/relist", relist, methods=["POST"]),
]
