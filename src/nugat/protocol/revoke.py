"""``POST /api/v2/revoke``: where secret scanners report leaked keys (GitHub's secret scanning partner
program and its public revocation API are the models). No authentication: anyone who holds a leaked key
may get it revoked. The body is JSON: a list of strings, or of objects with ``token`` (and optionally
``url`` or ``source``: where it was found), as GitHub sends them. Every valid ``nugat_`` key among them is
revoked, audited with the reported URL, and its owner mailed; the rest is ignored. The answer is the same
whatever was sent (how many items were read), so it never says which were valid keys. Throttled per
address."""

from __future__ import annotations

import json
from datetime import timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nugat.core import Core
from nugat.httpcommon import client_address, json_response
from nugat.services import ServiceError, TooManyRequests
from nugat.services.leaks import MAX_CANDIDATES

MAX_BODY = 1 << 20
REPORTS_PER_ADDRESS = 30  # requests per window
WINDOW = timedelta(minutes=1)
REASON = "It was reported as leaked (found in public by a secret scanner)."


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise ServiceError(f"The report is larger than {MAX_BODY} bytes", 413)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise ServiceError(f"The report is larger than {MAX_BODY} bytes", 413)
    return bytes(data)


def _reports(body: bytes) -> list[tuple[str, str | None]]:
    """``(string, where it was found)`` of each item of the report."""
    try:
        items = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nesting thousands deep
        raise ServiceError("The report must be a JSON list of strings or of {token, url} objects") from None
    if isinstance(items, dict):  # one object alone
        items = [items]
    if not isinstance(items, list):
        raise ServiceError("The report must be a JSON list of strings or of {token, url} objects")
    found: list[tuple[str, str | None]] = []
    for item in items[:MAX_CANDIDATES]:
        if isinstance(item, str):
            found.append((item, None))
        elif isinstance(item, dict) and isinstance(item.get("token"), str):
            where = item.get("url") or item.get("source")
            found.append((item["token"], where if isinstance(where, str) else None))
    return found


def _revoke(core: Core, reports: list[tuple[str, str | None]], address: str) -> None:
    for token, where in reports:
        if len(token) <= 200:
            source = f"{where} (reported from {address})" if where else f"reported from {address}"
            core.leaks.revoke([token.strip()], REASON, source=source[:500], by="leak report")


async def revoke(request: Request) -> Response:
    core: Core = request.app.state.core
    address = client_address(request)
    bucket = f"revoke:addr:{address}"
    if await run_in_threadpool(core.accounts.throttle.hit, bucket, WINDOW) > REPORTS_PER_ADDRESS:
        raise TooManyRequests("Too many reports from this address: retry in a minute", 60)
    reports = _reports(await _body(request))
    await run_in_threadpool(_revoke, core, reports, address)
    return json_response({"received": len(reports)}, 202)


routes = [Route("/api/v2/revoke", revoke, methods=["POST"])]
