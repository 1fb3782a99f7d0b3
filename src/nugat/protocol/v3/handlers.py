"""HTTP handlers of the V3 resources that are computed per request: index, search, autocomplete, and
registration leaves."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from nugat.core import Core
from nugat.feed import BASE, layout
from nugat.feed.registration import file_urls
from nugat.feed.service_index import service_index
from nugat.fileheaders import LOCKED_DOWN
from nugat.httpcommon import base_url, content_base, host_vary, json_response, read_view, url_vary
from nugat.readpath import HIDDEN
from nugat.services.materialize import dump
from nugat.services.search import MAX_SKIP, MAX_TAKE, Hit, Query


async def index(request: Request) -> Response:
    response = json_response(service_index(base_url(request), content_base(request)))
    settings = request.app.state.core.settings
    # the feed's URLs, and package content's (on the feed's host, or on one of its own)
    vary = url_vary(settings, settings.public_url)
    if vary:
        response.headers["vary"] = vary
    return response


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        number = int(value) if value else default
    except ValueError:
        return default
    return min(max(number, low), high)


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def parse_query(request: Request) -> Query:
    p = request.query_params
    package_type = p.get("packageType") or p.get("packageTypeFilter") or p.get("packageTypes")
    return Query(
        q=(p.get("q") or "")[:500],
        skip=_int(p.get("skip"), 0, 0, MAX_SKIP),
        take=_int(p.get("take"), 20, 0, MAX_TAKE),
        prerelease=_bool(p.get("prerelease")),
        semver2=(p.get("semVerLevel") or "").startswith("2"),
        package_type=package_type.strip() or None if package_type else None,
        view=read_view(request),
    )


def _result(hit: Hit, base: str, hive: str) -> dict[str, Any]:
    v = hit.latest
    m = v.metadata_json
    id_lower = hit.registration.id_lower
    reg_url = f"{base}/{layout.registration_index(hive, id_lower)}"
    return {
        "@id": reg_url,
        "@type": "Package",
        "registration": reg_url,
        "id": hit.registration.package_id,
        "version": v.full_version,
        "description": m.get("description", ""),
        "summary": m.get("summary") or "",
        "title": m.get("title") or hit.registration.package_id,
        **file_urls(m, f"{base}/{layout.FLAT}/{id_lower}/{v.version_lower}/"),
        "projectUrl": m.get("project_url") or "",
        "tags": m.get("tags", []),
        "authors": m.get("authors", []),
        "owners": hit.owners,
        "totalDownloads": hit.registration.total_downloads,
        "verified": hit.verified,
        "packageTypes": [{"name": t["name"]} for t in m.get("package_types", [])] or [{"name": "Dependency"}],
        "versions": [
            {
                "version": x.full_version,
                "downloads": x.downloads,
                "@id": f"{base}/{layout.registration_leaf(hive, id_lower, x.version_lower)}",
            }
            for x in hit.versions
        ],
    }


async def search(request: Request) -> Response:
    core: Core = request.app.state.core
    query = parse_query(request)
    base = content_base(request)
    hive = "registration-semver2" if query.semver2 else "registration"

    def answer() -> bytes:
        generation = core.search.generation()  # once for the kept answer, the kept page and the count

        def render() -> bytes:
            total, hits = core.search.search(query, generation)
            return dump({"totalHits": total, "data": [_result(h, base, hive) for h in hits]})

        return core.search.rendered.get((query, base), render, generation)

    body = await run_in_threadpool(answer)
    headers = {"cache-control": "no-cache"}
    vary = host_vary(core.settings)  # its URLs are package content's
    if vary:
        headers["vary"] = vary
    return Response(body, media_type="application/json", headers=headers)


async def autocomplete(request: Request) -> Response:
    core: Core = request.app.state.core
    query = parse_query(request)
    package_id = request.query_params.get("id")
    if package_id is not None:
        readable = await run_in_threadpool(core.readers.can_read, query.view, package_id)
        versions = (
            await run_in_threadpool(core.search.autocomplete_versions, package_id, query) if readable else []
        )
        return json_response({"totalHits": len(versions), "data": versions})
    total, ids = await run_in_threadpool(core.search.autocomplete_ids, query)
    return json_response({"totalHits": total, "data": ids})


async def leaf(request: Request) -> Response:
    """A registration leaf (not stored: the read path passes the request on when it finds none)."""
    core: Core = request.app.state.core
    hive = request.url.path.split("/")[2]
    id_lower, version_lower = request.path_params["id"].lower(), request.path_params["version"].lower()
    hidden = getattr(request.state, HIDDEN, False)  # not the reader's to see: as if never pushed
    doc = None if hidden else await run_in_threadpool(core.materializer.leaf, hive, id_lower, version_lower)
    if doc is None:
        return PlainTextResponse("Not found", status_code=404)
    body = dump(doc).replace(BASE.encode(), content_base(request).encode())
    headers = {"cache-control": "public, max-age=60", **{k.decode(): v.decode() for k, v in LOCKED_DOWN}}
    vary = host_vary(request.app.state.core.settings)
    if vary:
        headers["vary"] = vary
    return Response(body, media_type="application/json", headers=headers)


routes = [
    Route("/v3/index.json", index, methods=["GET", "HEAD"]),
    Route("/v3/registration/{id}/{version}.json", leaf, methods=["GET", "HEAD"]),
    Route("/v3/registration-semver2/{id}/{version}.json", leaf, methods=["GET", "HEAD"]),
    Route("/v3/search", search, methods=["GET", "HEAD"]),
    Route("/v3/autocomplete", autocomplete, methods=["GET", "HEAD"]),
]
