"""Organizations: the user's list and creating one; an organization's page (members, packages, keys).

Only members and site admins see an organization's page; to anyone else it does not exist (404).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nugat import authz
from nugat.authz import Decision, Party
from nugat.core import Core
from nugat.httpcommon import client_address
from nugat.services import Conflict, NotFound, ServiceError
from nugat.services.actors import party, resolve
from nugat.services.orgs import ROLES, Member, OrgKey, account_named, role_of
from nugat.web.pages import Visitor, page, redirect_notice, render, web


@dataclass(frozen=True)
class OrgPage:
    name: str
    members: list[Member]
    role: str | None  # the viewer's; None for a site admin who is not a member
    manage: Decision  # may the viewer manage members (``authz.can_manage_members``)
    revoke: Decision  # may the viewer revoke the org's keys (``authz.can_revoke_org_key``)
    packages: list[str]
    keys: list[OrgKey]
    require_2fa: bool = False
    private: bool = False

    @property
    def manages(self) -> bool:
        return self.manage.allowed

    @property
    def sole_admin(self) -> str | None:
        """The one administrator, when there is only one: they can neither leave nor be removed."""
        admins = [m.name for m in self.members if m.role == "admin"]
        return admins[0] if len(admins) == 1 else None


def _org_page(core: Core, org_name: str, user_name: str) -> OrgPage:
    with core.db.reading() as s:
        org = account_named(s, org_name, "org")
        viewer = resolve(s, user_name)
        assert isinstance(viewer, authz.User)
        # Refused as named in the URL: a stranger learns nothing of the org, not even its spelling.
        authz.require(authz.can_see_org(viewer, Party(org.id, org_name, is_org=True)))
        role, it = role_of(s, viewer.id, org.id), party(org)
        manage, revoke = authz.can_manage_members(viewer, it), authz.can_revoke_org_key(viewer, it)
    keys = core.orgs.keys(org.name, by=viewer) if manage.allowed else []
    members, packages = core.orgs.members(org.name), core.orgs.packages(org.name)
    return OrgPage(
        org.name, members, role, manage, revoke, packages, keys, org.require_2fa, org.private_packages
    )


async def _list_page(
    request: Request, visitor: Visitor, *, name: str = "", error: str | None = None, status: int = 200
) -> Response:
    orgs = await run_in_threadpool(web(request).core.orgs.of_user, visitor.account.name)
    context = {"orgs": orgs, "name": name, "errors": {"name": error}}
    return render(request, visitor, "orgs.html", context, status=status)


@page(signed_in=True)
async def list_orgs(request: Request, visitor: Visitor) -> Response:
    return await _list_page(request, visitor)


@page(signed_in=True)
async def create(request: Request, visitor: Visitor) -> Response:
    orgs, user, name = web(request).core.orgs, visitor.account.name, visitor.field("name").strip()
    try:
        org = await run_in_threadpool(
            lambda: orgs.create(name, user, by=user, address=client_address(request))
        )
    except ServiceError as exc:
        return await _list_page(request, visitor, name=name, error=exc.message, status=exc.status)
    return redirect_notice(
        visitor, f"/orgs/{org.name}", f"Organization {org.name} created: you are its administrator."
    )


async def _show(
    request: Request,
    visitor: Visitor,
    *,
    error: str | None = None,
    status: int = 200,
    values: dict[str, str] | None = None,
) -> Response:
    """The organization's page; ``values``: what the add-member form sent, kept after ``error``."""
    core, name = web(request).core, request.path_params["name"]
    org = await run_in_threadpool(_org_page, core, name, visitor.account.name)
    errors = {"username": error} if error and values else {}
    context = {
        "org": org,
        "roles": ROLES,
        "error": None if errors else error,
        "errors": errors,
        "values": values or {},
    }
    return render(request, visitor, "org.html", context, status=status)


@page(signed_in=True)
async def show(request: Request, visitor: Visitor) -> Response:
    return await _show(request, visitor)


async def _change(
    request: Request,
    visitor: Visitor,
    call: Callable[[], None],
    done: Callable[[Member], str],
    member: str,
    values: dict[str, str] | None = None,
) -> Response:
    """Make a change to ``member``, then say what changed (``done(member as now)``); on refusal show
    the organization's page with the reason."""
    orgs, org = web(request).core.orgs, request.path_params["name"]
    try:
        await run_in_threadpool(call)
        members = await run_in_threadpool(orgs.members, org)
    except ServiceError as exc:
        return await _show(request, visitor, error=exc.message, status=exc.status, values=values)
    now = next((m for m in members if m.name.lower() == member.lower()), Member(member, ""))
    return redirect_notice(visitor, f"/orgs/{org}", done(now))


async def _switch(
    request: Request,
    visitor: Visitor,
    field: str,
    change: Callable[..., None],
    said: Callable[[str, bool], str],
) -> Response:
    """An org setting turned on or off by an admin (``change(org, on, by=..., address=...)``)."""
    by, org = visitor.account.name, request.path_params["name"]
    on = visitor.field(field) == "on"
    try:
        await run_in_threadpool(lambda: change(org, on, by=by, address=client_address(request)))
    except ServiceError as exc:
        return await _show(request, visitor, error=exc.message, status=exc.status)
    return redirect_notice(visitor, f"/orgs/{org}", said(org, on))


@page(signed_in=True)
async def require_2fa(request: Request, visitor: Visitor) -> Response:
    return await _switch(
        request,
        visitor,
        "require",
        web(request).core.orgs.set_require_2fa,
        lambda org, on: (
            f"Members {'now need' if on else 'no longer need'} two-factor sign-in to create keys for {org}."
        ),
    )


@page(signed_in=True)
async def private(request: Request, visitor: Visitor) -> Response:
    return await _switch(
        request,
        visitor,
        "private",
        web(request).core.orgs.set_private,
        lambda org, on: (
            f"The packages of {org} "
            + (
                "are now private: only its members and their keys can read them."
                if on
                else "are no longer private."
            )
        ),
    )


@page(signed_in=True)
async def add_member(request: Request, visitor: Visitor) -> Response:
    orgs, by, org = web(request).core.orgs, visitor.account.name, request.path_params["name"]
    username, role = visitor.field("username").strip(), visitor.field("role")
    return await _change(
        request,
        visitor,
        lambda: orgs.add_member(org, username, role, by=by, address=client_address(request)),
        lambda m: f"{m.name} added to {org} as {m.role}.",
        username,
        {"username": username, "role": role},
    )


def _org_and_member(request: Request) -> tuple[str, str]:
    return request.path_params["name"], request.path_params["member"]


@page(signed_in=True)
async def change_role(request: Request, visitor: Visitor) -> Response:
    orgs, by = web(request).core.orgs, visitor.account.name
    org, member = _org_and_member(request)
    role = visitor.field("role")
    return await _change(
        request,
        visitor,
        lambda: orgs.change_role(org, member, role, by=by, address=client_address(request)),
        lambda m: f"{m.name} is now {'an' if m.role == 'admin' else 'a'} {m.role} of {org}.",
        member,
    )


@page(signed_in=True)
async def remove_form(request: Request, visitor: Visitor) -> Response:
    core, user, (org_name, member) = web(request).core, visitor.account.name, _org_and_member(request)
    org = await run_in_threadpool(_org_page, core, org_name, user)
    found = next((m.name for m in org.members if m.name.lower() == member.lower()), None)
    if found is None:
        raise NotFound(f"{member} is not a member of {org.name}")
    leaving = found.lower() == user.lower()
    if not leaving:
        authz.require(org.manage)
    if found == org.sole_admin:
        raise Conflict(f"{org.name} must keep at least one administrator: make another member an admin first")
    context = {
        "title": f"Leave {org.name}?" if leaving else f"Remove {found} from {org.name}?",
        "message": (
            f"You will no longer act for {org.name}: API keys you created for it are revoked at once, "
            "for good (they do not come back if you are added again)."
            if leaving
            else f"{found} will no longer act for {org.name}: "
            "API keys they created for it are revoked at once, for good."
        ),
        "action": f"/orgs/{org.name}/members/{found}/remove",
        "button": "Leave" if leaving else "Remove",
        "cancel": f"/orgs/{org.name}",
    }
    return render(request, visitor, "confirm.html", context)


@page(signed_in=True)
async def remove(request: Request, visitor: Visitor) -> Response:
    orgs, by = web(request).core.orgs, visitor.account.name
    org, member = _org_and_member(request)
    try:
        address = client_address(request)
        await run_in_threadpool(lambda: orgs.remove_member(org, member, by=by, address=address))
    except ServiceError as exc:
        return await _show(request, visitor, error=exc.message, status=exc.status)
    if member.lower() == by.lower():
        return redirect_notice(visitor, "/account/organizations", f"You left {org}.")
    return redirect_notice(visitor, f"/orgs/{org}", f"{member} removed from {org}.")


def _org_key(core: Core, org_name: str, user_name: str, key_id: str) -> tuple[OrgPage, OrgKey]:
    org = _org_page(core, org_name, user_name)
    authz.require(org.revoke)
    found = next((k for k in org.keys if k.key.id == key_id), None)
    if found is None:
        raise NotFound(f"No API key {key_id!r} acts for {org.name}")
    return org, found


@page(signed_in=True)
async def revoke_form(request: Request, visitor: Visitor) -> Response:
    """Ask first: a revoked key is dead for good."""
    core, user, name = web(request).core, visitor.account.name, request.path_params["name"]
    org, found = await run_in_threadpool(_org_key, core, name, user, request.path_params["key_id"])
    key = found.key
    context = {
        "title": f"Revoke API key “{key.name}” of {found.creator}?",
        "message": (
            f"The key {key.id}, made by {found.creator} to act for {org.name}, stops working at once and "
            f"for good: it cannot be regenerated. {found.creator} sees it revoked, with your name, on their "
            "API Keys page."
        ),
        "action": f"/orgs/{org.name}/keys/{key.id}/revoke",
        "button": "Revoke",
        "cancel": f"/orgs/{org.name}",
    }
    return render(request, visitor, "confirm.html", context)


@page(signed_in=True)
async def revoke(request: Request, visitor: Visitor) -> Response:
    orgs, by, name = web(request).core.orgs, visitor.account.name, request.path_params["name"]
    key_id = request.path_params["key_id"]
    try:
        address = client_address(request)
        key = await run_in_threadpool(lambda: orgs.revoke_key(name, key_id, by=by, address=address))
    except ServiceError as exc:
        return await _show(request, visitor, error=exc.message, status=exc.status)
    return redirect_notice(visitor, f"/orgs/{name}", f"API key '{key.name}' of {key.owner} revoked.")


routes = [
    Route("/account/organizations", list_orgs, methods=["GET"]),
    Route("/account/organizations", create, methods=["POST"]),
    Route("/orgs/{name}", show, methods=["GET"]),
    Route("/orgs/{name}/members", add_member, methods=["POST"]),
    Route("/orgs/{name}/two-factor", require_2fa, methods=["POST"]),
    Route("/orgs/{name}/private", private, methods=["POST"]),
    Route("/orgs/{name}/members/{member}/role", change_role, methods=["POST"]),
    Route("/orgs/{name}/members/{member}/remove", remove_form, methods=["GET"]),
    Route("/orgs/{name}/members/{member}/remove", remove, methods=["POST"]),
    Route("/orgs/{name}/keys/{key_id}/revoke", revoke_form, methods=["GET"]),
    Route("/orgs/{name}/keys/{key_id}/revoke", revoke, methods=["POST"]),
]
