"""Ownership invitations whose sender may no longer send them.

An invitation stands for its sender's right to manage the package's owners: it is honoured only while
that right lasts. ``services.owners`` checks it again when an invitation is accepted; the changes that take
the right away (leaving or being removed from an owning organization, losing its admin role, being
disabled, being removed as an owner) drop, in their own transaction, the invitations it had sent, so no
page shows an invitation that can no longer be accepted. An organization disabled suspends the right its
administrators have through it, and drops nothing: their invitations wait (refused when accepted, with
the reason) and hold again once it is enabled.

Kept apart from ``services.owners`` so that ``services.accounts`` and ``services.orgs`` can use it
(``owners`` imports them).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from nugat import authz
from nugat.db.models import Account, OwnershipRequest, PackageOwner, PackageRegistration
from nugat.services.actors import user_actor
from nugat.services.audit import record


def invitation_holds(s: Session, reg: PackageRegistration, sender_id: int) -> authz.Decision:
    """``authz.invitation_holds`` for an invitation to co-own ``reg`` sent by ``sender_id``: ALLOW while its
    sender may still manage the owners of ``reg``; 409: dead; 403: waiting for the organization its sender's
    right came through to be enabled again."""
    sender = s.get(Account, sender_id)
    actor = user_actor(s, sender) if sender is not None and sender.kind == "user" else None
    owners = frozenset(
        s.scalars(select(PackageOwner.account_id).where(PackageOwner.registration_id == reg.id))
    )
    return authz.invitation_holds(actor, reg.package_id, owner_ids=owners)


def sender_may_invite(s: Session, reg: PackageRegistration, sender_id: int) -> bool:
    """Whether the invitation is still alive: its sender may still manage the owners of ``reg`` (and is
    not disabled), or will again once the organization its right comes through is enabled."""
    return invitation_holds(s, reg, sender_id).status != 409


def drop_dead_invitations(
    s: Session,
    which: ColumnElement[bool],
    reason: str,
    *,
    actor_id: int | None = None,
    address: str | None = None,
) -> list[OwnershipRequest]:
    """Delete, in ``s``'s transaction, the invitations ``which`` selects (a condition on
    ``OwnershipRequest``) whose sender may no longer manage the package's owners; each is audited as
    ``owner.cancel`` with ``reason``. Returns those dropped."""
    s.flush()  # the change that took the right away is what the check must see
    dropped = []
    for row in list(s.scalars(select(OwnershipRequest).where(which))):
        reg = s.get(PackageRegistration, row.registration_id)
        if reg is None or sender_may_invite(s, reg, row.requested_by_id):
            continue
        s.delete(row)
        dropped.append(row)
        record(
            s,
            "owner.cancel",
            actor_id=actor_id,
            account_id=row.new_owner_id,
            package_id=reg.package_id,
            address=address,
            reason=reason[:500],
        )
    if dropped:
        s.flush()
    return dropped
