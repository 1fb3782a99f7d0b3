"""PackagePublish/2.0.0: push (PUT), delete = unlist (DELETE), relist (POST). Thin: services decide."""

from __future__ import annotations

import functools
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from nugat.core import Core
from nugat.httpcommon import client_address, warning_header
from nugat.keys import KeyGrant
from nugat.services import ServiceError
from nugat.services.packages import PushResult
from nugat.upload import Upload, receive_package

log = logging.getLogger("nugat.publish")


async def _authenticate(
    request: Request, core: Core, push_limit: int | None = None
) -> tuple[KeyGrant, list[str]]:
    return await run_in_threadpool(
        functools.partial(
            core.accounts.verify_key,
            request.headers.get("x-nuget-apikey"),
            client_address(request),
            push_limit=push_limit,
        )
    )


def _ok(status: int, text: str, warnings: list[str]) -> Response:
    headers = {"X-NuGet-Warning": warning_header(" ".join(warnings))} if warnings else None
    return PlainTextResponse(text, status_code=status, headers=headers)


SMALL_UPLOAD = 64 << 10
"""A body declared this small is received before the key is checked, so that the check and the push
share one trip to a worker thread. A larger or chunked upload is received only once the key is valid."""


def _declared_small(request: Request) -> bool:
    declared = request.headers.get("content-length", "")
    return declared.isdigit() and int(declared) <= SMALL_UPLOAD


SMALL_UPLOAD_IDLE_TIMEOUT, SMALL_UPLOAD_TIMEOUT = 10.0, 30.0
"""A small body received before its key is checked gets at most these (idle, total) seconds: a client
without a key cannot hold a push open for the hour a large upload may take."""


async def _receive(request: Request, core: Core, *, before_key: bool = False) -> Upload:
    settings = core.settings
    idle, total = settings.upload_idle_timeout, settings.upload_timeout
    if before_key:
        idle, total = min(idle, SMALL_UPLOAD_IDLE_TIMEOUT), min(total, SMALL_UPLOAD_TIMEOUT)
    return await receive_package(
        request.stream(),
        request.headers.get("content-type", ""),
        request.headers.get("content-length"),
        settings.tmp_dir,
        settings.max_package_bytes,
        idle_timeout=idle,
        total_timeout=total,
    )


def _check_and_push(
    core: Core, request: Request, upload: Upload | None, refused: ServiceError | None
) -> tuple[KeyGrant, list[str], PushResult]:
    """The key first: a bad body is reported only to the holder of a valid key, as for a large upload."""
    address = client_address(request)
    grant, warnings = core.accounts.verify_key(
        request.headers.get("x-nuget-apikey"), address, push_limit=core.settings.push_limit_per_hour
    )
    if refused is not None:
        raise refused
    assert upload is not None
    return grant, warnings, core.packages.push(upload.path, grant, address)


async def push(request: Request) -> Response:
    core: Core = request.app.state.core
    upload = None
    try:
        if _declared_small(request):
            refused = None
            try:
                upload = await _receive(request, core, before_key=True)
            except ServiceError as exc:  # told only to the holder of a valid key: kept until it is checked
                refused = exc
            grant, warnings, result = await run_in_threadpool(_check_and_push, core, request, upload, refused)
        else:
            # The key is checked before the body is read: a refused push costs no upload.
            grant, warnings = await _authenticate(request, core, core.settings.push_limit_per_hour)
            upload = await _receive(request, core)
            result = await run_in_threadpool(core.packages.push, upload.path, grant, client_address(request))
    except ClientDisconnect:
        log.info("push abandoned: the client disconnected during the upload")
        return PlainTextResponse("The client disconnected during the upload", status_code=400)
    finally:
        if upload is not None:
            upload.discard()
    log.info("pushed %s %s with key %s", result.package_id, result.version, grant.key_id)
    return _ok(201, f"Created {result.package_id} {result.version}", warnings)


async def _set_listed(request: Request, listed: bool) -> Response:
    core: Core = request.app.state.core
    package_id, version = request.path_params["id"], request.path_params["version"]
    grant, warnings = await _authenticate(request, core)
    await run_in_threadpool(
        core.packages.set_listed, package_id, version, listed, grant, client_address(request)
    )
    if listed:
        return _ok(200, f"Relisted {package_id} {version}", warnings)
    return _ok(204, "", warnings)


async def unlist(request: Request) -> Response:
    return await _set_listed(request, listed=False)


async def relist(request: Request) -> Response:
    return await _set_listed(request, listed=True)


routes = [
    # The feed root too: NuGet 2.x (nuget 2.8.7 in Debian) pushes to the source URL it is given, as
    # NuGet.Server accepts. GET there stays the V2 service document (protocol/v2).
    Route("/api/v2", push, methods=["PUT", "POST"]),
    Route("/api/v2/", push, methods=["PUT", "POST"]),
    Route("/api/v2/package", push, methods=["PUT", "POST"]),
    Route("/api/v2/package/", push, methods=["PUT", "POST"]),
    Route("/api/v2/package/{id}/{version}", unlist, methods=["DELETE"]),
    Route("/api/v2/{id}/{version}", unlist, methods=["DELETE"]),  # NuGet 2.x's delete below the feed root
    Route("/api/v2/package/{id}/{version}", relist, methods=["POST"]),
    # NuGet 2.x given the V3 service index as its source (`-Source https://host/v3/index.json`, as nuget.exe
    # 3+ and the key pages say) knows no service index: it pushes to that URL plus "/" and deletes below
    # it. The same push and unlist; GET there stays the index (protocol/v3).
    Route("/v3/index.json", push, methods=["PUT", "POST"]),
    Route("/v3/index.json/", push, methods=["PUT", "POST"]),
    Route("/v3/index.json/{id}/{version}", unlist, methods=["DELETE"]),
]
