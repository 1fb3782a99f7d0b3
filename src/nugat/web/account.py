"""Sign up, sign in, sign out and account settings (password, email)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nugat.db.models import Account
from nugat.httpcommon import client_address
from nugat.services import ServiceError, TooManyRequests
from nugat.services.accounts import Accounts, check_email, check_name, check_password
from nugat.services.sessions import SESSION_COOKIE, new_token
from nugat.web.forms import safe_next
from nugat.web.pages import (
    Visitor,
    page,
    redirect,
    redirect_notice,
    render,
    restart_session,
    resume_session,
    set_cookie,
    start_session,
    web,
)

SECOND_STEP_COOKIE = "nugat_signin"  # between the password and the two-factor code
DEVICE_COOKIE = "nugat_device"  # tells a browser signed in from before from a new one
DEVICE_COOKIE_AGE = 400 * 24 * 3600


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
    if user.totp_enabled_at is not None:
        pending = await run_in_threadpool(core.account_mail.start_second_step, user.id)
        response = render(request, visitor, "signin_code.html", {"next": target})
        set_cookie(request, response, SECOND_STEP_COOKIE, pending, max_age=600)
        return response
    return await _signed_in(request, user, redirect(target))


async def _signed_in(request: Request, user: Account, response: Response) -> Response:
    """Start the session; remember the browser, and tell the owner about a new one."""
    w = web(request)
    replaced = request.cookies.get(SESSION_COOKIE)
    if replaced:  # the browser's session before this sign-in (perhaps another account's) ends
        await run_in_threadpool(w.sessions.end, replaced)
    token = await run_in_threadpool(w.sessions.start, user.id)
    device = request.cookies.get(DEVICE_COOKIE, "")
    if not 20 <= len(device) <= 128:
        device = new_token()
    agent = request.headers.get("user-agent", "")
    await run_in_threadpool(w.core.account_mail.signed_in, user, device, client_address(request), agent)
    set_cookie(request, response, DEVICE_COOKIE, device, max_age=DEVICE_COOKIE_AGE)
    return start_session(request, response, token)


@page()
async def signin_code(request: Request, visitor: Visitor) -> Response:
    """The second step of a sign-in: the code from the authenticator app, or a recovery code."""
    core = web(request).core
    target = safe_next(visitor.field("next"))
    pending = request.cookies.get(SECOND_STEP_COOKIE, "")
    user = await run_in_threadpool(core.account_mail.second_step, pending)
    if user is None or user.totp_enabled_at is None:
        message = "The sign-in took too long or was already finished: sign in again."
        return render(request, visitor, "signin.html", {"next": target, "login": "", "error": message},
                      status=400)  # fmt: skip
    try:
        how = await run_in_threadpool(
            core.twofactor.check, user.id, visitor.field("code"), client_address(request)
        )
    except ServiceError as exc:
        context = {"next": target, "error": exc.message}
        headers = {"retry-after": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
        status = 429 if isinstance(exc, TooManyRequests) else 400
        return render(request, visitor, "signin_code.html", context, status=status, headers=headers)
    try:
        await run_in_threadpool(core.account_mail.finish_second_step, pending)
    except ServiceError as exc:
        return render(request, visitor, "signin.html", {"next": target, "login": "", "error": exc.message},
                      status=400)  # fmt: skip
    if how == "recovery":
        left = await run_in_threadpool(core.twofactor.recovery_left, user.id)
        target = "/account"
        response = redirect(f"/account?recovery_left={left}")
    else:
        response = redirect(target)
    response.delete_cookie(SECOND_STEP_COOKIE, path="/")
    return await _signed_in(request, user, response)


@page()
async def signout_form(request: Request, visitor: Visitor) -> Response:
    """A link or a typed address to /signout: a button to sign out (a GET changes nothing)."""
    return render(request, visitor, "signout.html")


@page()
async def signout(request: Request, visitor: Visitor) -> Response:
    if visitor.session is not None:
        await run_in_threadpool(web(request).sessions.end, visitor.session)
    response = redirect("/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _signup_next(target: str | None) -> str | None:
    """Where a new account goes after signing up, as the sign-in's ``next`` (None: to its API Keys)."""
    return safe_next(target) if target else None


def _signup_closed(request: Request, visitor: Visitor) -> Response:
    message = "This server does not allow signing up: ask its administrator for an account."
    return render(request, visitor, "message.html", {"title": "Sign up", "message": message}, status=404)


@page()
async def signup_form(request: Request, visitor: Visitor) -> Response:
    if not web(request).core.settings.allow_signup:
        return _signup_closed(request, visitor)
    context: dict[str, object] = {
        "values": {},
        "errors": {},
        "next": _signup_next(request.query_params.get("next")),
    }
    return render(request, visitor, "signup.html", context)


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
        confirm = core.settings.email_confirmation
        try:
            user = await run_in_threadpool(
                lambda: core.account_mail.sign_up(
                    name, email, password, confirm=confirm, admin_if_first=first_admin
                )
            )
        except ServiceError as exc:
            error = exc.message
        else:
            if core.outbox.enabled:
                # The same page whether the address was free (its link is mailed) or an account's
                # already (its owner is mailed): nobody learns from it which addresses have accounts.
                done = {"name": name, "email": email}
                return render(request, visitor, "signup_done.html", done)
            assert user is not None
            target = _signup_next(visitor.field("next")) or "/account/apikeys"
            return await _signed_in(request, user, redirect(target))
    context: dict[str, object] = {
        "values": {"username": name, "email": email},
        "errors": errors,
        "error": error,
        "next": _signup_next(visitor.field("next")),
    }
    return render(request, visitor, "signup.html", context, status=400)


def _recovery_left(text: str) -> int | None:
    """The count of recovery codes left that the sign-in's redirect carries; anything but a small number
    (the URL is anyone's to write) shows no warning."""
    return int(text) if len(text) <= 2 and text.isascii() and text.isdigit() else None


def _settings_page(
    request: Request, visitor: Visitor, errors: dict[str, str | None] | None = None, status: int = 200
) -> Response:
    core = web(request).core
    context = {
        "errors": errors or {},
        "recovery_left": core.twofactor.recovery_left(visitor.account.id),
        "recovery_warning": _recovery_left(request.query_params.get("recovery_left", "")),
        "new_email": visitor.field("email").strip(),  # as typed, after a refusal
        "sessions": web(request).sessions.count(visitor.account.id),
    }
    return render(request, visitor, "settings.html", context, status=status)


@page(signed_in=True)
async def settings(request: Request, visitor: Visitor) -> Response:
    return await run_in_threadpool(_settings_page, request, visitor)


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
        errors = {f"password_{k}": v for k, v in errors.items()}
        return await run_in_threadpool(_settings_page, request, visitor, errors, 400)
    await run_in_threadpool(web(request).core.accounts.set_password, user.id, password)
    token = await restart_session(request, visitor)
    response = redirect_notice(
        visitor, "/account", "Your password was changed; you were signed out everywhere else."
    )
    return resume_session(request, response, token)


@page(signed_in=True)
async def change_email(request: Request, visitor: Visitor) -> Response:
    email = visitor.field("email").strip()
    errors = {"email": _field_error(lambda: check_email(email))}
    if not errors["email"]:
        errors["current"] = await _reauthenticate(request, visitor)
    changed = False
    if not any(errors.values()):
        try:
            changed = await run_in_threadpool(
                web(request).core.account_mail.request_email_change, visitor.account.id, email
            )
        except ServiceError as exc:
            errors["email"] = exc.message
    if any(errors.values()):
        errors = {f"email_{k}": v for k, v in errors.items()}
        return await run_in_threadpool(_settings_page, request, visitor, errors, 400)
    if not changed:
        return redirect_notice(
            visitor,
            "/account",
            f"We sent a link to {email}: your address changes once you open it. "
            f"{visitor.account.email} was told of the change.",
        )
    # The email signs in too: end every other session, as a new password does (whoever else holds one
    # may be why it changed).
    token = await restart_session(request, visitor)
    response = redirect_notice(
        visitor, "/account", f"Your email address is now {email}; you were signed out everywhere else."
    )
    return resume_session(request, response, token)


@page(signed_in=True)
async def signout_others(request: Request, visitor: Visitor) -> Response:
    """Sign out every other browser (a lost laptop, a shared machine); this one gets a new session token,
    so a copy of its cookie is signed out too."""
    token = await restart_session(request, visitor)
    response = redirect_notice(visitor, "/account", "You were signed out everywhere else.")
    return resume_session(request, response, token)


routes = [
    Route("/signin", signin_form, methods=["GET"]),
    Route("/signin", signin, methods=["POST"]),
    Route("/signin/code", signin_code, methods=["POST"]),
    Route("/signout", signout_form, methods=["GET"]),
    Route("/signout", signout, methods=["POST"]),
    Route("/signup", signup_form, methods=["GET"]),
    Route("/signup", signup, methods=["POST"]),
    Route("/account", settings, methods=["GET"]),
    Route("/account/password", change_password, methods=["POST"]),
    Route("/account/email", change_email, methods=["POST"]),
    Route("/account/sessions", signout_others, methods=["POST"]),
]
