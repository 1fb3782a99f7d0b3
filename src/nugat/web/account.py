"""Sign up, sign in, sign out and account settings (password, email)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nugat.db.models import Account
from nugat.protocol.http import client_address
from nugat.services import ServiceError, TooManyRequests
from nugat.services.accounts import Accounts, check_email, check_name, check_password
from nugat.web.forms import safe_next
from nugat.web.pages import (
    SESSION_COOKIE,
    Visitor,
    page,
    redirect,
    redirect_notice,
    render,
    start_session,
    web,
)


def _field_error(check: Callable[[], None]) -> str | None:
    try:
        check()
    except ServiceError as exc:
        return exc.message
    return None


async def _sign_in(request: Request, accounts: Accounts, login: str, password: str) -> Account:
    """The account whose password this is, or a ServiceError; an attempt at an account many have failed
    at waits here first (without holding a thread), as ``Accounts.sign_in_delay`` says."""
    address = client_address(request)
    delay = await run_in_threadpool(accounts.sign_in_delay, login, address)
    if delay:
        await asyncio.sleep(delay)
    return await run_in_threadpool(accounts.sign_in, login, password, address)


@page()
async def signin_form(request: Request, visitor: Visitor) -> Response:
    target = safe_next(request.query_params.get("next"))
    if visitor.user is not None:
        return redirect(target)
    return render(request, visitor, "signin.html", {"next": target, "login": ""})


@page()
async def signin(request: Request, visitor: Visitor) -> Response:
    core = web(request).core
    login, target = visitor.field("login").strip(), safe_next(visitor.field("next"))
    try:
        user = await _sign_in(request, core.accounts, login, visitor.field("password"))
    except ServiceError as exc:
        context = {"next": target, "login": login, "error": exc.message}
        if isinstance(exc, TooManyRequests):
            headers = {"retry-after": str(exc.retry_after)}
            return render(request, visitor, "signin.html", context, status=429, headers=headers)
        return render(request, visitor, "signin.html", context, status=403 if exc.status == 403 else 400)
    token = await run_in_threadpool(web(request).sessions.start, user.id)
    return start_session(request, redirect(target), token)


@page()
async def signout(request: Request, visitor: Visitor) -> Response:
    if visitor.session is not None:
        await run_in_threadpool(web(request).sessions.end, visitor.session)
    response = redirect("/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _signup_closed(request: Request, visitor: Visitor) -> Response:
    message = "This server does not allow signing up: ask its administrator for an account."
    return render(request, visitor, "message.html", {"title": "Sign up", "message": message}, status=404)


@page()
async def signup_form(request: Request, visitor: Visitor) -> Response:
    if not web(request).core.settings.allow_signup:
        return _signup_closed(request, visitor)
    return render(request, visitor, "signup.html", {"values": {}, "errors": {}})


@page()
async def signup(request: Request, visitor: Visitor) -> Response:
    core = web(request).core
    if not core.settings.allow_signup:
        return _signup_closed(request, visitor)
    name, email = visitor.field("username").strip(), visitor.field("email").strip()
    password = visitor.field("password")
    errors = {
        "username": _field_error(lambda: check_name(name)),
        "email": _field_error(lambda: check_email(email)),
        "password": _field_error(lambda: check_password(password, (name, email))),
        "confirm": None if visitor.field("confirm") == password else "The passwords do not match",
    }
    error = None
    if not any(errors.values()):
        first_admin = core.settings.first_signup_is_admin
        try:
            user = await run_in_threadpool(
                core.accounts.create_user, name, email, password, admin_if_first=first_admin
            )
        except ServiceError as exc:
            error = exc.message
        else:
            token = await run_in_threadpool(web(request).sessions.start, user.id)
            return start_session(request, redirect("/account/apikeys"), token)
    context = {"values": {"username": name, "email": email}, "errors": errors, "error": error}
    return render(request, visitor, "signup.html", context, status=400)


def _settings_page(
    request: Request, visitor: Visitor, errors: dict[str, str | None] | None = None, status: int = 200
) -> Response:
    context = {"errors": errors or {}}
    return render(request, visitor, "settings.html", context, status=status)


@page(signed_in=True)
async def settings(request: Request, visitor: Visitor) -> Response:
    return _settings_page(request, visitor)


async def _reauthenticate(request: Request, visitor: Visitor) -> str | None:
    """None if the current password is right, else why not (throttled like signing in)."""
    accounts = web(request).core.accounts
    try:
        await _sign_in(request, accounts, visitor.account.name, visitor.field("current"))
    except ServiceError as exc:
        return "Your current password is wrong" if exc.status == 401 else exc.message
    return None


@page(signed_in=True)
async def change_password(request: Request, visitor: Visitor) -> Response:
    user, password = visitor.account, visitor.field("password")
    errors = {
        "password": _field_error(lambda: check_password(password, (user.name, user.email or ""))),
        "confirm": None if visitor.field("confirm") == password else "The passwords do not match",
    }
    if not any(errors.values()):
        errors["current"] = await _reauthenticate(request, visitor)
    if any(errors.values()):
        return _settings_page(request, visitor, {f"password_{k}": v for k, v in errors.items()}, 400)
    w = web(request)
    await run_in_threadpool(w.core.accounts.set_password, user.id, password)
    assert visitor.session is not None
    await run_in_threadpool(w.sessions.end_others, user.id, visitor.session)
    return redirect_notice(
        visitor, "/account", "Your password was changed; you were signed out everywhere else."
    )


@page(signed_in=True)
async def change_email(request: Request, visitor: Visitor) -> Response:
    email = visitor.field("email").strip()
    errors = {"email": _field_error(lambda: check_email(email))}
    if not errors["email"]:
        errors["current"] = await _reauthenticate(request, visitor)
    if not any(errors.values()):
        try:
            await run_in_threadpool(web(request).core.accounts.set_email, visitor.account.id, email)
        except ServiceError as exc:
            errors["email"] = exc.message
    if any(errors.values()):
        return _settings_page(request, visitor, {f"email_{k}": v for k, v in errors.items()}, 400)
    # The email signs in too: end every other session, as a new password does (whoever else holds one
    # may be why it changed).
    assert visitor.session is not None
    await run_in_threadpool(web(request).sessions.end_others, visitor.account.id, visitor.session)
    return redirect_notice(
        visitor, "/account", f"Your email address is now {email}; you were signed out everywhere else."
    )


routes = [
    Route("/signin", signin_form, methods=["GET"]),
    Route("/signin", signin, methods=["POST"]),
    Route("/signout", signout, methods=["POST"]),
    Route("/signup", signup_form, methods=["GET"]),
    Route("/signup", signup, methods=["POST"]),
    Route("/account", settings, methods=["GET"]),
    Route("/account/password", change_password, methods=["POST"]),
    Route("/account/email", change_email, methods=["POST"]),
]
