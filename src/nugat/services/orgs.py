"""Organizations: accounts that own packages but cannot sign in, and their members' roles.

Every change names who makes it: ``by`` is the signed-in user, or ``authz.OPERATOR`` for the command line,
which is run by whoever runs the server and may do what a site admin may. ``authz`` decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nugat import authz
from nugat.authz import OPERATOR, Actor
from nugat.clock import utcnow
from nugat.db import Database, search_changed
from nugat.db.models import Account, ApiKey, Membership, OwnershipRequest, PackageOwner, PackageRegistration
from nugat.services import Conflict, NotFound, ServiceError
from nugat.services.accounts import KeyView, _view, check_name, mail_key_event, revoke_keys
from nugat.services.actors import By, actor_id, party, resolve
from nugat.services.audit import record
from nugat.services.invitations import drop_dead_invitations
from nugat.services.mail import Outbox

ROLES = ("admin", "collaborator")


@dataclass(frozen=True)
class Member:
    name: str
    role: str


@dataclass(frozen=True)
class OrgView:
    name: str
    members: list[Member]
    private: bool = False  # its packages are private to its members


@dataclass(frozen=True)
class OrgKey:
    """A key acting for an organization, as the organization's admins see it."""

    creator: str
    key: KeyView


def account_named(s: Session, name: str, kind: str | None = None) -> Account:
    account = s.scalar(select(Account).where(Account.name_lower == name.lower()))
    if account is None or (kind is not None and account.kind != kind):
        what = {"org": "organization", "user": "user"}.get(kind or "", "account")
        raise NotFound(f"No {what} named {name!r}")
    return account


def role_of(s: Session, user_id: int, org_id: int) -> str | None:
    return s.scalar(
        select(Membership.role).where(Membership.org_id == org_id, Membership.member_id == user_id)
    )


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ServiceError(f"Unknown role {role!r}: use admin or collaborator")


class Orgs:
    def __init__(
        self, db: Database, outbox: Outbox | None = None, on_private_change: Callable[[], None] | None = None
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.on_private_change = on_private_change  # the read gate of this process learns it at once

    def _org_to_manage(self, s: Session, org_name: str, by: By) -> tuple[Account, Actor]:
        org = account_named(s, org_name, "org")
        s.refresh(org, with_for_update=True)  # serializes member changes, so one admin always remains
        actor = resolve(s, by)
        authz.require(authz.can_manage_members(actor, party(org)))
        return org, actor

    def create(self, name: str, admin: str, *, by: By = OPERATOR, address: str | None = None) -> Account:
        """Create organization ``name`` with ``admin`` as its first administrator."""
        check_name(name, "An organization name")
        try:
            with self.db.session() as s:
                actor = resolve(s, by)
                first = account_named(s, admin, "user")
                authz.require(authz.can_create_org(actor, first_admin_id=first.id))
                org = Account(
                    name=name, name_lower=name.lower(), kind="org", is_admin=False, created_at=utcnow()
                )
                s.add(org)
                s.flush()
                s.add(Membership(org_id=org.id, member_id=first.id, role="admin"))
                record(
                    s,
                    "org.create",
                    actor_id=actor_id(actor),
                    account_id=org.id,
                    address=address,
                    admin=first.name,
                )
        except IntegrityError:
            raise Conflict(f"The name {name!r} is already taken") from None
        return org

    def add_member(
        self, org_name: str, user_name: str, role: str, *, by: By = OPERATOR, address: str | None = None
    ) -> None:
        _check_role(role)
        with self.db.session() as s:
            org, actor = self._org_to_manage(s, org_name, by)
            user = account_named(s, user_name, "user")
            if user.disabled_at is not None:
                raise ServiceError(
                    f"{user.name}'s account is disabled: a site admin must enable it before it can join "
                    f"{org.name}"
                )
            if role_of(s, user.id, org.id) is not None:
                raise Conflict(f"{user.name} is already a member of {org.name}")
            s.add(Membership(org_id=org.id, member_id=user.id, role=role))
            self._mail(s, user, org, "added", role, actor)
            record(
                s,
                "org.member_add",
                actor_id=actor_id(actor),
                account_id=org.id,
                address=address,
                member=user.name,
                role=role,
            )

    def change_role(
        self, org_name: str, user_name: str, role: str, *, by: By = OPERATOR, address: str | None = None
    ) -> None:
        _check_role(role)
        with self.db.session() as s:
            org, actor = self._org_to_manage(s, org_name, by)
            membership, user = self._membership(s, org, user_name)
            if membership.role == role:
                return
            if membership.role == "admin":
                self._keep_an_admin(s, org, user)
            old, membership.role = membership.role, role
            self._mail(s, user, org, "role changed", role, actor)
            record(
                s,
                "org.member_role",
                actor_id=actor_id(actor),
                account_id=org.id,
                address=address,
                member=user.name,
                role=role,
                previous=old,
            )
            if old == "admin":
                drop_dead_invitations(
                    s,
                    OwnershipRequest.requested_by_id == user.id,
                    f"{user.name} is no longer an administrator of {org.name}",
                    actor_id=actor_id(actor),
                    address=address,
                )

    def remove_member(
        self, org_name: str, user_name: str, *, by: By = OPERATOR, address: str | None = None
    ) -> None:
        """Remove a member (members may leave on their own); keys they made for the org are revoked for
        good, with the reason their API Keys page shows: re-adding the member does not revive them. The
        ownership invitations they sent that they may no longer send (for the org's packages) are dropped;
        so are those of an administrator made a collaborator (``change_role``)."""
        with self.db.session() as s:
            org = account_named(s, org_name, "org")
            s.refresh(org, with_for_update=True)
            actor = resolve(s, by)
            leaving = isinstance(actor, authz.User) and actor.name.lower() == user_name.lower()
            authz.require(authz.can_manage_members(actor, party(org), leaving=leaving))
            membership, user = self._membership(s, org, user_name)
            if membership.role == "admin":
                self._keep_an_admin(s, org, user)
            s.delete(membership)
            if not leaving:
                self._mail(s, user, org, "removed", membership.role, actor)
            record(
                s,
                "org.member_remove",
                actor_id=actor_id(actor),
                account_id=org.id,
                address=address,
                member=user.name,
                role=membership.role,
            )
            revoke_keys(
                s,
                (ApiKey.user_id == user.id) & (ApiKey.owner_id == org.id),
                f"{user.name} is no longer a member of {org.name}",
                actor_id=actor_id(actor),
                address=address,
            )
            drop_dead_invitations(
                s,
                OwnershipRequest.requested_by_id == user.id,
                f"{user.name} is no longer a member of {org.name}",
                actor_id=actor_id(actor),
                address=address,
            )

    def revoke_key(
        self, org_name: str, key_id: str, *, by: By = OPERATOR, address: str | None = None
    ) -> KeyView:
        """An administrator of the organization (``by``; ``OPERATOR``: the command line) revokes, for good,
        a key acting for it, whoever made it (on the org's behalf: a creator deletes its own)."""
        with self.db.session() as s:
            org = account_named(s, org_name, "org")
            actor = resolve(s, by)
            authz.require(authz.can_revoke_org_key(actor, party(org)))
            row = s.scalar(select(ApiKey).where(ApiKey.key_id == key_id, ApiKey.owner_id == org.id))
            if row is None:
                raise NotFound(f"No API key {key_id!r} acts for {org.name}")
            if not isinstance(actor, authz.User):
                who = "a site administrator"
            elif org.id in actor.admin_of:
                who = f"{actor.name}, an administrator of {org.name}"
            else:
                who = f"{actor.name}, a site administrator"
            reason = f"revoked by {who}"
            revoked_rows = revoke_keys(
                s, ApiKey.id == row.id, reason, actor_id=actor_id(actor), address=address
            )
            for revoked in revoked_rows:
                mail_key_event(self.outbox, s, revoked, "revoked", reason=reason)
            return _view(row, org.name)

    def set_require_2fa(
        self, org_name: str, on: bool, *, by: By = OPERATOR, address: str | None = None
    ) -> None:
        """Whether members must have two-factor sign-in to create or regenerate keys for the org."""
        with self.db.session() as s:
            org, actor = self._org_to_manage(s, org_name, by)
            if org.require_2fa == on:
                return
            org.require_2fa = on
            record(s, "org.require_2fa", actor_id=actor_id(actor), account_id=org.id,
                   address=address, on=on)  # fmt: skip

    def set_private(self, org_name: str, on: bool, *, by: By = OPERATOR, address: str | None = None) -> None:
        """Whether the org's packages are private: readable only by its members' sessions and keys (every
        process sees the change within ``services.readers.READ_CACHE_SECONDS``)."""
        with self.db.session() as s:
            org, actor = self._org_to_manage(s, org_name, by)
            if org.private_packages == on:
                return
            org.private_packages = on
            search_changed(s.connection())  # search pages kept from before are not shown again
            record(s, "org.private", actor_id=actor_id(actor), account_id=org.id, address=address, on=on)
        if self.on_private_change is not None:
            self.on_private_change()

    def _mail(self, s: Session, user: Account, org: Account, change: str, role: str, actor: Actor) -> None:
        if self.outbox is not None and actor_id(actor) != user.id:
            by = actor.name if isinstance(actor, authz.User) else None
            self.outbox.enqueue(s, user.email, "org_membership", name=user.name, org=org.name, change=change,
                                role=role, by=by)  # fmt: skip

    def _membership(self, s: Session, org: Account, user_name: str) -> tuple[Membership, Account]:
        user = account_named(s, user_name, "user")
        membership = s.scalar(
            select(Membership).where(Membership.org_id == org.id, Membership.member_id == user.id)
        )
        if membership is None:
            raise NotFound(f"{user.name} is not a member of {org.name}")
        return membership, user

    def _keep_an_admin(self, s: Session, org: Account, leaving: Account) -> None:
        """``leaving`` stops being an administrator: another one must be left who can act, not only
        disabled ones (a disabled administrator manages nothing until enabled again)."""
        others = s.scalar(
            select(func.count())
            .select_from(Membership)
            .join(Account, Account.id == Membership.member_id)
            .where(
                Membership.org_id == org.id,
                Membership.role == "admin",
                Membership.member_id != leaving.id,
                Account.disabled_at.is_(None),
            )
        )
        if not others:
            raise Conflict(f"{org.name} must keep at least one administrator who is not disabled")

    # Reading ---------------------------------------------------------------------------------------

    def members(self, org_name: str) -> list[Member]:
        with self.db.reading() as s:
            org = account_named(s, org_name, "org")
            return self._members(s, org.id)

    def _members(self, s: Session, org_id: int) -> list[Member]:
        rows = s.execute(
            select(Account.name, Membership.role)
            .join(Account, Account.id == Membership.member_id)
            .where(Membership.org_id == org_id)
            .order_by(Membership.role, Account.name_lower)
        )
        return [Member(name, role) for name, role in rows]

    def all(self) -> list[OrgView]:
        with self.db.reading() as s:
            orgs = s.scalars(select(Account).where(Account.kind == "org").order_by(Account.name_lower))
            return [OrgView(org.name, self._members(s, org.id), org.private_packages) for org in orgs]

    def of_user(self, user_name: str) -> list[Member]:
        """The organizations ``user_name`` belongs to, with its role in each (``Member.name``: the org)."""
        with self.db.reading() as s:
            user = account_named(s, user_name, "user")
            rows = s.execute(
                select(Account.name, Membership.role)
                .join(Account, Account.id == Membership.org_id)
                .where(Membership.member_id == user.id)
                .order_by(Account.name_lower)
            )
            return [Member(name, role) for name, role in rows]

    def packages(self, org_name: str) -> list[str]:
        with self.db.reading() as s:
            org = account_named(s, org_name, "org")
            return list(
                s.scalars(
                    select(PackageRegistration.package_id)
                    .join(PackageOwner, PackageOwner.registration_id == PackageRegistration.id)
                    .where(PackageOwner.account_id == org.id)
                    .order_by(PackageRegistration.id_lower)
                )
            )

    def keys(self, org_name: str, *, by: By = OPERATOR) -> list[OrgKey]:
        """Every key acting for the organization (never a secret); for its administrators only."""
        with self.db.reading() as s:
            org = account_named(s, org_name, "org")
            authz.require(authz.can_see_org_keys(resolve(s, by), party(org)))
            rows = s.execute(
                select(ApiKey, Account.name)
                .join(Account, Account.id == ApiKey.user_id)
                .where(ApiKey.owner_id == org.id)
                .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
            )
            return [OrgKey(creator, _view(key, org.name)) for key, creator in rows]
