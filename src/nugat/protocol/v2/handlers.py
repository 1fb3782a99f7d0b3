"""HTTP handlers of the V2 feed (read-only; pushes share the V3 publish routes under /api/v2/package)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from nugat.core import Core
from nugat.feed import layout
from nugat.httpcommon import base_url, content_base, host_vary, nuget_error, read_view, url_vary
from nugat.protocol.v2 import atom
from nugat.protocol.v2.queries import V2Queries, parse_filter, parse_orderby, parse_updates
from nugat.readpath import JSON_CACHE
from nugat.services import NotFound, ServiceError

PAGE = 100
MAX_NUMBER = 1_000_000  # a larger $skip or $top is taken as this
ATOM_TYPE = "application/atom+xml;type=feed;charset=utf-8"
# As the V3 answers they stand for (``readgate`` makes those read with a credential, or of a private id,
# ``private, no-cache``): an id's versions (FindPackagesById) and one version's entry as the stored documents
# (flat index, registration); the queries (Search, Packages) and the service documents as V3 search and the
# service index; the download redirect as the read path's.
FEED_CACHE = JSON_CACHE.decode()
QUERY_CACHE = "no-cache"
_KEY = re.compile(r"^Id='(?P<id>(?:[^']|'')+)',Version='(?P<version>(?:[^']|'')+)'$")


def _literal(value: str | None) -> str:
    """An OData string literal's value: ``'a''b'`` -> ``a'b``; bare values are taken as they are."""
    value = (value or "").strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        value = value[1:-1].replace("''", "'")
    return value


def _int(name: str, value: str | None, default: int) -> int:
    """``$skip`` or ``$top``: a whole number, at most ``MAX_NUMBER``; a negative or other one is a 400."""
    if value is None or not value.strip():
        return default
    try:
        number = int(value.strip())
    except ValueError:
        number = -1
    if number < 0:
        raise ServiceError(f"Unsupported {name}: {value[:40]!r} (a whole number, 0 or more)")
    return min(number, MAX_NUMBER)


def _headers(request: Request, cache: str, *, urls: bool = True, content: bool = False) -> dict[str, str]:
    """An answer's ``Cache-Control``, and the ``Vary`` the V3 answers carry: ``urls``, it names URLs of the
    feed (``base_url``: they follow the request's host unless ``NUGAT_PUBLIC_URL`` is set); ``content``,
    of package content (``content_base``: unless ``NUGAT_CONTENT_URL`` or ``NUGAT_PUBLIC_URL`` is)."""
    settings = request.app.state.core.settings
    vary = host_vary(settings) if content else url_vary(settings, settings.public_url) if urls else ""
    return {"cache-control": cache, **({"vary": vary} if vary else {})}


def _queries(request: Request) -> V2Queries:
    core: Core = request.app.state.core
    view = read_view(request)
    return V2Queries(core.db, core.search, view, core.readers.checker(view))


async def service_document(request: Request) -> Response:
    body = atom.SERVICE_DOCUMENT.replace("{base}", base_url(request))
    return Response(body, media_type="application/xml;charset=utf-8", headers=_headers(request, QUERY_CACHE))


async def metadata(request: Request) -> Response:
    return Response(
        atom.METADATA,
        media_type="application/xml;charset=utf-8",
        headers=_headers(request, QUERY_CACHE, urls=False),
    )


async def _collection(request: Request, title: str, count_only: bool) -> Response:
    p = request.query_params
    semver2 = p.get("semVerLevel", "").startswith("2")
    skip, asked = _int("$skip", p.get("$skip"), 0), _int("$top", p.get("$top"), PAGE)
    top = min(asked, PAGE)
    queries = _queries(request)
    flt, keys = parse_filter(p.get("$filter")), parse_orderby(p.get("$orderby"))
    prerelease = _literal(p.get("includePrerelease")).lower() == "true"
    if title == "FindPackagesById":
        found = await run_in_threadpool(queries.find_by_id, _literal(p.get("id")), semver2, flt, keys)
        total, page = len(found), found[skip : skip + top]
    elif title == "GetUpdates":  # targetFrameworks is not read: updates for any framework, as NuGet.Server
        installed = parse_updates(
            _literal(p.get("packageIds")), _literal(p.get("versions")), _literal(p.get("versionConstraints"))
        )
        every = _literal(p.get("includeAllVersions")).lower() == "true"
        found = await run_in_threadpool(queries.updates, installed, prerelease, every, semver2, flt, keys)
        total, page = len(found), found[skip : skip + top]
    else:
        total, page = await run_in_threadpool(
            queries.search, _literal(p.get("searchTerm")), prerelease, semver2, flt, skip, top, keys
        )
    cache = FEED_CACHE if title == "FindPackagesById" else QUERY_CACHE
    if count_only:
        return PlainTextResponse(str(total), headers=_headers(request, cache, urls=False))
    next_url = None
    # Server-driven paging: a next link only where the server cut the page short of what was asked (none
    # after an empty page, $top=0), for the rest of the client's $top if it gave one.
    limited = bool(p.get("$top", "").strip())
    if page and skip + len(page) < total and (not limited or len(page) < asked):
        params = {k: v for k, v in p.items() if k not in ("$skip", "$top")}
        params["$skip"] = str(skip + len(page))
        if limited:
            params["$top"] = str(asked - len(page))
        next_url = f"{base_url(request)}{request.url.path}?{urlencode(params)}"
    body = atom.feed(base_url(request), title, page, next_url)
    return Response(body, media_type=ATOM_TYPE, headers=_headers(request, cache))


async def search(request: Request) -> Response:
    return await _collection(request, "Search", request.url.path.endswith("/$count"))


async def find_by_id(request: Request) -> Response:
    return await _collection(request, "FindPackagesById", request.url.path.endswith("/$count"))


async def get_updates(request: Request) -> Response:
    return await _collection(request, "GetUpdates", request.url.path.endswith("/$count"))


async def packages(request: Request) -> Response:
    return await _collection(request, "Packages", request.url.path.endswith("/$count"))


async def package_entry(request: Request) -> Response:
    match = _KEY.match(request.path_params["key"])
    if not match:
        return nuget_error(NotFound("Not found"))
    package_id, version = match["id"].replace("''", "'"), match["version"].replace("''", "'")
    found = await run_in_threadpool(_queries(request).one, package_id, version)
    if found is None:
        return nuget_error(NotFound(f"{package_id} {version} does not exist"))
    return Response(
        atom.entry(base_url(request), found),
        media_type="application/atom+xml;type=entry;charset=utf-8",
        headers=_headers(request, FEED_CACHE),
    )


async def download(request: Request) -> Response:
    """``/api/v2/package/{id}/{version?}``: a redirect to the flat container's .nupkg."""
    package_id = request.path_params["id"]
    version = request.path_params.get("version")
    queries = _queries(request)
    if version is None:
        versions = await run_in_threadpool(queries.versions_of, package_id, True)
        latest = [p for p in versions if p.is_absolute_latest]
        if not latest:
            return nuget_error(NotFound(f"{package_id} does not exist"))
        version = latest[0].row.version
    stored = layout.nupkg_named(package_id, version)
    if stored is None:
        return nuget_error(NotFound(f"{package_id} {version} does not exist"))
    return RedirectResponse(
        f"{content_base(request)}/{stored}",
        status_code=302,
        headers=_headers(request, QUERY_CACHE, content=True),
    )


routes = [
    Route("/api/v2", service_document, methods=["GET", "HEAD"]),
    Route("/api/v2/", service_document, methods=["GET", "HEAD"]),
    Route("/api/v2/$metadata", metadata, methods=["GET", "HEAD"]),
    Route("/api/v2/Search()", search, methods=["GET", "HEAD"]),
    Route("/api/v2/Search()/$count", search, methods=["GET", "HEAD"]),
    Route("/api/v2/FindPackagesById()", find_by_id, methods=["GET", "HEAD"]),
    Route("/api/v2/FindPackagesById()/$count", find_by_id, methods=["GET", "HEAD"]),
    Route("/api/v2/GetUpdates()", get_updates, methods=["GET", "HEAD"]),
    Route("/api/v2/GetUpdates()/$count", get_updates, methods=["GET", "HEAD"]),
    Route("/api/v2/Packages", packages, methods=["GET", "HEAD"]),
    Route("/api/v2/Packages()", packages, methods=["GET", "HEAD"]),
    Route("/api/v2/Packages()/$count", packages, methods=["GET", "HEAD"]),
    Route("/api/v2/Packages({key:path})", package_entry, methods=["GET", "HEAD"]),
    Route("/api/v2/package/{id}", download, methods=["GET", "HEAD"]),
    Route("/api/v2/package/{id}/{version}", download, methods=["GET", "HEAD"]),
]
