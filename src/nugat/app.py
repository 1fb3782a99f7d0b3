"""Builds the ASGI application: the stored-document read path in front of the Starlette routes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator

from sqlalchemy.exc import DataError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from nugat import faults, metrics
from nugat.clientlimit import ClientLimit
from nugat.content_origin import ContentOrigin
from nugat.core import Core, import_all
from nugat.httpcommon import (
    base_url_from,
    client_address,
    host_vary,
    one_line,
    protocol_refusal,
    scope_client_address,
)
from nugat.protocol import publish, revoke, token
from nugat.protocol.v2 import handlers as v2
from nugat.protocol.v3 import handlers as v3
from nugat.readgate import ReadGate
from nugat.readpath import FEED_PREFIX, ASGIApp, ASGIScope, ReadPath
from nugat.services import ServiceError, mail
from nugat.settings import Settings
from nugat.storage import StorageError
from nugat.web import routes as web
from nugat.web.security import SecurityHeaders

log = logging.getLogger("nugat")

DOWNLOAD_FLUSH_SECONDS = 5.0
CATCHUP_RETRY_SECONDS = 5.0  # after a failed batch (storage or database unavailable)
CATCHUP_WAIT_SECONDS = 0.2  # while other processes build the last stale ids
# How often a process not catching up asks whether any id is stale: a change whose documents could not be
# written (the storage down at that moment) is published once they can be, without waiting for a restart.
STALE_CHECK_SECONDS = 30.0


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


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """A request that needed the database while it was down: 503, and the driver's reason in the log."""
    reason = exc.orig if isinstance(exc, OperationalError) else exc
    log.error("database unavailable during %s %s: %s", request.method, one_line(request.url.path), reason)
    message = "The database is unavailable; retry later"
    headers = {"Retry-After": "30", "X-NuGet-Warning": message}
    return PlainTextResponse(message, status_code=503, headers=headers)


async def unstorable_value(request: Request, exc: Exception) -> Response:
    """A value the database refuses (a NUL in a PostgreSQL string, one longer than its column): 400."""
    reason = str(exc.orig if isinstance(exc, DataError) else exc).splitlines()[0]
    log.warning("refused a value during %s %s: %s", request.method, one_line(request.url.path), reason)
    message = "The request contains a value that cannot be stored (such as a NUL character)"
    return PlainTextResponse(message, status_code=400, headers={"X-NuGet-Warning": message})


async def metrics_text(request: Request) -> Response:
    core: Core = request.app.state.core
    token = core.settings.metrics_token
    if not metrics.may_scrape(client_address(request), request.headers.get("authorization"), token):
        if token is None:
            message = "/metrics answers clients on this host only: NUGAT_METRICS_TOKEN lets another scrape it"
            return PlainTextResponse(message, status_code=403)
        message = "/metrics needs the metrics token (Authorization: Bearer <NUGAT_METRICS_TOKEN>)"
        challenge = {"WWW-Authenticate": 'Bearer realm="nugat metrics"'}
        return PlainTextResponse(message, status_code=401, headers=challenge)
    body = await run_in_threadpool(metrics.exposition, core.settings.metrics_dir)
    return Response(body, media_type=metrics.CONTENT_TYPE)


def create_app(settings: Settings | None = None) -> metrics.Instrumented:
    settings = settings or Settings()
    problems = settings.problems()
    if problems:
        raise ValueError("; ".join(problems))
    import_all()
    core = Core(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async def flush_downloads() -> None:
            while True:
                await asyncio.sleep(DOWNLOAD_FLUSH_SECONDS)
                await run_in_threadpool(core.downloads.flush)

        stopping = asyncio.Event()

        async def rest(seconds: float) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), seconds)

        async def catch_up() -> None:
            """Stale documents rebuilt batch by batch (``services.catchup``). Not cancelled at a stop: the
            stop waits for the batch under way, which a cancel would not end (it runs in a thread)."""
            await rest(faults.seconds("catch-up"))
            while not stopping.is_set():
                try:
                    built = await run_in_threadpool(core.catchup.step)
                except (StorageError, OperationalError) as exc:
                    log.error("could not rebuild stale documents yet: %s", exc)
                    await rest(CATCHUP_RETRY_SECONDS)
                    continue
                if built is None:
                    return
                await rest(core.catchup.pause if built else CATCHUP_WAIT_SECONDS)

        tasks = [asyncio.create_task(flush_downloads())]
        catching_up: asyncio.Task[None] | None = None
        try:
            stale = await run_in_threadpool(core.catchup.check)
        except OperationalError as exc:  # the task finds out once the database is back
            log.error("could not check for stale documents: %s", exc)
            stale = True
        if stale:
            catching_up = asyncio.create_task(catch_up())

        async def watch_stale() -> None:
            """Start the catch-up again when ids went stale while serving (``STALE_CHECK_SECONDS``); on
            PostgreSQL, undo what long-dead pushes left (``Packages.undo_abandoned``)."""
            nonlocal catching_up
            while not stopping.is_set():
                await rest(STALE_CHECK_SECONDS)
                if stopping.is_set() or (catching_up is not None and not catching_up.done()):
                    continue
                try:
                    if not core.db.url.startswith("sqlite"):  # no row locks there: only at a start
                        await run_in_threadpool(core.packages.undo_abandoned)
                    if await run_in_threadpool(core.materializer.any_stale):
                        await run_in_threadpool(core.catchup.check)
                        catching_up = asyncio.create_task(catch_up())
                except (SQLAlchemyError, StorageError) as exc:
                    log.error("could not check for stale documents: %s", exc)

        tasks.append(asyncio.create_task(watch_stale()))
        # Which ids are private, read before the first request: a public restore then goes on if the
        # database goes away later (``services.readers``).
        with contextlib.suppress(SQLAlchemyError):
            await run_in_threadpool(core.readers.load_private_ids)
        if core.outbox.enabled:
            every = core.settings.mail_poll_seconds
            tasks.append(asyncio.create_task(mail.run_sender(core.outbox, every, core.key_notices.due)))
        if core.settings.metrics_dir is not None:
            tasks.append(asyncio.create_task(metrics.save_every_second(core.settings.metrics_dir)))
        try:
            yield
        finally:
            stopping.set()
            for task in tasks:
                task.cancel()
            if catching_up is not None:
                await catching_up
            await run_in_threadpool(functools.partial(core.downloads.flush, stopping=True))
            core.close()

    routes = [
        *revoke.routes,
        *v3.routes,
        *publish.routes,
        *token.routes,
        *v2.routes,
        Route("/health", health),
        Route("/metrics", metrics_text),
        *web.routes,
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            OperationalError: database_unavailable,
            PoolTimeout: database_unavailable,  # every connection busy (or stuck) for the pool's wait
            DataError: unstorable_value,
            ServiceError: protocol_refusal,
            404: web.not_found,  # a browser at a page address gets the site's page
            405: web.not_found,
        },
    )
    app.router.redirect_slashes = False  # a 307 to a chunked push would lose the upload
    app.add_middleware(SecurityHeaders)
    app.state.core = core

    trust_forwarded, proxies = core.settings.trust_forwarded, core.proxies
    documents_url = core.settings.documents_url  # every URL in the documents is package content
    bases: dict[tuple[str, bytes | None, bytes | None, bytes | None], str] = {}

    def scope_base(scope: ASGIScope) -> str:
        prefix: str = scope.get("state", {}).get(FEED_PREFIX, "")
        return host_base(scope) + prefix

    def host_base(scope: ASGIScope) -> str:
        if documents_url:
            return documents_url
        headers = dict(scope["headers"])
        host = headers.get(b"host")
        peer = scope.get("client")
        trusted = trust_forwarded and peer is not None and proxies.trusts(peer[0])
        proto = headers.get(b"x-forwarded-proto") if trusted else None
        fwd_host = headers.get(b"x-forwarded-host") if trusted else None
        seen = (scope.get("scheme", "http"), host, proto, fwd_host)
        base = bases.get(seen)
        if base is None:
            if len(bases) >= 256:  # the Host header is the client's to choose: keep the memo bounded
                bases.clear()
            base = bases[seen] = base_url_from(
                seen[0],
                host.decode("latin-1") if host else None,
                proto.decode("latin-1") if proto else None,
                fwd_host.decode("latin-1") if fwd_host else None,
            )
        return base

    def client_of(scope: ASGIScope) -> str:
        return scope_client_address(scope, trust_forwarded, proxies)

    limited = ClientLimit(app, core.settings.client_request_limit, client_of, proxies.trusts)
    vary = host_vary(core.settings).encode()
    served: ASGIApp = ReadGate(
        ReadPath(
            limited,
            core.storage,
            scope_base,
            core.downloads.count,
            vary=vary,
            fixed_base=core.settings.documents_url,
            catchup=core.catchup,
        ),
        core.readers,
        client_of,
        proxies.trusts,
    )
    if core.settings.content_url:
        served = ContentOrigin(served, core.settings.content_url, trust_forwarded, proxies)
    return metrics.Instrumented(served)
