"""The outbox (``services.mail``) against a real SMTP server on the loopback: each row claimed by one
sender only (two "processes" on SQLite and on PostgreSQL), retried with backoff while the server is down
and sent once it is back, never twice; a dead sender's claim expires; expiry mails go out once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from nugat.db.models import OutboxMail
from nugat.mail.render import kinds, render
from nugat.services.mail import LEASE, Outbox
from support.memory import MemoryStorage
from support.server import postgres_database
from support.services import Clock, Site
from support.smtp import MailBox

MAIL = {"mail_from": "nugat@example.test", "public_url": "https://nuget.example.test"}


@pytest.fixture
def mailbox() -> Iterator[MailBox]:
    box = MailBox().start()
    yield box
    box.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    with postgres_database() as url:
        yield url


def _queue(outbox: Outbox, n: int) -> None:
    with outbox.db.session() as s:
        for i in range(n):
            outbox.enqueue(s, f"user{i}@example.test", "password_changed", name=f"user{i}", how="")


def test_two_senders_never_claim_the_same_mail(
    tmp_path: Path, storage: MemoryStorage, database_url: str | None
) -> None:
    settings: dict[str, Any] = {"smtp_url": "smtp://127.0.0.1:9", **MAIL}
    if database_url:
        settings["database_url"] = database_url
    first = Site(tmp_path / "a", storage, **settings)
    second = Site(tmp_path / "a", storage, **settings)  # another process on the same database
    try:
        first.core.db.upgrade()
        _queue(first.core.outbox, 60)
        claims: dict[str, list[int]] = {"a": [], "b": []}
        barrier = threading.Barrier(2)

        def claim_all(name: str, outbox: Outbox) -> None:
            barrier.wait()
            for _ in range(20):  # bounded: 60 rows in batches of at most 20 between two senders
                rows = outbox.claim(limit=7)
                claims[name].extend(r.id for r in rows)

        threads = [
            threading.Thread(target=claim_all, args=("a", first.core.outbox)),
            threading.Thread(target=claim_all, args=("b", second.core.outbox)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        everything = claims["a"] + claims["b"]
        assert len(everything) == 60 and len(set(everything)) == 60  # each row exactly once
        assert (claims["a"] and claims["b"]) or database_url is None  # on PG both got some (SKIP LOCKED)
    finally:
        first.close()
        second.close()


def test_a_mail_waits_while_smtp_is_down_and_is_sent_once_when_it_is_back(
    make_site: Callable[..., Site], clock: Clock
) -> None:
    box = MailBox()  # not started: the port refuses connections
    site = make_site(smtp_url=box.url, mail_retry_seconds=30, **MAIL)
    outbox = site.core.outbox
    _queue(outbox, 1)
    assert outbox.send_due() == 0
    status = outbox.status()
    assert (status.queued, status.retrying, status.sent) == (1, 1, 0)
    assert "ConnectionRefusedError" in (status.recent[0].last_error or "")
    box.start()
    try:
        assert outbox.send_due() == 0  # not due yet: the first retry waits 30 s
        clock.advance(seconds=31)
        assert outbox.send_due() == 1
        mail = box.to("user0@example.test", "Your password was changed", timeout=5)
        assert mail.mail_from == "nugat@example.test" and mail.recipients == ["user0@example.test"]
        assert "https://nuget.example.test/account/forgot" in mail.text
        assert 'href="https://nuget.example.test/account/forgot"' in mail.html
        assert mail.message["Message-ID"] and "nugat-outbox-" in mail.message["Message-ID"]
        clock.advance(hours=2)
        assert outbox.send_due() == 0  # sent once, never again
        assert box.count(lambda m: True) == 1
        status = outbox.status()
        assert (status.queued, status.sent) == (0, 1)
    finally:
        box.stop()


def test_backoff_doubles_and_is_capped(make_site: Callable[..., Site], clock: Clock) -> None:
    site = make_site(smtp_url=MailBox().url, mail_retry_seconds=10, **MAIL)
    outbox = site.core.outbox
    _queue(outbox, 1)
    waits = []
    for _ in range(12):
        assert outbox.send_due() == 0
        with site.core.db.reading() as s:
            row = s.scalars(select(OutboxMail)).one()
        waits.append((row.next_attempt_at - clock.now).total_seconds())
        clock.now = row.next_attempt_at
    assert waits[:4] == [10, 20, 40, 80]
    assert waits[-1] == 3600  # at most an hour between tries, and it never gives up
    assert outbox.status().queued == 1


def test_a_dead_senders_claim_expires(make_site: Callable[..., Site], clock: Clock, mailbox: MailBox) -> None:
    site = make_site(smtp_url=mailbox.url, **MAIL)
    dead = site.core.outbox
    _queue(dead, 1)
    assert len(dead.claim()) == 1  # ...and the process dies before sending
    other = site.restart().core.outbox
    assert other.send_due() == 0  # claimed: nobody else sends it meanwhile
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert other.send_due() == 1
    mailbox.to("user0@example.test", timeout=5)


def test_no_mail_is_queued_without_smtp(site: Site) -> None:
    _queue(site.core.outbox, 3)
    assert site.core.outbox.status().queued == 0


def test_every_template_renders_text_and_html() -> None:
    context: dict[str, Any] = {
        "site": "https://n.example", "link": lambda p: "https://n.example" + p, "name": "al<i>ce",
        "email": "a@example.test", "path": "/x", "hours": 1, "how": "", "old": "a@x.test", "new": "b@x.test",
        "key_name": "ci", "key_id": "abc", "owner": "alice", "event": "created", "by": None, "reason": None,
        "regenerate": True, "expires": "2026-01-01", "invitee": "alice", "package": "P", "org": "O",
        "change": "added", "role": "admin", "address": "192.0.2.1", "agent": "Firefox", "at": "now",
    }  # fmt: skip
    assert len(kinds()) == 13
    for kind in kinds():
        rendered = render(kind, context)
        assert rendered.subject and "\n" not in rendered.subject
        assert "al&lt;i&gt;ce" in rendered.html or "alice" in rendered.html, kind  # escaped in HTML
        assert "https://n.example" in rendered.text and "https://n.example" in rendered.html, kind


def test_expiry_mails_go_out_once_each(
    make_site: Callable[..., Site], clock: Clock, mailbox: MailBox
) -> None:
    site = make_site(smtp_url=mailbox.url, mail_poll_seconds=0, **MAIL)
    site.user("alice")
    site.secret("alice", days=30)
    notices = site.core.key_notices
    assert notices.due() == 0
    clock.advance(days=21)  # 9 days left
    assert notices.due() == 1
    assert notices.due() == 0  # once
    assert site.restart().core.key_notices.due() == 0  # once, whichever process looks
    clock.advance(days=10)  # expired
    assert notices.due() == 1
    assert notices.due() == 0
    assert site.core.outbox.send_due() == 3  # with the mail that the key was created
    assert "created" in mailbox.to("alice@example.test", "created", timeout=5).subject
    expiring = mailbox.to("alice@example.test", "expires on", timeout=5)
    key_id = expiring.link("/regenerate").split("/")[3]
    assert expiring.link("/regenerate") == f"/account/apikeys/{key_id}/regenerate"
    expired = mailbox.to("alice@example.test", "has expired", timeout=5)
    assert expired.link("/regenerate") == expiring.link("/regenerate")
    clock.advance(days=30)
    assert notices.due() == 0  # long expired: not mailed again
    assert timedelta(0) < LEASE


def test_mail_settings_are_checked(tmp_path: Path) -> None:
    from nugat.settings import Settings

    def problems(**values: Any) -> str:
        return " ".join(Settings(data_dir=tmp_path, **values).problems())

    assert problems() == ""
    assert "NUGAT_MAIL_FROM is needed" in problems(
        smtp_url="smtp://mail.example.test", public_url="https://n.test"
    )
    assert "NUGAT_PUBLIC_URL is needed" in problems(smtp_url="smtp://mail.example.test", mail_from="n@x.test")
    assert "must be smtp://" in problems(
        smtp_url="http://mail.example.test", mail_from="n@x.test", public_url="https://n.test"
    )
    assert (
        problems(
            smtp_url="smtps://u:p%40ss@mail.example.test", mail_from="n@x.test", public_url="https://n.test"
        )
        == ""
    )
    assert Settings(data_dir=tmp_path).email_confirmation is False
    assert Settings(data_dir=tmp_path, smtp_url="smtp://m.test").email_confirmation is True
    assert Settings(data_dir=tmp_path, confirm_email="true").email_confirmation is True


def test_smtp_urls() -> None:
    from nugat.mail.smtp import SmtpConfig

    config = SmtpConfig.parse("smtps://me%40example.test:p%40ss@mail.example.test")
    assert (config.host, config.port, config.tls, config.user, config.password) == (
        "mail.example.test",
        465,
        True,
        "me@example.test",
        "p@ss",
    )
    assert SmtpConfig.parse("smtp://u:p@mail.example.test").port == 587
    assert SmtpConfig.parse("smtp://127.0.0.1:2525").loopback
    assert not SmtpConfig.parse("smtp://mail.example.test").loopback
