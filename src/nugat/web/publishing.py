"""The Trusted Publishing pages: policies (list, create, edit, delete) and "trusted publishing only".

A policy lets a CI workflow trade its OIDC token for a short-lived key (``services.trusted``); the page
also tells the URL and audience to give the workflow, since they are not in the service index. Since a
policy mints keys, its create and edit forms (shown and posted) need a recent sign-in, or the password
again, as making a key does ("sudo mode", ``web.twofactor``).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nugat import oidc
from nugat.httpcommon import base_url, client_address
from nugat.keys import DEFAULT_SCOPE, Scope
from nugat.services import NotFound, ServiceError
from nugat.services.trusted import (
    DEFAULT_KEY_MINUTES,
    MAX_KEY_MINUTES,
    POLICY_SCOPES,
    PolicySettings,
    PolicyView,
)
from nugat.web.pages import Visitor, not_found, page, redirect, refused, render, web
from nugat.web.twofactor import SUDO_EXPIRED, needs_sudo, sudo_page

NOTICES = {
    "created": "The policy was saved. Use it within 7 days: its first use binds it to the repository.",
    "edited": "The policy was saved; the keys it had minted were deleted.",
    "deleted": "The policy and the keys it had minted were deleted.",
    "on": "The package now accepts only trusted publishing.",
    "off": "The package accepts long-lived API keys again.",
}
CRITERIA_FIELDS = ("owner", "repository", "workflow", "environment", "ref", "subject")


def _settings(visitor: Visitor) -> PolicySettings:
    fields = visitor.fields()
    try:
        minutes = int(fields.get("key_minutes", ""))
    except ValueError:
        minutes = 0
    scopes = [s.value for s in Scope if fields.get(f"scope-{s.value}")]  # a read box sent is refused
    return PolicySettings(
        criteria={name: fields.get(name, "") for name in CRITERIA_FIELDS},
        scopes=scopes,
        globs=[g for g in fields.get("glob", "").replace(",", " ").split() if g],
        name=fields.get("name", ""),
        key_minutes=minutes,
    )


def _form_values(view: PolicyView | None, visitor: Visitor | None = None) -> dict[str, object]:
    if visitor is not None and visitor.form is not None:
        fields = visitor.fields()
        return {**fields, "scopes": [s.value for s in Scope if fields.get(f"scope-{s.value}")]}
    if view is None:
        return {"scopes": [DEFAULT_SCOPE.value], "key_minutes": DEFAULT_KEY_MINUTES}
    return {
        **view.criteria.as_json(),
        "owner": view.criteria.owner,
        "name": view.name,
        "scopes": view.scopes,
        "glob": ", ".join(view.globs),
        "key_minutes": view.key_minutes,
    }


async def _form(
    request: Request,
    visitor: Visitor,
    *,
    kind: str,
    view: PolicyView | None = None,
    error: str | None = None,
) -> Response:
    trusted = web(request).core.trusted
    owners = await run_in_threadpool(trusted.owners_for, visitor.account.name)
    context = {
        "kind": kind,
        "kind_label": oidc.KIND_LABELS[kind],
        "policy": view,
        "owners": owners,
        "chosen_owner": visitor.field("package_owner") or (view.owner if view else visitor.account.name),
        "issuers": [i.url for i in trusted.issuers if i.kind == kind],
        "policy_scopes": POLICY_SCOPES,
        "values": _form_values(view, visitor if error else None),
        "max_minutes": MAX_KEY_MINUTES,
        "error": error,
    }
    return render(request, visitor, "trusted_form.html", context, status=400 if error else 200)


@page(signed_in=True)
async def overview(request: Request, visitor: Visitor) -> Response:
    trusted, name = web(request).core.trusted, visitor.account.name
    policies = await run_in_threadpool(trusted.policies, name) if trusted.enabled else []
    packages = await run_in_threadpool(trusted.packages_for, name)
    context = {
        "enabled": trusted.enabled,
        "policies": policies,
        "packages": packages,
        "kinds": [(k, oidc.KIND_LABELS[k]) for k in oidc.KINDS if any(i.kind == k for i in trusted.issuers)],
        "token_url": f"{base_url(request)}/api/v2/token",
        "audience": trusted.audience,
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "criteria_rows": criteria_rows,
    }
    return render(request, visitor, "trusted.html", context)


@page(signed_in=True)
async def new_form(request: Request, visitor: Visitor) -> Response:
    kind = request.query_params.get("kind", oidc.GITHUB)
    if kind not in oidc.KINDS or not web(request).core.trusted.enabled:
        return not_found(request, visitor, "Trusted publishing is not available for that CI system here")
    if await needs_sudo(request, visitor):
        return sudo_page(request, visitor, f"/account/trusted-publishing/new?kind={kind}")
    return await _form(request, visitor, kind=kind)


@page(signed_in=True)
async def create(request: Request, visitor: Visitor) -> Response:
    kind = visitor.field("kind")
    if kind not in oidc.KINDS:
        return not_found(request, visitor, "Choose a CI system from the list")
    if await needs_sudo(request, visitor):
        target = f"/account/trusted-publishing/new?kind={kind}"
        return sudo_page(request, visitor, target, SUDO_EXPIRED, 403)
    trusted = web(request).core.trusted
    try:
        await run_in_threadpool(
            trusted.create_policy,
            visitor.account.name,
            visitor.field("package_owner") or visitor.account.name,
            kind,
            visitor.field("issuer") or None,
            _settings(visitor),
            client_address(request),
        )
    except ServiceError as exc:
        if exc.status in (403, 404) and not isinstance(exc, NotFound):
            return refused(request, visitor, exc)
        return await _form(request, visitor, kind=kind, error=exc.message)
    return redirect("/account/trusted-publishing?done=created")


async def _policy(request: Request, visitor: Visitor) -> PolicyView | Response:
    trusted = web(request).core.trusted
    try:
        policy_id = int(request.path_params["policy_id"])
        return await run_in_threadpool(trusted.policy, visitor.account.name, policy_id)
    except ValueError:
        return not_found(request, visitor, "No such policy")
    except NotFound as exc:
        return not_found(request, visitor, exc.message)


@page(signed_in=True)
async def edit_form(request: Request, visitor: Visitor) -> Response:
    view = await _policy(request, visitor)
    if isinstance(view, Response):
        return view
    if await needs_sudo(request, visitor):
        return sudo_page(request, visitor, f"/account/trusted-publishing/{view.id}/edit")
    return await _form(request, visitor, kind=view.kind, view=view)


@page(signed_in=True)
async def edit(request: Request, visitor: Visitor) -> Response:
    view = await _policy(request, visitor)
    if isinstance(view, Response):
        return view
    if await needs_sudo(request, visitor):
        return sudo_page(request, visitor, f"/account/trusted-publishing/{view.id}/edit", SUDO_EXPIRED, 403)
    trusted = web(request).core.trusted
    try:
        await run_in_threadpool(
            trusted.edit_policy, visitor.account.name, view.id, _settings(visitor), client_address(request)
        )
    except ServiceError as exc:
        return await _form(request, visitor, kind=view.kind, view=view, error=exc.message)
    return redirect("/account/trusted-publishing?done=edited")


@page(signed_in=True)
async def delete_form(request: Request, visitor: Visitor) -> Response:
    view = await _policy(request, visitor)
    if isinstance(view, Response):
        return view
    return render(request, visitor, "trusted_delete.html", {"policy": view})


@page(signed_in=True)
async def delete(request: Request, visitor: Visitor) -> Response:
    view = await _policy(request, visitor)
    if isinstance(view, Response):
        return view
    trusted = web(request).core.trusted
    await run_in_threadpool(trusted.delete_policy, visitor.account.name, view.id, client_address(request))
    return redirect("/account/trusted-publishing?done=deleted")


@page(signed_in=True)
async def trusted_only(request: Request, visitor: Visitor) -> Response:
    on = visitor.field("trusted_only") == "on"
    await run_in_threadpool(
        web(request).core.trusted.set_trusted_only,
        visitor.account.name,
        request.path_params["id"],
        on,
        client_address(request),
    )
    return redirect(f"/account/trusted-publishing?done={'on' if on else 'off'}")


def criteria_rows(view: PolicyView) -> Mapping[str, str]:
    """A policy's criteria under the names the pages show."""
    names = {
        oidc.GITHUB: {"owner": "Repository owner", "repository": "Repository", "workflow": "Workflow file"},
        oidc.GITLAB: {"owner": "Namespace", "repository": "Project", "ref": "Ref"},
        oidc.GENERIC: {"subject": "Subject"},
    }[view.kind]
    shown = {**names, "environment": "Environment"}
    return {shown[k]: v for k, v in view.criteria.as_json().items() if k in shown}


routes = [
    Route("/account/trusted-publishing", overview, methods=["GET"]),
    Route("/account/trusted-publishing", create, methods=["POST"]),
    Route("/account/trusted-publishing/new", new_form, methods=["GET"]),
    Route("/account/trusted-publishing/{policy_id}/edit", edit_form, methods=["GET"]),
    Route("/account/trusted-publishing/{policy_id}/edit", edit, methods=["POST"]),
    Route("/account/trusted-publishing/{policy_id}/delete", delete_form, methods=["GET"]),
    Route("/account/trusted-publishing/{policy_id}/delete", delete, methods=["POST"]),
    Route("/account/trusted-publishing/packages/{id}", trusted_only, methods=["POST"]),
]
