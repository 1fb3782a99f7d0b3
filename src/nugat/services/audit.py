"""The audit log: who did what, when, from where and through which key id (never a secret)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from nugat.clock import utcnow
from nugat.db.models import AuditEvent


def record(
    s: Session,
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
    s.add(
        AuditEvent(
            at=utcnow(),
            action=action,
            actor_id=actor_id,
            account_id=account_id,
            package_id=package_id,
            version=version,
            key_id=key_id,
            address=address,
            detail=detail,
        )
    )
