"""Package owners: co-ownership requests (invite, accept, reject, cancel), direct changes, removal.

An owner is a user or an organization. Who may change them is ``authz``'s to decide
(``can_manage_owners``, ``can_add_owner_directly``, ``can_answer_invitation``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, aliased

from nugat import authz
from nugat.authz import OPERATOR, Actor
from nugat.clock import utcnow
from nugat.db import Database
from nugat.db.models import Account, Membership, OwnershipRequest, PackageOwner, PackageRegistration
from nugat.services import Conflict, NotFound
from nugat.services.actors import By, actor_id, party, resolve
from nugat.services.audit import record
from nugat.services.invitations import drop_dead_invitations, invitation_holds
from nugat.services.mail import Outbox
from nugat.services.orgs import account_named
from nugat.services.reservations import mark_changed, owner_ids

if TYPE_CHECKING:
    from nugat.services.materialize import Materializer


@dataclass(frozen=True)
class Owner:
    name: str
    kind: str  # "user" | "org"


@dataclass(frozen=True)
class OwnershipInvite:
    package_id: str
    new_owner: str
    requested_by: str
    created: datetime


def _registration(s: Session, package_id: str, *, lock: bool = True) -> PackageRegistration:
    query = select(PackageRegistration).where(PackageRegistration.id_lower == package_id.lower())
    # The lock serializes owner changes, so that the last owner always remains.
    reg = s.scalar(query.with_for_update() if lock else query)
    if reg is None:
        raise NotFound(f"No package {package_id!r}")
    return reg


def _owner_accounts(s: Session, reg: PackageRegistration) -> list[Account]:
    return list(
        s.scalars(
            select(Account)
            .join(PackageOwner, PackageOwner.account_id == Account.id)
            .where(PackageOwner.registration_id == reg.id)
            .order_by(Account.name_lower)
        )
    )


def may_manage(s: Session, actor: Actor, reg: PackageRegistration) -> authz.Decision:
    """``authz.can_manage_owners`` with the package's owners read in ``s`` (for the service and the pages)."""
    return authz.can_manage_owners(actor, reg.package_id, owner_ids=owner_ids(s, reg.id))


def _invite(s: Session, reg: PackageRegistration, new_owner: Account) -> OwnershipRequest:
    row = s.scalar(
        select(OwnershipRequest).where(
            OwnershipRequest.registration_id == reg.id, OwnershipRequest.new_owner_id == new_owner.id
        )
    )
    if row is None:
        raise NotFound(f"{new_owner.name} has no pending invitation to own {reg.package_id}")
    return row


def _answerable(
    s: Session, actor: Actor, package_id: str, new_owner: Account, *, accept: bool
) -> tuple[PackageRegistration, OwnershipRequest]:
    """The invitation of ``new_owner`` to co-own ``package_id`` that ``actor`` answers (locked).

    Who may answer for ``new_owner`` is decided first, whatever the package: anyone else learns nothing of
    the package or of the invitations to it (a private organization's id, its casing, whether someone is
    invited). And to who may, a missing package reads as a missing invitation, named as typed: the
    invitations to the account are theirs to see, the package's other facts are not."""
    authz.require(authz.can_answer_invitation(actor, party(new_owner), accept=accept))
    reg = s.scalar(
        select(PackageRegistration)
        .where(PackageRegistration.id_lower == package_id.lower())
        .with_for_update()
    )
    row = None
    if reg is not None:
        row = s.scalar(
            select(OwnershipRequest).where(
                OwnershipRequest.registration_id == reg.id, OwnershipRequest.new_owner_id == new_owner.id
            )
        )
    if reg is None or row is None:
        raise NotFound(f"{new_owner.name} has no pending invitation to own {package_id}")
    return reg, row


class Owners:
    def __init__(self, db: Database, materializer: Materializer, outbox: Outbox | None = None) -> None:
        self.db = db
        self.materializer = materializer
        self.outbox = outbox

    def _managed(self, s: Session, package_id: str, by: By) -> tuple[PackageRegistration, Actor]:
        reg = _registration(s, package_id)
        actor = resolve(s, by)
        authz.require(may_manage(s, actor, reg))
        return reg, actor

    def access(self, package_id: str, by: By) -> tuple[str, authz.Decision] | None:
        """The package's id as pushed and whether ``by`` may manage its owners (``authz``); None: no such
        package. For the pages, to decide what to show."""
        with self.db.reading() as s:
            query = select(PackageRegistration).where(PackageRegistration.id_lower == package_id.lower())
            reg = s.scalar(query)
            return None if reg is None else (reg.package_id, may_manage(s, resolve(s, by), reg))

    def of_package(self, package_id: str) -> list[Owner]:
        with self.db.reading() as s:
            reg = _registration(s, package_id, lock=False)
            return [Owner(a.name, a.kind) for a in _owner_accounts(s, reg)]

    def add(self, package_id: str, owner: str, *, by: By = OPERATOR, address: str | None = None) -> None:
        """Make ``owner`` a co-owner at once, without an invitation: for site admins and the command line."""
        with self.db.session() as s:
            reg = _registration(s, package_id)
            actor = resolve(s, by)
            authz.require(authz.can_add_owner_directly(actor))
            account = account_named(s, owner)
            self._add(s, reg, account, actor, address)
        self.materializer.build_committed([reg.id_lower])

    def _add(
        self,
        s: Session,
        reg: PackageRegistration,
        account: Account,
        actor: Actor,
        address: str | None,
    ) -> None:
        if account.id in {a.id for a in _owner_accounts(s, reg)}:
            raise Conflict(f"{account.name} already owns {reg.package_id}")
        s.add(PackageOwner(registration_id=reg.id, account_id=account.id))
        pending = s.scalar(
            select(OwnershipRequest).where(
                OwnershipRequest.registration_id == reg.id, OwnershipRequest.new_owner_id == account.id
            )
        )
        if pending is not None:
            s.delete(pending)
        mark_changed([reg])
        record(
            s,
            "owner.add",
            actor_id=actor_id(actor),
            account_id=account.id,
            package_id=reg.package_id,
            address=address,
        )

    def remove(self, package_id: str, owner: str, *, by: By = OPERATOR, address: str | None = None) -> None:
        """Remove an owner; the last owner of a package cannot be removed. Invitations to the package that
        were sent by whoever thereby loses the right to manage its owners are dropped."""
        with self.db.session() as s:
            reg, actor = self._managed(s, package_id, by)
            account = account_named(s, owner)
            owners = _owner_accounts(s, reg)
            if account.id not in {a.id for a in owners}:
                raise NotFound(f"{account.name} does not own {reg.package_id}")
            if len(owners) == 1:
                raise Conflict(f"{account.name} is the last owner of {reg.package_id} and cannot be removed")
            s.delete(
                s.scalars(
                    select(PackageOwner).where(
                        PackageOwner.registration_id == reg.id, PackageOwner.account_id == account.id
                    )
                ).one()
            )
            mark_changed([reg])
            record(
                s,
                "owner.remove",
                actor_id=actor_id(actor),
                account_id=account.id,
                package_id=reg.package_id,
                address=address,
            )
            drop_dead_invitations(
                s,
                OwnershipRequest.registration_id == reg.id,
                f"{account.name} no longer owns {reg.package_id}",
                actor_id=actor_id(actor),
                address=address,
            )
        self.materializer.build_committed([reg.id_lower])

    # Invitations -----------------------------------------------------------------------------------

    def _mail_invitation(self, s: Session, invitee: Account, package_id: str, by: str) -> None:
        """Mail the invited user, or each administrator of the invited organization."""
        if self.outbox is None or not self.outbox.enabled:
            return
        recipients = [invitee]
        if invitee.kind == "org":
            recipients = list(
                s.scalars(
                    select(Account)
                    .join(Membership, Membership.member_id == Account.id)
                    .where(Membership.org_id == invitee.id, Membership.role == "admin")
                )
            )
        for user in recipients:
            self.outbox.enqueue(s, user.email, "ownership_invitation", name=user.name, invitee=invitee.name,
                                package=package_id, by=by)  # fmt: skip

    def invite(self, package_id: str, new_owner: str, *, by: By, address: str | None = None) -> None:
        """An owner invites ``new_owner`` (a user or an organization) to co-own the package."""
        with self.db.session() as s:
            reg, actor = self._managed(s, package_id, by)
            assert isinstance(actor, authz.User)  # an invitation names the user who sent it
            account = account_named(s, new_owner)
            if account.id in {a.id for a in _owner_accounts(s, reg)}:
                raise Conflict(f"{account.name} already owns {reg.package_id}")
            exists = s.scalar(
                select(func.count())
                .select_from(OwnershipRequest)
                .where(
                    OwnershipRequest.registration_id == reg.id, OwnershipRequest.new_owner_id == account.id
                )
            )
            if exists:
                raise Conflict(f"{account.name} is already invited to own {reg.package_id}")
            s.add(
                OwnershipRequest(
                    registration_id=reg.id,
                    new_owner_id=account.id,
                    requested_by_id=actor.id,
                    created_at=utcnow(),
                )
            )
            self._mail_invitation(s, account, reg.package_id, actor.name)
            record(
                s,
                "owner.invite",
                actor_id=actor.id,
                account_id=account.id,
                package_id=reg.package_id,
                address=address,
            )

    def accept(self, package_id: str, new_owner: str, *, by: By, address: str | None = None) -> None:
        """The invited account (or an administrator of the invited organization) accepts.

        Only while its sender may still manage the package's owners (is still an owner, or an admin of an
        owning organization, or a site admin, and not disabled): else the invitation is dropped and the
        acceptance refused (409). While the organization the sender's right comes through is disabled, the
        acceptance is refused (403) and the invitation kept: it holds again once the org is enabled."""
        with self.db.session() as s:
            actor = resolve(s, by)
            account = account_named(s, new_owner)
            reg, row = _answerable(s, actor, package_id, account, accept=True)
            holds = invitation_holds(s, reg, row.requested_by_id)
            if holds.status == 409:
                sender = s.get(Account, row.requested_by_id)
                sender_name = sender.name if sender is not None else "its sender"
                reason = f"{sender_name} may no longer manage the owners of {reg.package_id}"
                drop_dead_invitations(s, OwnershipRequest.id == row.id, reason,
                                      actor_id=actor_id(actor), address=address)  # fmt: skip
            elif holds.allowed:
                self._add(s, reg, account, actor, address)
        authz.require(holds)  # after the commit: a dead invitation is dropped, a suspended one kept
        self.materializer.build_committed([reg.id_lower])

    def reject(self, package_id: str, new_owner: str, *, by: By, address: str | None = None) -> None:
        with self.db.session() as s:
            actor = resolve(s, by)
            account = account_named(s, new_owner)
            reg, row = _answerable(s, actor, package_id, account, accept=False)
            s.delete(row)
            record(
                s,
                "owner.reject",
                actor_id=actor_id(actor),
                account_id=account.id,
                package_id=reg.package_id,
                address=address,
            )

    def cancel(self, package_id: str, new_owner: str, *, by: By, address: str | None = None) -> None:
        """An owner withdraws an invitation not answered yet."""
        with self.db.session() as s:
            reg, actor = self._managed(s, package_id, by)
            account = account_named(s, new_owner)
            s.delete(_invite(s, reg, account))
            record(
                s,
                "owner.cancel",
                actor_id=actor_id(actor),
                account_id=account.id,
                package_id=reg.package_id,
                address=address,
            )

    def invitations_for_package(self, package_id: str) -> list[OwnershipInvite]:
        with self.db.reading() as s:
            reg = _registration(s, package_id, lock=False)
            return self._invitations(s, OwnershipRequest.registration_id == reg.id)

    def invitations_to(self, user_name: str) -> list[OwnershipInvite]:
        """Invitations ``user_name`` can answer: to itself, or to organizations it administers."""
        with self.db.reading() as s:
            user = account_named(s, user_name, "user")
            administered = select(Membership.org_id).where(
                Membership.member_id == user.id, Membership.role == "admin"
            )
            return self._invitations(
                s,
                (OwnershipRequest.new_owner_id == user.id) | OwnershipRequest.new_owner_id.in_(administered),
            )

    def _invitations(self, s: Session, condition: ColumnElement[bool]) -> list[OwnershipInvite]:
        new_owner, requester = aliased(Account), aliased(Account)
        rows = s.execute(
            select(
                PackageRegistration.package_id, new_owner.name, requester.name, OwnershipRequest.created_at
            )
            .join(PackageRegistration, PackageRegistration.id == OwnershipRequest.registration_id)
            .join(new_owner, new_owner.id == OwnershipRequest.new_owner_id)
            .join(requester, requester.id == OwnershipRequest.requested_by_id)
            .where(condition)
            .order_by(OwnershipRequest.created_at, OwnershipRequest.id)
        )
        return [OwnershipInvite(*row) for row in rows]
