"""Who acts: the ``authz`` actor for a user name (its account facts read once), or the operator.

Services take ``by``: a user name (the signed-in user, or ``--by`` on the command line), an actor already
resolved, or ``authz.OPERATOR`` for the command line. They resolve it here once, in the operation's
session, and hand the actor to ``authz``.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from nugat.authz import Actor, Decision, Operator, Party, User, can_hold_keys
from nugat.db.models import Account, Membership
from nugat.services import NotFound

By = str | Actor
"""Who an operation is made by: a user's name, or a resolved actor (the operator, for the command line)."""


def user_actor(s: Session, user: Account) -> User:
    """The facts ``authz`` decides on for ``user``: its flags and its organizations, with its role in each
    and those that are disabled (no right through them counts meanwhile)."""
    roles = s.execute(
        select(Membership.org_id, Membership.role, Account.name, Account.disabled_at)
        .join(Account, Account.id == Membership.org_id)
        .where(Membership.member_id == user.id)
    ).all()
    return User(
        id=user.id,
        name=user.name,
        site_admin=user.is_admin,
        active=user.disabled_at is None,
        admin_of=frozenset(org for org, role, _, _ in roles if role == "admin"),
        member_of=frozenset(org for org, _, _, _ in roles),
        disabled_orgs=frozenset(
            Party(org, name, is_org=True) for org, _, name, disabled in roles if disabled is not None
        ),
    )


def resolve(s: Session, by: By) -> Actor:
    """The actor ``by`` names, read in this session (a user that does not exist: 404)."""
    if isinstance(by, Operator):
        return by
    name = by.name if isinstance(by, User) else by
    user = s.scalar(select(Account).where(Account.name_lower == name.lower(), Account.kind == "user"))
    if user is None:
        raise NotFound(f"No user named {name!r}")
    return user_actor(s, user)


def party(account: Account) -> Party:
    return Party(account.id, account.name, account.kind == "org")


def actor_id(actor: Actor) -> int | None:
    """The audit log's actor: the user's id, nothing for the operator."""
    return actor.id if isinstance(actor, User) else None


def holds_keys(user: Account, owner: Account, *, site_requires_2fa: bool) -> Decision:
    """``authz.can_hold_keys`` for these accounts: may ``user`` be given API keys acting for ``owner`` (a
    key made by hand, a trusted publishing policy, each key it mints)?"""
    return can_hold_keys(
        user=user.name,
        email=user.email,
        email_confirmed=user.email_confirmed,
        two_factor=user.totp_enabled_at is not None,
        site_requires_2fa=site_requires_2fa,
        owner=owner.name,
        owner_is_org=owner.kind == "org",
        owner_requires_2fa=owner.require_2fa,
    )
