"""The outbox (``services.mail``) against a real SMTP server on the loopback: each row claimed by one
sender only (two "processes" on SQLite and on PostgreSQL), retried with backoff while the server is down
and sent once it is back, never twice; a dead sender's claim expires; expiry mails go out once. Then with
a transport that keeps what it is sent: a mail queued only with its transaction, once per dedupe key, each
message built from its row, a refused recipient failed for good, a broken connection's rest retried, the
status counts, and the sender loop outliving a failed round."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from nugat.db.models import OutboxMail
from nugat.mail.render import kinds, render
from nugat.services.mail import BATCH, LEASE, Outbox, run_sender
from support.memory import MemoryStorage
from support.server import postgres_database
from support.services import Clock, MailSink, Site
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
        "policy": "lib release.yml", "criteria": "GitHub Actions: owner contoso", "scopes": "push",
        "globs": "*", "minutes": 15, "deleted": 1,
    }  # fmt: skip
    assert len(kinds()) == 16
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


# The outbox without an SMTP server (``support.services.MailSink`` stands for the connection) ----------------


def test_a_mail_is_queued_only_if_its_transaction_commits(mailing: Site) -> None:
    outbox = mailing.core.outbox
    with pytest.raises(RuntimeError), outbox.db.session() as s:
        outbox.enqueue(s, "alice@example.test", "password_changed", name="alice", how="")
        raise RuntimeError("the change it tells about failed")
    with outbox.db.session() as s:
        outbox.enqueue(s, None, "password_changed", name="nobody", how="")  # an account without an address
        outbox.enqueue(s, "bob@example.test", "password_changed", name="bob", how="")
    [mail] = mailing.mails()
    assert (mail.recipient, mail.kind, mail.subject, mail.attempts) == (
        "bob@example.test",
        "password_changed",
        "Your password was changed",
        0,
    )
    assert "Hello bob," in mail.text_body and "https://nuget.example.test/account/forgot" in mail.text_body


def test_links_are_made_from_the_public_url(make_site: Callable[..., Site]) -> None:
    outbox = make_site(smtp_url="smtp://127.0.0.1:9", public_url="https://n.example.test/feed/").core.outbox
    assert outbox.link("/account") == "https://n.example.test/feed/account"
    mail = outbox.message("a@example.test", "password_changed", name="a", how="")
    assert mail is not None and "https://n.example.test/feed/account/forgot" in mail.text_body


def test_enqueue_once_queues_a_dedupe_key_once_ever(mailing: Site, make_site: Callable[..., Site]) -> None:
    outbox = mailing.core.outbox
    context = {"name": "alice", "how": ""}
    assert outbox.enqueue_once("k" * 200 + "1", "alice@example.test", "password_changed", **context) is True
    assert outbox.enqueue_once("k" * 200 + "2", "alice@example.test", "password_changed", **context) is False
    assert mailing.restart().core.outbox.enqueue_once("other", "alice@example.test", "password_changed",
                                                       **context) is True  # fmt: skip
    outbox.send_due(MailSink())
    assert outbox.enqueue_once("other", "alice@example.test", "password_changed", **context) is False  # sent
    assert len(mailing.mails()) == 2
    quiet = make_site().core.outbox
    assert quiet.enqueue_once("x", "alice@example.test", "password_changed", **context) is False


def test_sending_builds_each_message_from_its_row(mailing: Site) -> None:
    outbox = mailing.core.outbox
    _queue(outbox, 2)
    sink = MailSink()
    assert outbox.send_due(sink) == 2
    assert sink.connections == 1  # one connection per batch
    first = sink.sent[0]
    row = mailing.mails()[0]
    assert (first["From"], first["To"], first["Subject"]) == (
        "nugat <nugat@example.test>",
        "user0@example.test",
        "Your password was changed",
    )
    assert first["Message-ID"].endswith(
        f".nugat-outbox-{row.id}@example.test>"
    )  # duplicates are recognizable
    assert first["Auto-Submitted"] == "auto-generated"
    text, html = first.get_body(("plain",)), first.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content() == row.text_body and html.get_content() == row.html_body  # type: ignore[attr-defined]
    assert outbox.send_due(sink) == 0 and sink.connections == 1  # nothing due: no connection


def test_a_sender_address_with_a_name_is_used_as_it_is(make_site: Callable[..., Site]) -> None:
    site = make_site(smtp_url="smtp://127.0.0.1:9", mail_from="Packages <pkgs@example.test>",
                     public_url="https://nuget.example.test")  # fmt: skip
    _queue(site.core.outbox, 1)
    sink = MailSink()
    site.core.outbox.send_due(sink)
    assert sink.sent[0]["From"] == "Packages <pkgs@example.test>"


def test_a_refused_recipient_fails_for_good_and_the_rest_is_sent(mailing: Site, clock: Clock) -> None:
    outbox = mailing.core.outbox
    _queue(outbox, 3)
    sink = MailSink(refuse=("user1@example.test",))
    assert outbox.send_due(sink) == 2
    status = outbox.status()
    assert (status.queued, status.sent, status.failed) == (0, 2, 1)
    [failed] = [m for m in status.recent if m.failed_at is not None]
    assert failed.recipient == "user1@example.test" and "recipient refused" in (failed.last_error or "")
    clock.advance(days=1)
    assert outbox.send_due(MailSink()) == 0  # never tried again
    assert [m["state"] for m in status.as_json()["recent"]] == ["sent", "failed", "sent"]  # type: ignore[index]


def test_a_connection_lost_mid_batch_leaves_the_rest_to_retry(mailing: Site, clock: Clock) -> None:
    outbox = mailing.core.outbox
    _queue(outbox, 3)
    assert outbox.send_due(MailSink(break_after=1)) == 1
    status = outbox.status()
    assert (status.queued, status.retrying, status.sent) == (2, 2, 1)
    errors = {m.last_error for m in status.recent if m.attempts}
    assert errors == {"ConnectionResetError: the server broke off"}
    assert outbox.send_due(MailSink()) == 0  # waiting for the retry
    clock.advance(seconds=30)
    retry = MailSink()
    assert outbox.send_due(retry) == 2
    assert [m["To"] for m in retry.sent] == ["user1@example.test", "user2@example.test"]
    assert outbox.status().sent == 3


def test_claims_are_bounded_in_order_and_exclusive(mailing: Site, clock: Clock) -> None:
    outbox = mailing.core.outbox
    _queue(outbox, 5)
    first = outbox.claim(limit=2)
    other = mailing.restart().core.outbox
    second = other.claim(limit=10)
    assert [r.recipient for r in first] == ["user0@example.test", "user1@example.test"]
    assert [r.recipient for r in second] == [f"user{n}@example.test" for n in (2, 3, 4)]
    assert other.claim() == []
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert len(outbox.claim()) == 5  # nobody settled them: the claims expired


def test_the_mail_waiting_longest_is_claimed_first(mailing: Site, clock: Clock) -> None:
    outbox = mailing.core.outbox
    _queue(outbox, 1)
    outbox.send_due(MailSink(break_after=0))  # user0 waits 30 s for its retry
    clock.advance(seconds=10)
    with outbox.db.session() as s:
        outbox.enqueue(s, "late@example.test", "password_changed", name="late", how="")
    clock.advance(seconds=30)
    assert [r.recipient for r in outbox.claim(limit=1)] == ["late@example.test"]  # due 20 s earlier


def test_status_counts_each_state(mailing: Site, clock: Clock) -> None:
    outbox = mailing.core.outbox
    empty = outbox.status()
    assert (empty.queued, empty.retrying, empty.sent, empty.failed, empty.oldest_queued) == (0, 0, 0, 0, None)
    _queue(outbox, 3)
    outbox.send_due(MailSink(refuse=("user0@example.test",), break_after=1))  # refused, sent, broke off
    clock.advance(minutes=5)
    _queue(outbox, 1)
    status = outbox.status(recent=3)
    assert (status.queued, status.retrying, status.sent, status.failed) == (2, 1, 1, 1)
    report = status.as_json()
    assert report["oldest_queued"] == "2026-03-01T12:00:00Z"
    assert [(m["to"], m["state"]) for m in report["recent"]] == [  # type: ignore[union-attr]
        ("user0@example.test", "queued"),  # the newest first; user0 is queued last
        ("user2@example.test", "retrying"),
        ("user1@example.test", "sent"),
    ]


def _run_sender_until(outbox: Outbox, every: float, also: Callable[[], object] | None, sent: int) -> None:
    """Run the sender loop until ``sent`` mails are sent (10 s at most), then stop it as a server does."""

    async def run() -> None:
        task = asyncio.create_task(run_sender(outbox, every, also))
        for _ in range(1000):
            await asyncio.sleep(0.01)
            if outbox.status().sent >= sent:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())


def test_one_round_of_the_sender_loop_sends_every_due_batch(
    make_site: Callable[..., Site], mailbox: MailBox
) -> None:
    site = make_site(smtp_url=mailbox.url, **MAIL)
    outbox = site.core.outbox
    _queue(outbox, BATCH * 2 + 5)
    rounds: list[int] = []
    _run_sender_until(outbox, 3600, lambda: rounds.append(1), BATCH * 2 + 5)
    assert rounds == [1]  # one round: it then waits an hour
    assert outbox.status().sent == mailbox.count(lambda m: True) == BATCH * 2 + 5


def test_the_sender_loop_outlives_a_failed_round(make_site: Callable[..., Site], mailbox: MailBox) -> None:
    site = make_site(smtp_url=mailbox.url, **MAIL)
    outbox = site.core.outbox
    _queue(outbox, 3)
    rounds: list[int] = []

    def also() -> None:
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("the database is down")

    _run_sender_until(outbox, 0.01, also, 3)
    assert len(rounds) >= 2  # the failed first round sent nothing, the next one did
    assert outbox.status().sent == mailbox.count(lambda m: True) == 3
