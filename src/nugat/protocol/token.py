"""``POST /api/v2/token``: a CI job's OIDC token for a short-lived API key, with nuget.org's contract.

The request carries ``Authorization: Bearer <OIDC JWT>``, ``Content-Type: application/json`` and a body
``{"username": "<policy creator or owner>", "tokenType": "ApiKey"}``; the answer is
``{"tokenType": "ApiKey", "expires": "<ISO 8601>", "apiKey": "<key>"}``. nuget.org's first version of the
contract spelled them ``token_type``/``"api_key"``; that spelling is accepted and answered in kind.
Errors are ``{"error": "<reason>"}`` with the status (401 with ``WWW-Authenticate: Bearer``), and the
reason also in ``X-NuGet-Warning``. The endpoint is not in the service index, as on nuget.org: clients
(the ``NuGet/login`` action's ``token-service-url``) are given its URL.
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nugat.clock import isoformat
from nugat.core import Core
from nugat.httpcommon import client_address, one_line, warning_header
from nugat.oidc import MAX_TOKEN_CHARS
from nugat.services import ServiceError, TooManyRequests
from nugat.services.sessions import SESSION_COOKIE

log = logging.getLogger("nugat.token")

BODY_LIMIT = 16_384
BODY_TIMEOUT = 10.0  # seconds for the whole body: 16 KiB from a CI job arrives in milliseconds


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str, retry_after: int | None = None) -> Response:
    headers = {"X-NuGet-Warning": warning_header(message), "Cache-Control": "no-store"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 503:
        headers["Retry-After"] = "30"
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _bearer(request: Request) -> str:
    values = request.headers.getlist("authorization")
    if not values:
        raise _Refused(401, "The Authorization header is missing: send Authorization: Bearer <OIDC token>")
    if len(values) > 1:
        raise _Refused(401, "Only one Authorization header is allowed")
    if not values[0][:7].lower() == "bearer ":
        raise _Refused(401, "The Authorization header must start with 'Bearer '")
    token = values[0][7:].strip()
    if not token:
        raise _Refused(401, "The bearer token is missing from the Authorization header")
    if len(token) > MAX_TOKEN_CHARS:
        raise _Refused(401, f"The bearer token is longer than {MAX_TOKEN_CHARS} characters")
    return token


async def _body(request: Request) -> tuple[str, bool]:
    """The username asked for, and whether the request used nuget.org's first spelling (token_type)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise _Refused(415, "The request must have a Content-Type of 'application/json'")
    if not request.headers.get("user-agent", "").strip():
        raise _Refused(400, "A User-Agent header is required")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > BODY_LIMIT):
        raise _Refused(413, f"The request body is larger than {BODY_LIMIT} bytes")
    raw = b""
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            async for chunk in request.stream():
                raw += chunk
                if len(raw) > BODY_LIMIT:
                    raise _Refused(413, f"The request body is larger than {BODY_LIMIT} bytes")
    except TimeoutError:
        late = f"The request body took too long: send it within {BODY_TIMEOUT:g} seconds"
        raise _Refused(408, late) from None
    try:
        body = json.loads(raw)
    except ValueError:
        raise _Refused(400, "The request body is not JSON") from None
    if not isinstance(body, dict):
        raise _Refused(400, "The request body must be a JSON object")
    username = body.get("username")
    if not isinstance(username, str) or not username.strip():
        raise _Refused(400, "The username property in the request body is required")
    if "token_type" in body and "tokenType" not in body:
        if body["token_type"] != "api_key":  # noqa: S105 (a token type, not a secret)
            raise _Refused(400, "The token_type property must be 'api_key'")
        return username.strip(), True
    if body.get("tokenType") != "ApiKey":
        raise _Refused(400, "The tokenType property in the request body is required and must be 'ApiKey'")
    return username.strip(), False


async def create_token(request: Request) -> Response:
    core: Core = request.app.state.core
    try:
        token = _bearer(request)
        if request.cookies.get(SESSION_COOKIE):
            raise _Refused(401, "Only Bearer token authentication is accepted: send no session cookie")
        username, first_spelling = await _body(request)
        minted = await run_in_threadpool(core.trusted.mint, username, token, client_address(request))
    except _Refused as exc:
        log.info("token exchange refused (%s): %s", exc.status, one_line(exc.message))
        return _error(exc.status, exc.message)
    except ServiceError as exc:
        log.info("token exchange refused (%s): %s", exc.status, one_line(exc.message))
        retry = exc.retry_after if isinstance(exc, TooManyRequests) else None
        return _error(exc.status, exc.message, retry)
    log.info("minted key %s under policy %r for %s", minted.key_id, minted.policy, one_line(username))
    expires = isoformat(minted.expires)
    if first_spelling:
        answer = {"token_type": "api_key", "expires": expires, "api_key": minted.key}
    else:
        answer = {"tokenType": "ApiKey", "expires": expires, "apiKey": minted.key}
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})


routes = [Route("/api/v2/token", create_token, methods=["POST"])]
