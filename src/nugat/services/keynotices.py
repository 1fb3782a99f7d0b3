"""Mail about keys that expire: once when a key has 10 days left, once when it has expired (each with a
link to regenerate it, as nuget.org sends; none about a revoked key, which cannot be regenerated). Every
server process looks now and then (``due``); the outbox's dedupe key (the key id and its expiry) makes each
mail go out once whichever process finds it, and again only if the key's expiry changes."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import aliased

from nugat.clock import isoformat, utcnow
from nugat.db import Database
from nugat.db.models import Account, ApiKey, OutboxMail
from nugat.keys import EXPIRY_WARNING
from nugat.services.mail import Outbox

EXPIRED_NOTICE_WITHIN = timedelta(days=7)  # an expired key older than this (mail was off) is not mailed
KEEP_SENT = timedelta(days=30)
KEEP_ONCE = timedelta(days=400)  # longer than any key lives: its dedupe row must outlive it
BATCH = 1000


class KeyNotices:
    def __init__(self, db: Database, outbox: Outbox, every: float) -> None:
        self.db = db
        self.outbox = outbox
        self.every = every
        self._last = 0.0

    def due(self) -> int:
        """Queue the expiry mails now due (at most every ``every`` seconds); returns how many."""
        if not self.outbox.enabled or time.monotonic() - self._last < self.every:
            return 0
        self._last = time.monotonic()
        now = utcnow()
        with self.db.reading() as s:
            owner = aliased(Account)
            rows = s.execute(
                select(ApiKey, Account.name, Account.email, owner.name)
                .join(Account, Account.id == ApiKey.user_id)
                .join(owner, owner.id == ApiKey.owner_id)
                .where(
                    ApiKey.policy_id.is_(None),  # minted keys live minutes
                    ApiKey.revoked_at.is_(None),  # dead for good: no regenerating it
                    ApiKey.expires_at <= now + EXPIRY_WARNING,
                    ApiKey.expires_at > now - EXPIRED_NOTICE_WITHIN,
                )
                .order_by(ApiKey.expires_at)
                .limit(BATCH)
            ).all()
        queued = 0
        for key, user_name, email, owner_name in rows:
            if not email:
                continue
            expired = key.expires_at <= now
            kind = "key_expired" if expired else "key_expiring"
            dedupe = f"{kind}:{key.key_id}:{isoformat(key.expires_at)}"
            queued += self.outbox.enqueue_once(
                dedupe, email, kind, name=user_name, key_name=key.name, key_id=key.key_id,
                owner=owner_name, expires=key.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
            )  # fmt: skip
        self._prune()
        return queued

    def _prune(self) -> None:
        current = utcnow()
        with self.db.session() as s:
            s.execute(
                delete(OutboxMail).where(
                    OutboxMail.sent_at < current - KEEP_SENT,
                    OutboxMail.dedupe.is_(None),
                )
            )
            s.execute(delete(OutboxMail).where(OutboxMail.sent_at < current - KEEP_ONCE))
