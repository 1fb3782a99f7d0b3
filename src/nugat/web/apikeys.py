"""The API Keys pages: list, create, edit, regenerate, delete.

A new secret appears only in the answer to the POST that made it (``Cache-Control: no-store``), never in
a redirect, a cookie or the database. Those forms carry a one-time token, so reloading the answer page
(the browser posts the form again) neither makes another secret nor shows one: a token sent again (a
reload, or Back to the form and send) shows the form again, as typed, with a fresh token and a warning
that it was already sent, so that sending it once more makes another key (or secret) knowingly.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nugat import authz
from nugat.core import Core
from nugat.httpcommon import client_address
from nugat.services import Conflict, NotFound, ServiceError
from nugat.services.accounts import KeyView
from nugat.services.sessions import new_token
from nugat.web.forms import EXPIRY_CHOICES, KeyForm
from nugat.web.pages import Visitor, page, redirect_notice, render, web
from nugat.web.twofactor import SUDO_EXPIRED, needs_sudo, sudo_page

# The key forms post one field per selected package; the 64 KiB bound holds them to about 600 ids.
KEY_FORM_FIELDS = 2000

CREATE_RESENT = (
    "This form was already sent once: a key was made from it, and its secret was shown only once. "
    "Press Create again to make another key."
)
REGENERATE_RESENT = (
    "This confirmation was already sent once: the key was regenerated then, and its secret was shown "
    "only once. Press Regenerate again to make another secret (the one made then stops working)."
)


def _selectable(core: Core, user_id: int) -> dict[str, list[str]]:
    """Each owner the user's keys may act for, with the ids of the packages it owns."""
    owners = core.accounts.key_owners(user_id)
    owned = core.accounts.packages_of([o.id for o in owners])
    return {o.name: [p.package_id for p in owned if o.name in p.owners] for o in owners}


def _key(core: Core, user_name: str, key_id: str) -> KeyView:
    found = next((k for k in core.accounts.list_keys(user_name) if k.id == key_id), None)
    if found is None:
        raise NotFound(f"You have no API key {key_id}")
    return found


@page(signed_in=True)
async def list_keys(request: Request, visitor: Visitor) -> Response:
    core = web(request).core
    keys = await run_in_threadpool(core.accounts.list_keys, visitor.account.name)
    return render(request, visitor, "keys.html", {"keys": keys})


def _form_page(
    request: Request,
    visitor: Visitor,
    form: KeyForm,
    selectable: dict[str, list[str]],
    key: KeyView | None = None,
    error: str | None = None,
    status: int | None = None,
    warning: str | None = None,
) -> Response:
    context = {
        "form": form,
        "key": key,
        "selectable": selectable,
        "expiry_choices": EXPIRY_CHOICES,
        "once": new_token(),
        "error": error,
        "warning": warning,
    }
    status = status or (400 if form.errors or error else 200)
    return render(request, visitor, "key_form.html", context, status=status)


@page(signed_in=True)
async def new_key(request: Request, visitor: Visitor) -> Response:
    if await needs_sudo(request, visitor):
        return sudo_page(request, visitor, "/account/apikeys/new")
    selectable = await run_in_threadpool(_selectable, web(request).core, visitor.account.id)
    return _form_page(request, visitor, KeyForm(owner=visitor.account.name), selectable)


def _secret_page(
    request: Request, visitor: Visitor, key: KeyView, secret: str, regenerated: bool
) -> Response:
    context = {"key": key, "secret": secret, "regenerated": regenerated}
    return render(request, visitor, "key_secret.html", context, no_store=True)


@page(signed_in=True, max_fields=KEY_FORM_FIELDS)
async def create_key(request: Request, visitor: Visitor) -> Response:
    w, user = web(request), visitor.account
    if await needs_sudo(request, visitor):
        return sudo_page(request, visitor, "/account/apikeys/new", SUDO_EXPIRED, 403)
    selectable = await run_in_threadpool(_selectable, w.core, user.id)
    form = KeyForm.parse(visitor.fields(), visitor.values("package"))
    if not form.validate(selectable, creating=True):
        return _form_page(request, visitor, form, selectable)
    if not await run_in_threadpool(w.sessions.claim_once, visitor.field("once")):
        return _form_page(request, visitor, form, selectable, status=409, warning=CREATE_RESENT)
    try:
        key, secret = await run_in_threadpool(
            w.core.accounts.create_key,
            user.name,
            form.name,
            form.scopes,
            form.globs,
            form.packages,
            form.expires_in_days,
            form.owner,
            client_address(request),
        )
    except ServiceError as exc:
        return _refused_form(request, visitor, form, selectable, exc)
    return _secret_page(request, visitor, key, secret, regenerated=False)


def _refused_form(
    request: Request,
    visitor: Visitor,
    form: KeyForm,
    selectable: dict[str, list[str]],
    exc: ServiceError,
    key: KeyView | None = None,
) -> Response:
    """The form again with the service's reason: beside the name when the name is taken."""
    if isinstance(exc, Conflict) and "already has an API key named" in exc.message:
        form.errors = {"name": exc.message}
        return _form_page(request, visitor, form, selectable, key, status=exc.status)
    return _form_page(request, visitor, form, selectable, key, error=exc.message, status=exc.status)


async def _own_key(request: Request, visitor: Visitor) -> KeyView:
    """The visitor's key named in the URL (``NotFound`` is shown as a 404 page by ``page``)."""
    return await run_in_threadpool(
        _key, web(request).core, visitor.account.name, request.path_params["key_id"]
    )


def _edit_choices(core: Core, key: KeyView) -> dict[str, list[str]]:
    """The key's owner only (it cannot change), with its packages and those the key already selects."""
    owned = core.accounts.org_key_choices(key.owner)
    return {key.owner: owned + [p for p in key.packages if p.lower() not in {o.lower() for o in owned}]}


def _check_alive(key: KeyView, what: str) -> None:
    """A revoked key can be neither edited nor regenerated (nor an expired one edited): say why."""
    revoked = key.revoked_reason if key.state == "revoked" else None
    decision = authz.can_change_key(key.name, what, revoked_reason=revoked, expired=key.state == "expired")
    authz.require(decision)


@page(signed_in=True)
async def edit_form(request: Request, visitor: Visitor) -> Response:
    key = await _own_key(request, visitor)
    _check_alive(key, "edited")
    choices = await run_in_threadpool(_edit_choices, web(request).core, key)
    return _form_page(request, visitor, KeyForm.from_key(key), choices, key)


@page(signed_in=True, max_fields=KEY_FORM_FIELDS)
async def edit(request: Request, visitor: Visitor) -> Response:
    key = await _own_key(request, visitor)
    _check_alive(key, "edited")
    core = web(request).core
    choices = await run_in_threadpool(_edit_choices, core, key)
    form = KeyForm.parse(visitor.fields(), visitor.values("package"))
    form.keep_scopes_of(key)  # as on nuget.org, an edit never changes what a key may do
    form.owner = key.owner
    if not form.validate(choices, creating=False):
        return _form_page(request, visitor, form, choices, key)
    try:
        await run_in_threadpool(
            lambda: core.accounts.edit_key(
                visitor.account.name,
                key.id,
                name=form.name,
                globs=form.globs,
                packages=form.packages,
                address=client_address(request),
            )
        )
    except ServiceError as exc:
        return _refused_form(request, visitor, form, choices, exc, key)
    return redirect_notice(visitor, "/account/apikeys", f"API key '{form.name}' saved.")


@page(signed_in=True)
async def regenerate_form(request: Request, visitor: Visitor) -> Response:
    """Ask first, as Delete does: the old secret stops working at once."""
    key = await _own_key(request, visitor)
    _check_alive(key, "regenerated")
    if await needs_sudo(request, visitor):
        return sudo_page(request, visitor, f"/account/apikeys/{key.id}/regenerate")
    return _regenerate_page(request, visitor, key)


def _regenerate_page(
    request: Request, visitor: Visitor, key: KeyView, warning: str | None = None, status: int = 200
) -> Response:
    context = {"key": key, "once": new_token(), "warning": warning}
    return render(request, visitor, "key_regenerate.html", context, status=status)


@page(signed_in=True)
async def regenerate(request: Request, visitor: Visitor) -> Response:
    w = web(request)
    if await needs_sudo(request, visitor):
        target = f"/account/apikeys/{request.path_params['key_id']}/regenerate"
        return sudo_page(request, visitor, target, SUDO_EXPIRED, 403)
    if not await run_in_threadpool(w.sessions.claim_once, visitor.field("once")):
        key = await _own_key(request, visitor)
        _check_alive(key, "regenerated")
        return _regenerate_page(request, visitor, key, REGENERATE_RESENT, status=409)
    key, secret = await run_in_threadpool(
        w.core.accounts.regenerate_key,
        visitor.account.name,
        request.path_params["key_id"],
        client_address(request),
    )
    return _secret_page(request, visitor, key, secret, regenerated=True)


@page(signed_in=True)
async def delete_form(request: Request, visitor: Visitor) -> Response:
    key = await _own_key(request, visitor)
    return render(request, visitor, "key_delete.html", {"key": key})


@page(signed_in=True)
async def delete(request: Request, visitor: Visitor) -> Response:
    key = await _own_key(request, visitor)
    await run_in_threadpool(
        web(request).core.accounts.delete_key, visitor.account.name, key.id, client_address(request)
    )
    return redirect_notice(visitor, "/account/apikeys", f"API key '{key.name}' deleted.")


routes = [
    Route("/account/apikeys", list_keys, methods=["GET"]),
    Route("/account/apikeys", create_key, methods=["POST"]),
    Route("/account/apikeys/new", new_key, methods=["GET"]),
    Route("/account/apikeys/{key_id}/edit", edit_form, methods=["GET"]),
    Route("/account/apikeys/{key_id}/edit", edit, methods=["POST"]),
    Route("/account/apikeys/{key_id}/regenerate", regenerate_form, methods=["GET"]),
    Route("/account/apikeys/{key_id}/regenerate", regenerate, methods=["POST"]),
    Route("/account/apikeys/{key_id}/delete", delete_form, methods=["GET"]),
    Route("/account/apikeys/{key_id}/delete", delete, methods=["POST"]),
]
