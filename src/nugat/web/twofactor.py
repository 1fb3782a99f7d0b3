"""Two-factor sign-in pages (enrol with a QR code, recovery codes, turn off with a code) and the password
prompt before creating or regenerating an API key, or saving a trusted publishing policy (which mints
keys) ("sudo mode", as GitHub has it).

Why sudo mode rather than always "within 15 minutes of sign-in": a session lives a week, so a browser
left signed in (or a stolen session cookie) could otherwise mint a key, the one credential that works
without the browser and outlives a password change. A fresh sign-in, or the password entered again,
counts for 15 minutes (``sessions.SUDO_WINDOW``), so making several keys in a row asks once.
"""

from __future__ import annotations

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nugat.httpcommon import client_address
from nugat.services import ServiceError, TooManyRequests
from nugat.web.forms import safe_next
from nugat.web.pages import (
    Visitor,
    page,
    redirect,
    redirect_notice,
    render,
    restart_session,
    resume_session,
    web,
)


async def _enrol_page(request: Request, visitor: Visitor, error: str | None = None) -> Response:
    enrolment = await run_in_threadpool(web(request).core.twofactor.begin, visitor.account.id)
    errors = {"code": error} if error else {}
    context = {"enrolment": enrolment, "qr": Markup(enrolment.qr_svg), "errors": errors}  # noqa: S704 (segno's SVG)
    return render(request, visitor, "twofactor.html", context, status=400 if error else 200, no_store=True)


ENROL_SUDO_EXPIRED = (
    "More than 15 minutes passed since you signed in: enter your password again, then the code from your app."
)


@page(signed_in=True)
async def overview(request: Request, visitor: Visitor) -> Response:
    if visitor.account.totp_enabled_at is None:
        # Turning it on would lock out whoever cannot give the new codes: a stolen session cookie must not
        # be enough, as for making a key.
        if await needs_sudo(request, visitor):
            return sudo_page(request, visitor, "/account/two-factor")
        return await _enrol_page(request, visitor)
    left = await run_in_threadpool(web(request).core.twofactor.recovery_left, visitor.account.id)
    return render(request, visitor, "twofactor.html", {"enrolment": None, "left": left})


def _codes_page(request: Request, visitor: Visitor, codes: list[str], first: bool) -> Response:
    return render(request, visitor, "recovery_codes.html", {"codes": codes, "first": first}, no_store=True)


def _refused(exc: ServiceError) -> dict[str, str]:
    return {"retry-after": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else {}


@page(signed_in=True)
async def enrol(request: Request, visitor: Visitor) -> Response:
    core = web(request).core
    if visitor.account.totp_enabled_at is not None:
        return redirect("/account/two-factor")
    if await needs_sudo(request, visitor):
        return sudo_page(request, visitor, "/account/two-factor", ENROL_SUDO_EXPIRED, 403)
    try:
        codes = await run_in_threadpool(core.twofactor.confirm, visitor.account.id, visitor.field("code"))
    except ServiceError as exc:
        return await _enrol_page(request, visitor, exc.message)
    # Sessions begun with the password alone (perhaps why two-factor sign-in is now on) end.
    token = await restart_session(request, visitor)
    return resume_session(request, _codes_page(request, visitor, codes, first=True), token)


async def _with_code(request: Request, visitor: Visitor, action: str) -> Response:
    core = web(request).core
    if visitor.account.totp_enabled_at is None:
        return redirect("/account/two-factor")
    call = core.twofactor.disable if action == "disable" else core.twofactor.new_recovery_codes
    try:
        codes = await run_in_threadpool(
            call, visitor.account.id, visitor.field("code"), client_address(request)
        )
    except ServiceError as exc:
        left = await run_in_threadpool(core.twofactor.recovery_left, visitor.account.id)
        field = "off-code" if action == "disable" else "codes-code"  # the code field of the form sent
        context = {"enrolment": None, "left": left, "errors": {field: exc.message}}
        status = 429 if isinstance(exc, TooManyRequests) else 400
        return render(request, visitor, "twofactor.html", context, status=status, headers=_refused(exc))
    if action == "disable":
        token = await restart_session(request, visitor)
        notice = "Two-factor sign-in is off; you were signed out everywhere else."
        return resume_session(request, redirect_notice(visitor, "/account", notice), token)
    assert codes is not None
    return _codes_page(request, visitor, codes, first=False)


@page(signed_in=True)
async def disable(request: Request, visitor: Visitor) -> Response:
    return await _with_code(request, visitor, "disable")


@page(signed_in=True)
async def recovery_codes(request: Request, visitor: Visitor) -> Response:
    return await _with_code(request, visitor, "codes")


# Sudo mode -----------------------------------------------------------------------------------------

SUDO_EXPIRED = (
    "More than 15 minutes passed since you signed in: enter your password again, then fill in the form."
)
"""Why a form posted after the window closed is refused (403) and the password asked again."""


def sudo_page(
    request: Request, visitor: Visitor, target: str, error: str | None = None, status: int = 200
) -> Response:
    """Ask for the password again before ``target`` (a key page, or a trusted publishing policy's form)."""
    context = {"next": safe_next(target), "error": error}
    return render(request, visitor, "sudo.html", context, status=status)


async def needs_sudo(request: Request, visitor: Visitor) -> bool:
    assert visitor.session is not None
    return not await run_in_threadpool(web(request).sessions.is_recent, visitor.session)


@page(signed_in=True)
async def sudo_form(request: Request, visitor: Visitor) -> Response:
    return sudo_page(request, visitor, request.query_params.get("next", "/account/apikeys"))


@page(signed_in=True)
async def sudo(request: Request, visitor: Visitor) -> Response:
    from nugat.web.account import _reauthenticate

    target = safe_next(visitor.field("next"))
    problem = await _reauthenticate(request, visitor)
    if problem is not None:
        return sudo_page(request, visitor, target, problem, 400)
    assert visitor.session is not None
    await run_in_threadpool(web(request).sessions.reauthenticated, visitor.session)
    return redirect(target)


routes = [
    Route("/account/two-factor", overview, methods=["GET"]),
    Route("/account/two-factor", enrol, methods=["POST"]),
    Route("/account/two-factor/disable", disable, methods=["POST"]),
    Route("/account/two-factor/recovery-codes", recovery_codes, methods=["POST"]),
    Route("/account/sudo", sudo_form, methods=["GET"]),
    Route("/account/sudo", sudo, methods=["POST"]),
]
