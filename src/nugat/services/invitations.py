"""Ownership invitations whose sender may no longer send them.

An invitation stands for its sender's right to manage the package's owners: it is honoured only while
that right lasts. ``services.owners`` checks it again when an invitation is accepted; the changes that take
the right away (leaving or being removed from an owning organization, losing its admin role, being
disabled, being removed as an owner) drop, in their own transaction, the invitations it had sent, so no
page shows an invitation that can no longer be accepted.

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


def sender_may_invite(s: Session, reg: PackageRegistration, sender_id: int) -> bool:
    """Whether the invitation's sender may still manage the owners of ``reg`` (and is not disabled)."""
    sender = s.get(Account, sender_id)
    if sender is None or sender.kind != "user" or sender.disabled_at is not None:
        return False
    owners = frozenset(
        s.scalars(select(PackageOwner.account_id).where(PackageOwner.registration_id == reg.id))
    )
    return authz.can_manage_owners(user_actor(s, sender), reg.package_id, owner_ids=owners).allowed


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
