"""The audit log: who did what, when, from where and through which key id (never a secret)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session

from nugat import authz
from nugat.authz import OPERATOR
from nugat.clock import isoformat, utcnow
from nugat.db import Database, Tx, conn
from nugat.db.models import Account, ApiKey, AuditEvent, table
from nugat.services import NotFound
from nugat.services.actors import By, actor_id, resolve

DELETED = "deleted user"
"""How an event names an account deleted since (``nugat user delete``): its events stay."""

_INSERT_EVENT = insert(table(AuditEvent))  # built once: a statement, not an ORM object, in every push


def record(
    s: Tx,
    action: str,
    *,
    actor_id: int | None = None,
    account_id: int | None = None,
    package_id: str | None = None,
    version: str | None = None,
    key_id: str | None = None,
    address: str | None = None,
    **detail: Any,
) -> None:
    conn(s).execute(
        _INSERT_EVENT,
        {
            "at": utcnow(),
            "action": action,
            "actor_id": actor_id,
            "account_id": account_id,
            "package_id": package_id,
            "version": version,
            "key_id": key_id,
            "address": address,
            "detail": detail,
        },
    )


def record_key_failure(
    db: Database,
    key_id: str | None,
    address: str | None,
    reason: str,
    *,
    package_id: str | None = None,
    version: str | None = None,
    **detail: Any,
) -> None:
    """Record a refused use of an API key in a transaction of its own (the refused one rolls back).

    A known key id files the event under the key's owner and creator; an unknown one only site admins see.
    """
    with db.session() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.key_id == key_id)) if key_id else None
        record(
            s,
            "key.use_failed",
            actor_id=row.user_id if row else None,
            account_id=row.owner_id if row else None,
            package_id=package_id,
            version=version,
            key_id=key_id,
            address=address,
            reason=reason,
            **detail,
        )


@dataclass(frozen=True)
class EventView:
    at: datetime
    action: str
    actor: str | None  # None: the command line, or an unknown key
    account: str | None  # whose event it is
    package_id: str | None
    version: str | None
    key_id: str | None
    address: str | None
    detail: dict[str, Any]

    def as_json(self) -> dict[str, object]:
        return {
            "at": isoformat(self.at),
            "action": self.action,
            "actor": self.actor,
            "account": self.account,
            "package": self.package_id,
            "version": self.version,
            "key_id": self.key_id,
            "address": self.address,
            "detail": self.detail,
        }


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def events(
        self,
        *,
        viewer: By = OPERATOR,
        user: str | None = None,
        package: str | None = None,
        limit: int = 200,
    ) -> list[EventView]:
        """The newest events first, optionally only those of ``user`` (as actor or account) or ``package``.

        ``viewer`` is the signed-in user asking: it sees the events it made and those of its own account and
        of the organizations it administers; site admins and the command line (``OPERATOR``) see every event
        (``authz.visible_accounts``).
        Only they learn that ``user`` names no account: anyone else gets the same empty answer for an
        unknown name as for an account whose events they may not see (no way to list accounts).
        """
        with self.db.reading() as s:
            query = select(AuditEvent)
            actor = resolve(s, viewer)
            accounts = authz.visible_accounts(actor)
            sees_all = accounts is None
            if accounts is not None:
                query = query.where(
                    or_(AuditEvent.actor_id == actor_id(actor), AuditEvent.account_id.in_(accounts))
                )
            if user is not None:
                if sees_all:
                    _account(s, user)  # NotFound names the mistake
                # One query whether or not the name exists: an unknown name matches no event.
                who = select(Account.id).where(Account.name_lower == user.lower()).scalar_subquery()
                query = query.where(or_(AuditEvent.actor_id == who, AuditEvent.account_id == who))
            if package is not None:
                query = query.where(func.lower(AuditEvent.package_id) == package.lower())
            rows = list(s.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)))
            ids = {i for row in rows for i in (row.actor_id, row.account_id) if i is not None}
            names = dict(s.execute(select(Account.id, Account.name).where(Account.id.in_(ids))).all())
        return [
            EventView(
                at=row.at,
                action=row.action,
                actor=names.get(row.actor_id, DELETED) if row.actor_id else None,
                account=names.get(row.account_id, DELETED) if row.account_id else None,
                package_id=row.package_id,
                version=row.version,
                key_id=row.key_id,
                address=row.address,
                detail=dict(row.detail),
            )
            for row in rows
        ]


def _account(s: Session, name: str) -> Account:
    account = s.scalar(select(Account).where(Account.name_lower == name.lower()))
    if account is None:
        raise NotFound(f"No account named {name!r}")
    return account
