"""The pages mails link to: confirm an address, reset a forgotten password, confirm a new address.

A link's token is used once (``services.account_mail``); a reset link only shows its form on GET (a mail
scanner that fetches it uses nothing), and is used by the form's POST.
"""

from __future__ import annotations

import asyncio
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nugat.httpcommon import client_address
from nugat.services import ServiceError
from nugat.services.account_mail import FORGOT_ANSWER_SECONDS
from nugat.services.accounts import check_password
from nugat.web.pages import (
    Visitor,
    page,
    redirect_notice,
    render,
    restart_session,
    resume_session,
    web,
)

NO_MAIL = (
    "This server sends no mail, so it cannot send you a link. Ask its administrator to set a new "
    "password for you (nugat user reset-password NAME)."
)


def _message(request: Request, visitor: Visitor, title: str, message: str, status: int = 200) -> Response:
    return render(request, visitor, "message.html", {"title": title, "message": message}, status=status)


@page()
async def confirm(request: Request, visitor: Visitor) -> Response:
    try:
        user = await run_in_threadpool(web(request).core.account_mail.confirm, request.path_params["token"])
    except ServiceError as exc:
        return _message(request, visitor, "Link expired", exc.message, exc.status)
    text = f"Your email address {user.email} is confirmed: you can now create API keys and push packages."
    return _message(request, visitor, "Address confirmed", text)


@page(signed_in=True)
async def resend(request: Request, visitor: Visitor) -> Response:
    core = web(request).core
    if not core.outbox.enabled:
        return _message(request, visitor, "No mail", NO_MAIL.replace("set a new password for you",
                        "confirm your address") .replace("reset-password", "confirm"), 503)  # fmt: skip
    try:
        await run_in_threadpool(core.account_mail.send_confirmation, visitor.account.id)
    except ServiceError as exc:
        return _message(request, visitor, "Not sent", exc.message, exc.status)
    return redirect_notice(
        visitor, "/account", f"We sent a new confirmation link to {visitor.account.email}."
    )


@page()
async def forgot_form(request: Request, visitor: Visitor) -> Response:
    mail = web(request).core.outbox.enabled
    return render(
        request, visitor, "forgot.html", {"login": "", "sent": False, "no_mail": None if mail else NO_MAIL}
    )


@page()
async def forgot(request: Request, visitor: Visitor) -> Response:
    core = web(request).core
    if not core.outbox.enabled:
        return render(
            request, visitor, "forgot.html", {"login": "", "sent": False, "no_mail": NO_MAIL}, status=503
        )
    login = visitor.field("login").strip()
    started = time.monotonic()
    await run_in_threadpool(core.account_mail.forgot, login, client_address(request))
    # The same answer whether or not such an account exists, at the same time.
    await asyncio.sleep(max(0.0, FORGOT_ANSWER_SECONDS - (time.monotonic() - started)))
    return render(request, visitor, "forgot.html", {"login": login, "sent": True, "no_mail": None})


def _dead(request: Request, visitor: Visitor) -> Response:
    return _message(
        request,
        visitor,
        "Link expired",
        "This password reset link has expired or was already used: ask for a new one at /account/forgot.",
        410,
    )


@page()
async def reset_form(request: Request, visitor: Visitor) -> Response:
    user = await run_in_threadpool(web(request).core.account_mail.reset_target, request.path_params["token"])
    if user is None:
        return _dead(request, visitor)
    return render(request, visitor, "reset.html", {"name": user.name, "errors": {}}, no_store=True)


@page()
async def reset(request: Request, visitor: Visitor) -> Response:
    core, token = web(request).core, request.path_params["token"]
    user = await run_in_threadpool(core.account_mail.reset_target, token)
    if user is None:
        return _dead(request, visitor)
    password = visitor.field("password")
    errors: dict[str, str | None] = {"password": None, "confirm": None}
    try:
        check_password(password, (user.name, user.email or ""))
    except ServiceError as exc:
        errors["password"] = exc.message
    if visitor.field("confirm") != password:
        errors["confirm"] = "The passwords do not match"
    if any(errors.values()):
        return render(
            request, visitor, "reset.html", {"name": user.name, "errors": errors}, status=400, no_store=True
        )
    try:
        await run_in_threadpool(core.account_mail.reset, token, password, client_address(request))
    except ServiceError as exc:
        if exc.status == 410:
            return _dead(request, visitor)
        errors["password"] = exc.message
        return render(
            request, visitor, "reset.html", {"name": user.name, "errors": errors}, status=400, no_store=True
        )
    response = redirect_notice(
        visitor, "/signin", "Your password was changed and every session signed out: sign in with it."
    )
    if visitor.session is not None:  # that session was ended too
        response.delete_cookie("nugat_session", path="/")
    return response


@page()
async def confirm_email_change(request: Request, visitor: Visitor) -> Response:
    w = web(request)
    try:
        user = await run_in_threadpool(w.core.account_mail.confirm_email_change, request.path_params["token"])
    except ServiceError as exc:
        title = "Link expired" if exc.status == 410 else "Not changed"
        return _message(request, visitor, title, exc.message, exc.status)
    # The address signs in too: end every other session, as a new password does.
    if visitor.user is not None and visitor.user.id == user.id and visitor.session is not None:
        token = await restart_session(request, visitor)
        response = redirect_notice(
            visitor,
            "/account",
            f"Your email address is now {user.email}; you were signed out everywhere else.",
        )
        return resume_session(request, response, token)
    await run_in_threadpool(w.sessions.end_all, user.id)
    return _message(
        request, visitor, "Address changed", f"The email address of {user.name} is now {user.email}."
    )


routes = [
    Route("/account/confirm/{token}", confirm, methods=["GET"]),
    Route("/account/confirm", resend, methods=["POST"]),
    Route("/account/forgot", forgot_form, methods=["GET"]),
    Route("/account/forgot", forgot, methods=["POST"]),
    Route("/account/reset/{token}", reset_form, methods=["GET"]),
    Route("/account/reset/{token}", reset, methods=["POST"]),
    Route("/account/email/confirm/{token}", confirm_email_change, methods=["GET"]),
]
