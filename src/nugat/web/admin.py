"""Site admin pages: reserved package id prefixes (list, reserve for owners, release); users (list, search,
disable, enable); revoking leaked keys in bulk."""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nugat import authz
from nugat.httpcommon import client_address
from nugat.prefixes import InvalidPrefix, normalize_prefix
from nugat.services import NotFound, ServiceError
from nugat.services.leaks import find_keys
from nugat.web.pages import Visitor, page, redirect_notice, render, web

_SPLIT = re.compile(r"[\s,]+")


async def _prefixes(
    request: Request,
    visitor: Visitor,
    *,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    values: dict[str, str] | None = None,
) -> Response:
    authz.require(authz.can_reserve_prefixes(visitor.actor))
    found = await run_in_threadpool(web(request).core.prefixes.all)
    context = {"prefixes": found, "error": error, "errors": errors or {}, "values": values or {}}
    return render(request, visitor, "prefixes.html", context, status=status)


@page(signed_in=True)
async def prefixes(request: Request, visitor: Visitor) -> Response:
    return await _prefixes(request, visitor)


def _form_errors(prefix: str, names: list[str]) -> dict[str, str]:
    """The reserve form's field errors found without the database."""
    errors = {}
    try:
        normalize_prefix(prefix)
    except InvalidPrefix as exc:
        errors["prefix"] = str(exc)[:1].upper() + str(exc)[1:]
    if not names:
        errors["owners"] = "Name at least one owner for the prefix"
    return errors


@page(signed_in=True)
async def reserve(request: Request, visitor: Visitor) -> Response:
    service, by = web(request).core.prefixes, visitor.account.name
    prefix, owners = visitor.field("prefix").strip(), visitor.field("owners").strip()
    names = [n for n in _SPLIT.split(owners) if n]
    values = {"prefix": prefix, "owners": owners}
    errors = _form_errors(prefix, names)
    if errors and authz.can_reserve_prefixes(visitor.actor).allowed:
        return await _prefixes(request, visitor, errors=errors, status=400, values=values)
    try:
        address = client_address(request)
        reserved = await run_in_threadpool(lambda: service.reserve(prefix, names, by=by, address=address))
    except NotFound as exc:  # an owner that does not exist
        errors = {"owners": exc.message}
        return await _prefixes(request, visitor, errors=errors, status=exc.status, values=values)
    except ServiceError as exc:
        return await _prefixes(request, visitor, error=exc.message, status=exc.status, values=values)
    notice = f"Prefix {reserved} reserved for {', '.join(names)}."
    return redirect_notice(visitor, "/admin/prefixes", notice)


@page(signed_in=True)
async def release(request: Request, visitor: Visitor) -> Response:
    service, by = web(request).core.prefixes, visitor.account.name
    prefix, owner = visitor.field("prefix"), visitor.field("owner")
    try:
        address = client_address(request)
        await run_in_threadpool(lambda: service.release(prefix, owner, by=by, address=address))
    except ServiceError as exc:
        return await _prefixes(request, visitor, error=exc.message, status=exc.status)
    return redirect_notice(visitor, "/admin/prefixes", f"Reservation of {prefix} for {owner} released.")


def _revoke_page(
    request: Request, visitor: Visitor, *, result: str | None = None, status: int = 200
) -> Response:
    authz.require(authz.can_revoke_leaked_keys(visitor.actor))
    return render(request, visitor, "revoke.html", {"result": result}, status=status)


@page(signed_in=True)
async def revoke_form(request: Request, visitor: Visitor) -> Response:
    return _revoke_page(request, visitor)


@page(signed_in=True)
async def revoke(request: Request, visitor: Visitor) -> Response:
    """Revoke every valid key in the pasted text (a leak a site admin was told of)."""
    if not authz.can_revoke_leaked_keys(visitor.actor).allowed:
        return _revoke_page(request, visitor)
    text, where = visitor.field("keys"), visitor.field("source").strip()[:400]
    found = find_keys(text)
    reason = "A site administrator revoked it as leaked."
    source = where or None
    count = await run_in_threadpool(
        lambda: web(request).core.leaks.revoke(found, reason, source=source, by=visitor.account.name)
    )
    result = (
        f"{count} key{'s' * (count != 1)} revoked, of {len(found)} key-shaped "
        f"string{'s' * (len(found) != 1)} found; their owners were told."
    )
    return _revoke_page(request, visitor, result=result)


# Users -----------------------------------------------------------------------------------------------------


async def _users(
    request: Request, visitor: Visitor, *, error: str | None = None, status: int = 200
) -> Response:
    authz.require(authz.can_manage_users(visitor.actor))
    q = request.query_params.get("q", "").strip()[:254]
    found = await run_in_threadpool(web(request).core.accounts.users, q)
    return render(request, visitor, "users.html", {"users": found, "q": q, "error": error}, status=status)


@page(signed_in=True)
async def users(request: Request, visitor: Visitor) -> Response:
    return await _users(request, visitor)


@page(signed_in=True)
async def disable_form(request: Request, visitor: Visitor) -> Response:
    """Ask first: the user's keys are revoked for good."""
    authz.require(authz.can_manage_users(visitor.actor))
    name = request.path_params["name"]
    context = {
        "title": f"Disable {name}?",
        "message": (
            f"{name} is signed out everywhere and can no longer sign in, and every API key {name} made "
            "(their own and their organizations') is revoked at once, for good: enabling them again does "
            "not bring the keys back."
        ),
        "action": f"/admin/users/{name}/disable",
        "button": "Disable",
        "cancel": "/admin/users",
    }
    return render(request, visitor, "confirm.html", context)


@page(signed_in=True)
async def disable(request: Request, visitor: Visitor) -> Response:
    accounts, by, name = web(request).core.accounts, visitor.account.name, request.path_params["name"]
    try:
        address = client_address(request)
        account, changed = await run_in_threadpool(
            lambda: accounts.disable_account(name, by=by, address=address)
        )
    except ServiceError as exc:
        return await _users(request, visitor, error=exc.message, status=exc.status)
    notice = (
        f"{account.name} disabled: signed out everywhere, API keys revoked."
        if changed
        else f"{account.name} is already disabled."
    )
    return redirect_notice(visitor, "/admin/users", notice)


@page(signed_in=True)
async def enable(request: Request, visitor: Visitor) -> Response:
    accounts, by, name = web(request).core.accounts, visitor.account.name, request.path_params["name"]
    try:
        address = client_address(request)
        account, changed = await run_in_threadpool(
            lambda: accounts.enable_account(name, by=by, address=address)
        )
    except ServiceError as exc:
        return await _users(request, visitor, error=exc.message, status=exc.status)
    notice = (
        f"{account.name} enabled: they can sign in again." if changed else f"{account.name} is not disabled."
    )
    return redirect_notice(visitor, "/admin/users", notice)


routes = [
    Route("/admin/revoke", revoke_form, methods=["GET"]),
    Route("/admin/revoke", revoke, methods=["POST"]),
    Route("/admin/prefixes", prefixes, methods=["GET"]),
    Route("/admin/prefixes", reserve, methods=["POST"]),
    Route("/admin/prefixes/release", release, methods=["POST"]),
    Route("/admin/users", users, methods=["GET"]),
    Route("/admin/users/{name}/disable", disable_form, methods=["GET"]),
    Route("/admin/users/{name}/disable", disable, methods=["POST"]),
    Route("/admin/users/{name}/enable", enable, methods=["POST"]),
]
