"""Builds the ASGI application: the stored-document read path in front of the Starlette routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nugat.core import Core
from nugat.protocol import publish
from nugat.protocol.http import base_url_from
from nugat.protocol.v3 import handlers as v3
from nugat.readpath import ReadPath, Scope
from nugat.settings import Settings
from nugat.web import routes as web

log = logging.getLogger("nugat")

DOWNLOAD_FLUSH_SECONDS = 5.0


async def health(request: Request) -> Response:
    core: Core = request.app.state.core
    problems = {}
    try:
        await run_in_threadpool(core.db.ping)
    except Exception as exc:
        problems["database"] = type(exc).__name__
    try:
        await run_in_threadpool(core.storage.check)
    except Exception as exc:
        problems["storage"] = type(exc).__name__
    status = 503 if problems else 200
    return JSONResponse({"status": "unhealthy" if problems else "ok", **problems}, status_code=status)


def create_app(settings: Settings | None = None) -> ReadPath:
    core = Core(settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async def flush_downloads() -> None:
            while True:
                await asyncio.sleep(DOWNLOAD_FLUSH_SECONDS)
                await run_in_threadpool(core.downloads.flush)

        task = asyncio.create_task(flush_downloads())
        try:
            yield
        finally:
            task.cancel()
            await run_in_threadpool(core.downloads.flush)
            core.close()

    routes = [*v3.routes, *publish.routes, Route("/health", health), *web.routes]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.router.redirect_slashes = False  # a 307 to a chunked push would lose the upload
    app.state.core = core

    def scope_base(scope: Scope) -> str:
        headers = dict(scope.get("headers", ()))
        trusted = core.settings.trust_forwarded
        host = headers.get(b"host")
        proto = headers.get(b"x-forwarded-proto") if trusted else None
        fwd_host = headers.get(b"x-forwarded-host") if trusted else None
        return base_url_from(
            scope.get("scheme", "http"),
            host.decode("latin-1") if host else None,
            proto.decode("latin-1") if proto else None,
            fwd_host.decode("latin-1") if fwd_host else None,
        )

    return ReadPath(app, core.storage, scope_base, core.downloads.count)
