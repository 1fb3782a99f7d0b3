"""What every page shares: templates, the visitor (signed in or not), CSRF checks and cookies."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from nugat.authz import User
from nugat.core import Core
from nugat.db.models import Account
from nugat.httpcommon import base_url
from nugat.keys import Scope, scope_actions
from nugat.services import ServiceError
from nugat.services.actors import user_actor
from nugat.services.readers import ReadView
from nugat.services.sessions import SESSION_COOKIE, SESSION_LIFETIME, Sessions, new_token
from nugat.web import display
from nugat.web.formbody import MAX_FORM_FIELDS, read_form

CSRF_COOKIE = "nugat_csrf"  # before sign-in, the value the forms' CSRF tokens are bound to
FORM_EXPIRED = (
    "This form has expired or did not come from this site. "
    "Go back, reload the page and try again (cookies must be enabled)."
)

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    date=display.date,
    datetime_utc=display.datetime_utc,
    iso_utc=display.iso_utc,
    expiry=display.expiry,
    scope_label=display.scope_label,
    version_range=display.version_range,
    count=display.count,
    detail=display.detail,
    breakable=display.breakable,
)
_env.globals.update(scopes=list(Scope), scope_actions=scope_actions())  # the scope checkboxes, in order
templates = Jinja2Templates(env=_env)


@dataclass
class Web:
    core: Core
    sessions: Sessions


def web(request: Request) -> Web:
    """The services the pages use, built once per application."""
    state = request.app.state
    if not hasattr(state, "web"):
        core: Core = state.core
        state.web = Web(core, Sessions(core.db, core.settings.server_secret()))
    found: Web = state.web
    return found


@dataclass
class Visitor:
    user: Account | None
    session: str | None  # the session token, when signed in
    csrf: str  # the token every form of the page carries
    invitations: int = 0  # co-ownership invitations the user can answer (counted in the menu)
    form: FormData | None = None
    signed_in_as: User | None = None  # the user's facts for ``authz``, read with the session

    @property
    def actor(self) -> User:
        """The signed-in user as ``authz`` sees it (on pages that require one)."""
        assert self.signed_in_as is not None
        return self.signed_in_as

    def field(self, name: str) -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else ""

    def fields(self) -> dict[str, str]:
        return {name: self.field(name) for name in (self.form or {})}

    def values(self, name: str) -> list[str]:
        return [v for v in (self.form.getlist(name) if self.form else []) if isinstance(v, str)]

    @property
    def account(self) -> Account:
        """The signed-in user (on pages that require one)."""
        assert self.user is not None
        return self.user


Handler = Callable[[Request, Visitor], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def _signed_in(w: Web, token: str) -> tuple[Account | None, User | None, int]:
    """The session's user, its facts for ``authz``, and how many co-ownership invitations wait for it."""
    user = w.sessions.user(token)
    if user is None:
        return None, None, 0
    with w.core.db.reading() as s:
        actor = user_actor(s, user)
    return user, actor, len(w.core.owners.invitations_to(user.name))


def read_view(request: Request, visitor: Visitor) -> ReadView:
    """What the visitor may read: a signed-in user reads its organizations' private packages too."""
    return ReadView(visitor.signed_in_as, web(request).core.settings.public_reads)


def is_https(request: Request) -> bool:
    return base_url(request).startswith("https:")


def page(
    *, signed_in: bool = False, reads: bool = False, max_fields: int = MAX_FORM_FIELDS
) -> Callable[[Handler], Endpoint]:
    """Wrap a page handler: find the visitor, send strangers of ``signed_in`` pages (and of ``reads``
    pages, which show packages, on a ``NUGAT_READ_ACCESS=users`` site) to the sign-in page,
    and refuse any POST whose form is over the bounds (``nugat.web.formbody``; ``max_fields``: the
    most fields the page takes) or has no valid CSRF token (or was sent from another site). A
    ``ServiceError`` the handler lets through (a refusal of ``authz``, a missing package) is shown as
    a page saying why, with its status (``refused``)."""

    def wrap(handler: Handler) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            w = web(request)
            sessions = w.sessions
            token = request.cookies.get(SESSION_COOKIE)
            user, actor, invitations = (
                await run_in_threadpool(_signed_in, w, token) if token else (None, None, 0)
            )
            session = token if user is not None else None
            fresh = None if session or request.cookies.get(CSRF_COOKIE) else new_token()
            binding = session or fresh or request.cookies.get(CSRF_COOKIE, "")
            visitor = Visitor(user, session, sessions.csrf_token(binding), invitations, signed_in_as=actor)
            must_sign_in = signed_in or (reads and not w.core.settings.public_reads)
            response = await _answer(request, visitor, handler, binding, must_sign_in, max_fields)
            if fresh is not None:
                set_cookie(request, response, CSRF_COOKIE, fresh, max_age=None)
            if token and user is None and not _sets_cookie(response, SESSION_COOKIE):  # not a sign-in
                response.delete_cookie(SESSION_COOKIE, path="/")
            return response

        return endpoint

    return wrap


async def _answer(
    request: Request, visitor: Visitor, handler: Handler, binding: str, signed_in: bool, max_fields: int
) -> Response:
    """The handler's answer, or why it was not asked: a form over the bounds (read before anything is
    parsed), a stranger on a signed-in page, a form without a valid CSRF token or from another site."""
    if request.method == "POST":
        try:
            visitor.form = await read_form(request, max_fields)
        except ServiceError as exc:  # only a hostile or broken client: a plain answer, cheap to send
            return PlainTextResponse(
                exc.message, status_code=exc.status, headers={"cache-control": "no-store"}
            )
    if signed_in and visitor.user is None:
        target = "/"  # a form's answer is no page to come back to
        if request.method != "POST":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(f"/signin?next={quote(target, safe='/')}")
    if visitor.form is not None and (
        # Another site's page, or a page of another host or port of this site (which could also have
        # set this site's cookies: a sign-in form bound to a cookie it planted, "login CSRF").
        request.headers.get("sec-fetch-site") in ("cross-site", "same-site")
        or not web(request).sessions.check_csrf(binding, visitor.field("csrf"))
    ):
        context = {"title": "Form expired", "message": FORM_EXPIRED}
        return render(request, visitor, "message.html", context, status=403)
    try:
        return await handler(request, visitor)
    except ServiceError as exc:
        return refused(request, visitor, exc)


def _sets_cookie(response: Response, name: str) -> bool:
    return any(value.startswith(f"{name}=") for value in response.headers.getlist("set-cookie"))


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=is_https(request), httponly=True, samesite="lax"
    )


def start_session(request: Request, response: Response, token: str) -> Response:
    set_cookie(request, response, SESSION_COOKIE, token, max_age=int(SESSION_LIFETIME.total_seconds()))
    return response


async def restart_session(request: Request, visitor: Visitor) -> str | None:
    """After the signed-in user changed what signs in (password, email, two-factor sign-in): every session
    of the account ends, this browser's too (a stolen copy of its cookie must die with the others), and
    this browser gets a new token (``Sessions.restart``), or None if its session ended meanwhile. The
    visitor then carries the new session and its form token, so a notice signed for it after this call
    shows; ``resume_session`` puts the token in the answer's cookie."""
    w = web(request)
    assert visitor.session is not None
    token = await run_in_threadpool(w.sessions.restart, visitor.account.id, visitor.session)
    if token is not None:
        visitor.session, visitor.csrf = token, w.sessions.csrf_token(token)
    return token


def resume_session(request: Request, response: Response, token: str | None) -> Response:
    """``response`` with the cookie of the session ``restart_session`` gave (none: signed out)."""
    if token is None:
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    return start_session(request, response, token)


def render(
    request: Request,
    visitor: Visitor,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    no_store: bool = False,
    headers: dict[str, str] | None = None,
) -> Response:
    """A page; ``no_store`` for one that shows a secret. Every page of a signed-in visitor is no-store too:
    no copy of it stays in the browser's cache, for Back to show after signing out on a shared machine.

    Every page shows the notice its URL carries (``notice_link``) when it was signed for this visitor.
    """
    settings = web(request).core.settings
    return templates.TemplateResponse(
        request,
        template,
        {
            "user": visitor.user,
            "csrf": visitor.csrf,
            "invitations": visitor.invitations,
            "allow_signup": settings.allow_signup,
            "mail_enabled": settings.mail_enabled,
            "require_2fa": settings.require_2fa,
            "notice": notice_of(request, visitor),
            "here": _here(request),
            **(context or {}),
        },
        status_code=status,
        headers={
            "cache-control": "no-store" if no_store or visitor.user else "private, no-cache",
            **(headers or {}),
        },
    )


def _here(request: Request) -> str | None:
    """Where the header's Sign in link comes back to: this page (its path and query), or on the sign-in
    and sign-up pages their own ``next``; none after a form."""
    if request.method != "GET":
        return None
    if request.url.path in ("/signin", "/signup"):
        return request.query_params.get("next")
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def not_found(request: Request, visitor: Visitor, message: str) -> Response:
    return render(request, visitor, "message.html", {"title": "Not found", "message": message}, status=404)


def refused(request: Request, visitor: Visitor, exc: ServiceError) -> Response:
    """A page saying why the service refused, with its status."""
    title = {403: "Not allowed", 404: "Not found"}.get(exc.status, "Not changed")
    context = {"title": title, "message": exc.message}
    return render(request, visitor, "message.html", context, status=exc.status)


def redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


def _notice_signature(visitor: Visitor, text: str) -> str:
    # Keyed by the visitor's form token (an HMAC of their session): nobody else can sign for them.
    return hmac.new(visitor.csrf.encode(), text.encode(), hashlib.sha256).hexdigest()[:32]


def notice_link(visitor: Visitor, path: str, text: str) -> str:
    """``path`` showing the notice ``text`` ("API key 'ci' deleted.") to this visitor only: a link made
    by someone else, to show a user a notice of their choosing, shows none."""
    return f"{path}?{urlencode({'notice': text, 'sig': _notice_signature(visitor, text)})}"


def notice_of(request: Request, visitor: Visitor) -> str | None:
    text, signature = (request.query_params.get(k, "") for k in ("notice", "sig"))
    if not text or not hmac.compare_digest(_notice_signature(visitor, text).encode(), signature.encode()):
        return None
    return text


def redirect_notice(visitor: Visitor, path: str, text: str) -> Response:
    """After a change: to ``path``, saying what changed."""
    return redirect(notice_link(visitor, path, text))
