"""Package owners: the Manage owners page (invite, cancel an invitation, remove an owner) and the
Invitations page where the invited user, or an administrator of the invited organization, answers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nugat import authz
from nugat.core import Core
from nugat.httpcommon import client_address
from nugat.services import NotFound, ServiceError
from nugat.services.owners import Owner, OwnershipInvite
from nugat.services.readers import ReadView
from nugat.web.pages import Visitor, page, read_view, redirect, redirect_notice, render, web


@dataclass(frozen=True)
class OwnersPage:
    package_id: str
    owners: list[Owner]
    invitations: list[OwnershipInvite]


def _owners_page(core: Core, package_id: str, user_name: str, view: ReadView) -> OwnersPage:
    owners = core.owners
    access = owners.access(package_id, user_name)
    if access is None or not core.readers.can_read(view, package_id):
        raise NotFound(f"There is no package {package_id} on this server.")
    package_id, may = access
    authz.require(may)
    return OwnersPage(package_id, owners.of_package(package_id), owners.invitations_for_package(package_id))


async def _show(
    request: Request, visitor: Visitor, *, error: str | None = None, status: int = 200, invitee: str = ""
) -> Response:
    core, package_id = web(request).core, request.path_params["id"]
    view = read_view(request, visitor)
    found = await run_in_threadpool(_owners_page, core, package_id, visitor.account.name, view)
    errors = {"owner": error} if error and invitee else {}
    context = {"p": found, "error": None if errors else error, "errors": errors, "invitee": invitee}
    return render(request, visitor, "owners.html", context, status=status)


@page(signed_in=True)
async def show(request: Request, visitor: Visitor) -> Response:
    return await _show(request, visitor)


async def _change(
    request: Request,
    visitor: Visitor,
    call: Callable[[], None],
    done: Callable[[str], str],
    invitee: str = "",
) -> Response:
    """Make an owner change, then say what changed (``done(package id)``, which may read the database);
    on refusal show the owners page with the reason."""
    try:
        await run_in_threadpool(call)
    except ServiceError as exc:
        return await _show(request, visitor, error=exc.message, status=exc.status, invitee=invitee)
    package_id = request.path_params["id"]
    access = await run_in_threadpool(web(request).core.owners.access, package_id, visitor.account.name)
    if access is None or not access[1].allowed:  # removed itself: no longer manages the package
        return redirect(f"/packages/{package_id}")
    notice = await run_in_threadpool(done, access[0])
    return redirect_notice(visitor, f"/packages/{access[0]}/owners", notice)


@page(signed_in=True)
async def invite(request: Request, visitor: Visitor) -> Response:
    owners, by, package_id = web(request).core.owners, visitor.account.name, request.path_params["id"]
    invitee = visitor.field("owner").strip()

    def done(package: str) -> str:
        invited = owners.invitations_for_package(package)
        name = next((i.new_owner for i in invited if i.new_owner.lower() == invitee.lower()), invitee)
        return f"{name} was invited to co-own {package}: the invitation waits on their Invitations page."

    return await _change(
        request,
        visitor,
        lambda: owners.invite(package_id, invitee, by=by, address=client_address(request)),
        done,
        invitee,
    )


def _package_and_owner(request: Request) -> tuple[str, str]:
    return request.path_params["id"], request.path_params["owner"]


@page(signed_in=True)
async def cancel(request: Request, visitor: Visitor) -> Response:
    owners, by = web(request).core.owners, visitor.account.name
    package_id, owner = _package_and_owner(request)
    return await _change(
        request,
        visitor,
        lambda: owners.cancel(package_id, owner, by=by, address=client_address(request)),
        lambda p: f"The invitation of {owner} to co-own {p} was cancelled.",
    )


@page(signed_in=True)
async def remove_form(request: Request, visitor: Visitor) -> Response:
    core, (package_id, owner) = web(request).core, _package_and_owner(request)
    view = read_view(request, visitor)
    found = await run_in_threadpool(_owners_page, core, package_id, visitor.account.name, view)
    name = next((o.name for o in found.owners if o.name.lower() == owner.lower()), None)
    if name is None:
        raise NotFound(f"{owner} does not own {found.package_id}")
    context = {
        "title": f"Remove {name} as an owner of {found.package_id}?",
        "message": f"{name} and its API keys will no longer be able to push or unlist {found.package_id}.",
        "action": f"/packages/{found.package_id}/owners/{name}/remove",
        "button": "Remove owner",
        "cancel": f"/packages/{found.package_id}/owners",
    }
    return render(request, visitor, "confirm.html", context)


@page(signed_in=True)
async def remove(request: Request, visitor: Visitor) -> Response:
    owners, by = web(request).core.owners, visitor.account.name
    package_id, owner = _package_and_owner(request)
    return await _change(
        request,
        visitor,
        lambda: owners.remove(package_id, owner, by=by, address=client_address(request)),
        lambda p: f"{owner} removed as an owner of {p}.",
    )


# Invitations -----------------------------------------------------------------------------------------


async def _invitations(
    request: Request, visitor: Visitor, *, error: str | None = None, status: int = 200
) -> Response:
    found = await run_in_threadpool(web(request).core.owners.invitations_to, visitor.account.name)
    return render(request, visitor, "invitations.html", {"found": found, "error": error}, status=status)


@page(signed_in=True)
async def invitations(request: Request, visitor: Visitor) -> Response:
    return await _invitations(request, visitor)


async def _answer(request: Request, visitor: Visitor, accept: bool) -> Response:
    owners, by = web(request).core.owners, visitor.account.name
    package_id, owner = _package_and_owner(request)
    answer = owners.accept if accept else owners.reject
    try:
        await run_in_threadpool(lambda: answer(package_id, owner, by=by, address=client_address(request)))
    except ServiceError as exc:
        return await _invitations(request, visitor, error=exc.message, status=exc.status)
    who = "you now co-own" if owner.lower() == by.lower() else f"{owner} now co-owns"
    done = (
        f"Invitation accepted: {who} {package_id}. It is in My packages."
        if accept
        else f"Invitation to co-own {package_id} rejected."
    )
    return redirect_notice(visitor, "/account/invitations", done)


@page(signed_in=True)
async def accept(request: Request, visitor: Visitor) -> Response:
    return await _answer(request, visitor, accept=True)


@page(signed_in=True)
async def reject(request: Request, visitor: Visitor) -> Response:
    return await _answer(request, visitor, accept=False)


# Before the package pages' routes: /packages/{id}/owners is not the version "owners" of a package.
routes = [
    Route("/packages/{id}/owners", show, methods=["GET"]),
    Route("/packages/{id}/owners", invite, methods=["POST"]),
    Route("/packages/{id}/owners/{owner}/cancel", cancel, methods=["POST"]),
    Route("/packages/{id}/owners/{owner}/remove", remove_form, methods=["GET"]),
    Route("/packages/{id}/owners/{owner}/remove", remove, methods=["POST"]),
    Route("/account/invitations", invitations, methods=["GET"]),
    Route("/account/invitations/{id}/{owner}/accept", accept, methods=["POST"]),
    Route("/account/invitations/{id}/{owner}/reject", reject, methods=["POST"]),
]
