"""The outbox: mail is written to a table in the transaction of the change it tells about, and sent by
every server process's sender loop (``run_sender``), so no request waits on SMTP.

A sender claims due rows atomically (a conditional UPDATE that only one process can win, under
``FOR UPDATE SKIP LOCKED`` on PostgreSQL) for ``LEASE``; a sent row is marked sent by its claimant. A
failed send is retried with exponential backoff (``retry_seconds`` doubling up to an hour), for as long
as it takes: only a permanent refusal of the recipient (an SMTP 5xx) ends it, marked failed. A process
that dies mid-send leaves its claim to expire, and another sends the row: at worst a mail arrives twice
after a crash between the SMTP server's "250 OK" and the commit, never lost. Each message carries a
Message-ID made from its row, so that rare duplicate is recognizable.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nugat.clock import utcnow
from nugat.db import Database
from nugat.db.models import OutboxMail
from nugat.mail import smtp
from nugat.mail.render import render
from nugat.settings import Settings

log = logging.getLogger("nugat.mail")

LEASE = timedelta(minutes=5)  # longer than any one SMTP conversation (timeouts of 30 s)
BATCH = 20  # rows a sender claims at once
MAX_RETRY = timedelta(hours=1)

Transport = Callable[[], AbstractContextManager[Any]]


@dataclass(frozen=True)
class MailStatus:
    queued: int  # not sent yet (due now or waiting to retry)
    retrying: int  # of those, ones a send already failed for
    sent: int
    failed: int  # refused for good by the SMTP server
    oldest_queued: datetime | None
    recent: list[OutboxMail]

    def as_json(self) -> dict[str, object]:
        return {
            "queued": self.queued,
            "retrying": self.retrying,
            "sent": self.sent,
            "failed": self.failed,
            "oldest_queued": self.oldest_queued.isoformat() + "Z" if self.oldest_queued else None,
            "recent": [
                {
                    "id": m.id,
                    "kind": m.kind,
                    "to": m.recipient,
                    "subject": m.subject,
                    "state": _state(m),
                    "attempts": m.attempts,
                    "last_error": m.last_error,
                }
                for m in self.recent
            ],
        }


def _state(m: OutboxMail) -> str:
    if m.sent_at:
        return "sent"
    if m.failed_at:
        return "failed"
    return "retrying" if m.attempts else "queued"


class Outbox:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.enabled = settings.mail_enabled
        self.base = (settings.public_url or "").rstrip("/")
        self.sender = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:64]
        self.retry = timedelta(seconds=settings.mail_retry_seconds)

    def link(self, path: str) -> str:
        return self.base + path

    def message(self, to: str, kind: str, **context: Any) -> OutboxMail | None:
        """The outbox row of a mail (None when mail is off); the caller adds it to its transaction."""
        if not self.enabled or not to:
            return None
        rendered = render(kind, {"site": self.base, "link": self.link, **context})
        now = utcnow()
        return OutboxMail(
            kind=kind,
            recipient=to,
            subject=rendered.subject,
            text_body=rendered.text,
            html_body=rendered.html,
            created_at=now,
            next_attempt_at=now,
            attempts=0,
        )

    def enqueue(self, s: Session, to: str | None, kind: str, **context: Any) -> None:
        """Queue a mail in the transaction ``s`` (sent only if it commits)."""
        row = self.message(to or "", kind, **context)
        if row is not None:
            s.add(row)

    def enqueue_once(self, dedupe: str, to: str, kind: str, **context: Any) -> bool:
        """Queue a mail unless one with the same ``dedupe`` key ever was (any process); True if queued."""
        row = self.message(to, kind, **context)
        if row is None:
            return False
        row.dedupe = dedupe[:200]
        try:
            with self.db.session() as s:
                if s.scalar(select(OutboxMail.id).where(OutboxMail.dedupe == row.dedupe)) is not None:
                    return False
                s.add(row)
        except IntegrityError:  # another process queued it first
            return False
        return True

    # Sending ---------------------------------------------------------------------------------------

    def claim(self, limit: int = BATCH) -> list[OutboxMail]:
        """Due rows, each claimed by this sender alone until ``LEASE`` passes."""
        now = utcnow()
        free = or_(OutboxMail.claimed_until.is_(None), OutboxMail.claimed_until < now)
        due = (
            OutboxMail.sent_at.is_(None),
            OutboxMail.failed_at.is_(None),
            OutboxMail.next_attempt_at <= now,
            free,
        )
        claimed = []
        with self.db.session() as s:
            ids = s.scalars(
                select(OutboxMail.id)
                .where(*due)
                .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for mail_id in ids:
                won = s.connection().execute(
                    update(OutboxMail)
                    .where(OutboxMail.id == mail_id, *due)
                    .values(claimed_by=self.sender, claimed_until=now + LEASE)
                    .execution_options(synchronize_session=False)
                )
                if won.rowcount == 1:
                    claimed.append(mail_id)
            rows = list(
                s.scalars(select(OutboxMail).where(OutboxMail.id.in_(claimed)).order_by(OutboxMail.id))
            )
        return rows

    def _settle(self, row: OutboxMail, error: str | None, permanent: bool = False) -> None:
        now = utcnow()
        values: dict[str, Any] = {"claimed_until": None, "claimed_by": None}
        if error is None:
            values["sent_at"] = now
        else:
            attempts = row.attempts + 1
            values.update(attempts=attempts, last_error=error[:500])
            if permanent:
                values["failed_at"] = now
            else:
                values["next_attempt_at"] = now + min(self.retry * 2 ** min(attempts - 1, 20), MAX_RETRY)
        with self.db.session() as s:
            s.execute(
                update(OutboxMail)
                .where(OutboxMail.id == row.id, OutboxMail.claimed_by == self.sender)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    def email(self, row: OutboxMail) -> EmailMessage:
        mail_from = self.settings.mail_from or ""
        msg = EmailMessage()
        msg["From"] = formataddr(("nugat", mail_from)) if "<" not in mail_from else mail_from
        msg["To"] = row.recipient
        msg["Subject"] = row.subject
        msg["Message-ID"] = make_msgid(f"nugat-outbox-{row.id}", mail_from.rpartition("@")[2] or None)
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(row.text_body)
        msg.add_alternative(row.html_body, subtype="html")
        return msg

    def send_due(self, transport: Transport | None = None) -> int:
        """Send what is due (one batch); returns how many were sent."""
        if not self.enabled:
            return 0
        rows = self.claim()
        if not rows:
            return 0
        connect = transport or (lambda: smtp.connect(smtp.SmtpConfig.parse(self.settings.smtp_url or "")))
        sent, settled = 0, set()
        try:
            with connect() as connection:
                for row in rows:
                    try:
                        connection.send(self.email(row))
                    except smtp.MailRefused as exc:
                        log.warning("mail %d (%s) refused for good: %s", row.id, row.kind, exc)
                        self._settle(row, str(exc), permanent=True)
                    else:
                        self._settle(row, None)
                        sent += 1
                    settled.add(row.id)
        except Exception as exc:  # the server is down or broke off: every row not sent waits to retry
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("could not send mail (will retry): %s", reason)
            for row in rows:
                if row.id not in settled:
                    self._settle(row, reason)
        return sent

    def status(self, recent: int = 20) -> MailStatus:
        with self.db.reading() as s:
            waiting = (OutboxMail.sent_at.is_(None), OutboxMail.failed_at.is_(None))
            queued = s.scalar(select(func.count()).select_from(OutboxMail).where(*waiting)) or 0
            retrying = (
                s.scalar(
                    select(func.count()).select_from(OutboxMail).where(*waiting, OutboxMail.attempts > 0)
                )
                or 0
            )
            sent = s.scalar(select(func.count()).where(OutboxMail.sent_at.is_not(None))) or 0
            failed = s.scalar(select(func.count()).where(OutboxMail.failed_at.is_not(None))) or 0
            oldest = s.scalar(select(func.min(OutboxMail.created_at)).where(*waiting))
            rows = list(s.scalars(select(OutboxMail).order_by(OutboxMail.id.desc()).limit(recent)))
        return MailStatus(queued, retrying, sent, failed, oldest, rows)


async def run_sender(outbox: Outbox, every: float, also: Callable[[], object] | None = None) -> None:
    """The sender loop of a server process: send what is due, then wait ``every`` seconds; ``also``: more
    periodic work (the keys' expiry mails). Cancelled when the server stops (a send under way finishes
    in its thread; its row is then settled, or its claim expires and another sender takes it)."""
    from starlette.concurrency import run_in_threadpool

    while True:
        try:
            if also is not None:
                await run_in_threadpool(also)
            for _ in range(50):  # a full batch: more may be due (bounded: then the next round)
                if await run_in_threadpool(outbox.send_due) < BATCH:
                    break
        except asyncio.CancelledError:
            raise
        except Exception:  # the database is down: try again next round
            log.exception("the mail sender failed; retrying in %s s", every)
        await asyncio.sleep(every)
