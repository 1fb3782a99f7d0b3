"""``services.keynotices``: the mail that a key expires in 10 days, and the mail that it has expired, each
once (whichever process looks) and again only when the key's expiry changes; never about keys nobody can
renew (revoked, minted for a workflow) nor long after the fact; and the outbox kept from growing for ever."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

from nugat.services import keynotices
from nugat.services.keynotices import KeyNotices
from nugat.services.trusted import PolicySettings
from support.oidc_issuer import github_claims, running_issuer
from support.services import ADDRESS, MAILING, Clock, MailSink, Site

ALICE = "alice@example.test"


@pytest.fixture
def alice(make_site: Callable[..., Site]) -> Site:
    """A mailing site whose key notices look at every call (``mail_poll_seconds=0``); the user alice."""
    site = make_site(**MAILING, mail_poll_seconds=0)
    site.user("alice")
    return site


def notices(site: Site, to: str = ALICE) -> list[str]:
    """The subjects of the expiry mails to ``to``, oldest first."""
    return [m.subject for m in site.mails(to) if m.kind in ("key_expiring", "key_expired")]


def test_a_key_is_mailed_ten_days_before_it_expires_then_once_it_has(alice: Site, clock: Clock) -> None:
    secret = alice.secret("alice", days=30)
    [key] = alice.core.accounts.list_keys("alice")
    due = alice.core.key_notices.due
    clock.advance(days=19, hours=23)  # ten days and an hour left
    assert due() == 0
    clock.advance(hours=1)
    assert due() == 1
    assert due() == 0
    clock.advance(days=10)
    assert due() == 1
    assert due() == 0
    assert notices(alice) == [
        'API key "test key 1" expires on 2026-03-31 12:00 UTC',
        'API key "test key 1" has expired',
    ]
    regenerate = f"https://nuget.example.test/account/apikeys/{key.id}/regenerate"
    for mail in alice.mails(ALICE)[-2:]:
        assert regenerate in mail.text_body and f'href="{regenerate}"' in mail.html_body
        assert f"({key.id}) for alice" in mail.text_body
        assert secret not in mail.text_body + mail.html_body


def test_each_notice_goes_out_once_whichever_process_looks(alice: Site, clock: Clock) -> None:
    alice.secret("alice", days=5)
    assert alice.core.key_notices.due() == 1
    other = alice.restart()  # another server process, on the same database
    assert other.core.key_notices.due() == 0
    clock.advance(days=5)
    assert other.core.key_notices.due() == 1
    assert alice.restart().core.key_notices.due() == 0
    assert len(notices(alice)) == 2


def test_a_regenerated_key_is_mailed_again_when_its_new_expiry_nears(alice: Site, clock: Clock) -> None:
    view, _ = alice.core.accounts.create_key("alice", "ci", ["push"], ["*"], [], 30)
    clock.advance(days=25)
    assert alice.core.key_notices.due() == 1
    alice.core.accounts.regenerate_key("alice", view.id)  # 30 days again, from now
    assert alice.core.key_notices.due() == 0
    clock.advance(days=25)
    assert alice.core.key_notices.due() == 1
    assert notices(alice) == [
        'API key "ci" expires on 2026-03-31 12:00 UTC',
        'API key "ci" expires on 2026-04-25 12:00 UTC',
    ]


def test_an_organizations_key_is_mailed_to_the_member_who_made_it(alice: Site) -> None:
    alice.user("bob")
    alice.core.orgs.create("Contoso", "alice")
    alice.core.orgs.add_member("Contoso", "bob", "collaborator")
    alice.secret("bob", owner="Contoso", days=3)
    assert alice.core.key_notices.due() == 1
    assert notices(alice) == []
    [mail] = [m for m in alice.mails("bob@example.test") if m.kind == "key_expiring"]
    assert "for Contoso" in mail.text_body and "Hello bob" in mail.text_body


def test_a_key_that_expired_long_ago_is_not_mailed(alice: Site, clock: Clock) -> None:
    alice.secret("alice", days=1)
    clock.advance(days=8)  # expired a week ago: the mail was off meanwhile, or the server stopped
    assert alice.core.key_notices.due() == 0
    alice.secret("alice", days=1)
    clock.advance(days=1, hours=1)  # expired an hour ago: still told
    assert alice.core.key_notices.due() == 1
    assert notices(alice) == ['API key "test key 2" has expired']


def test_a_revoked_key_is_not_mailed_about_its_expiry(alice: Site, clock: Clock) -> None:
    view, _ = alice.core.accounts.create_key("alice", "ci", ["push"], ["*"], [], 5)
    alice.core.accounts.revoke_key(view.id, "leaked")  # it cannot be regenerated: a link to do so is wrong
    assert alice.core.key_notices.due() == 0
    clock.advance(days=6)
    assert alice.core.key_notices.due() == 0
    assert notices(alice) == []


def test_keys_minted_for_a_workflow_are_not_mailed(make_site: Callable[..., Site]) -> None:
    with running_issuer() as issuer:
        site = make_site(**MAILING, mail_poll_seconds=0, oidc_issuers=f"github={issuer.url}",
                         oidc_audience="https://nuget.test")  # fmt: skip
        site.user("alice")
        criteria = {"owner": "contoso", "repository": "lib", "workflow": "release.yml"}
        policy = PolicySettings(criteria=criteria, scopes=["push"], globs=["*"])
        site.core.trusted.create_policy("alice", "alice", "github", None, policy, ADDRESS)
        minted = site.core.trusted.mint("alice", issuer.token(github_claims()), ADDRESS)
    assert minted.key  # a key that lives 15 minutes
    assert site.core.key_notices.due() == 0
    assert notices(site) == []


def test_nothing_is_looked_for_without_mail(make_site: Callable[..., Site], clock: Clock) -> None:
    site = make_site(mail_poll_seconds=0)
    site.user("alice")
    site.secret("alice", days=3)
    assert site.core.key_notices.due() == 0
    clock.advance(days=4)
    assert site.core.key_notices.due() == 0


def test_it_looks_at_most_every_so_often(alice: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    seconds = SimpleNamespace(now=10_000.0)
    monkeypatch.setattr(keynotices, "time", SimpleNamespace(monotonic=lambda: seconds.now))
    looker = KeyNotices(alice.core.db, alice.core.outbox, every=60)
    alice.secret("alice", days=3)
    assert looker.due() == 1
    alice.secret("alice", days=3)
    seconds.now += 59
    assert looker.due() == 0  # not looked: too soon
    seconds.now += 1
    assert looker.due() == 1


def test_sent_mail_is_pruned_after_30_days_and_a_notice_after_400(alice: Site, clock: Clock) -> None:
    outbox = alice.core.outbox
    alice.secret("alice", days=5)  # mails that the key was created
    assert alice.core.key_notices.due() == 1  # ...and that it expires soon
    assert outbox.send_due(MailSink()) == 2
    with outbox.db.session() as s:
        outbox.enqueue(s, ALICE, "password_changed", name="alice", how="")  # queued, never sent
    clock.advance(days=30, seconds=1)
    alice.core.key_notices.due()
    assert [m.kind for m in alice.mails()] == ["key_expiring", "password_changed"]
    clock.advance(days=370)
    alice.core.key_notices.due()
    assert [m.kind for m in alice.mails()] == ["password_changed"]  # unsent mail is never pruned
