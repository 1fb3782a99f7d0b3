"""``services.account_mail``: the account flows that go through the owner's mailbox. Each link carries a
single-use token (only its SHA-256 stored) that expires, dies when a newer one is sent, and is refused with
410 once used; mails a stranger can trigger are bounded per account and per address, silently; a sign-up
never says which addresses have accounts; a new password or address ends every session or is told to the
old address; a sign-in from a new browser is mailed."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, timedelta

import pyotp
import pytest
from sqlalchemy import select

from nugat.db.models import AccountToken, OutboxMail
from nugat.services import Forbidden
from nugat.services.account_mail import (
    MAILS_PER_ACCOUNT,
    MAILS_PER_ADDRESS,
    MAX_TOKEN,
    issue,
    peek,
    redeem,
)
from nugat.services.sessions import Sessions
from support.services import ADDRESS, Clock, Site, refused

PASSWORD = "violet tractor harbour"
NEW_PASSWORD = "a brand new passphrase"
ALICE = "alice@example.test"
DEAD = "expired or was already used"
SITE = "https://nuget.example.test"


def token_in(mail: OutboxMail, path: str) -> str:
    """The token of the link to ``path``/<token> in both bodies of ``mail`` (the same in each)."""
    [token] = re.findall(re.escape(f"{SITE}{path}/") + r"([A-Za-z0-9_-]+)", mail.text_body)
    assert f'href="{SITE}{path}/{token}"' in mail.html_body
    return token


def mails(site: Site, kind: str, to: str = ALICE) -> list[OutboxMail]:
    return [m for m in site.mails(to) if m.kind == kind]


def sessions(site: Site) -> Sessions:
    return Sessions(site.core.db, b"s" * 32)


@pytest.fixture
def alice(mailing: Site) -> Site:
    """A mailing site; alice, confirmed, with a password."""
    mailing.core.accounts.create_user("alice", ALICE, PASSWORD)
    return mailing


@pytest.fixture
def quiet(make_site: Callable[..., Site]) -> Site:
    """A site without mail; alice, confirmed, with a password."""
    site = make_site()
    site.core.accounts.create_user("alice", ALICE, PASSWORD)
    return site


# Tokens -----------------------------------------------------------------------------------------------------


def test_a_token_is_stored_as_its_digest_and_used_once(alice: Site, clock: Clock) -> None:
    user_id = alice.core.accounts.users()[0].id
    with alice.core.db.session() as s:
        token = issue(s, user_id, "reset", timedelta(hours=1), "some data")
    with alice.core.db.reading() as s:
        [row] = s.scalars(select(AccountToken))
        assert row.token_hash == hashlib.sha256(token.encode()).digest() and row.data == "some data"
        assert peek(s, "reset", token) is not None
        assert peek(s, "confirm", token) is None  # a token is good for its purpose only
        assert peek(s, "reset", token + "x") is None
        assert peek(s, "reset", "") is None
        assert peek(s, "reset", "x" * (MAX_TOKEN + 1)) is None
    with alice.core.db.session() as s:
        assert redeem(s, "reset", token).account_id == user_id
    with alice.core.db.session() as s, refused(410, DEAD):
        redeem(s, "reset", token)
    with alice.core.db.session() as s, refused(410, DEAD):
        redeem(s, "reset", "no such token")


def test_a_new_token_kills_the_earlier_of_its_purpose_only(alice: Site) -> None:
    user_id = alice.core.accounts.users()[0].id
    with alice.core.db.session() as s:
        first_reset = issue(s, user_id, "reset", timedelta(hours=1))
        signin = issue(s, user_id, "signin", timedelta(hours=1))
        second_reset = issue(s, user_id, "reset", timedelta(hours=1))
    with alice.core.db.reading() as s:
        assert peek(s, "reset", first_reset) is None
        assert peek(s, "reset", second_reset) is not None
        assert peek(s, "signin", signin) is not None


def test_a_token_dies_when_it_expires_and_is_forgotten_a_day_later(alice: Site, clock: Clock) -> None:
    user_id = alice.core.accounts.users()[0].id
    with alice.core.db.session() as s:
        token = issue(s, user_id, "email", timedelta(hours=1))
    clock.advance(minutes=59, seconds=59)
    with alice.core.db.reading() as s:
        assert peek(s, "email", token) is not None
    clock.advance(seconds=1)
    with alice.core.db.session() as s, refused(410, DEAD):
        redeem(s, "email", token)
    clock.advance(days=1, seconds=1)
    with alice.core.db.session() as s:
        issue(s, user_id, "signin", timedelta(minutes=10))  # any new token tidies up
    with alice.core.db.reading() as s:
        assert [row.purpose for row in s.scalars(select(AccountToken))] == ["signin"]


# Sign-up and confirmation ---------------------------------------------------------------------------------


def test_a_sign_up_is_confirmed_by_its_mailed_link_once(mailing: Site) -> None:
    flows = mailing.core.account_mail
    user = flows.sign_up("alice", ALICE, PASSWORD, confirm=True)
    assert user is not None and not user.email_confirmed
    [mail] = mails(mailing, "confirm_email")
    assert mail.subject == "Confirm your email address for alice"
    assert "valid for 48 hours" in mail.text_body and PASSWORD not in mail.text_body + mail.html_body
    token = token_in(mail, "/account/confirm")
    confirmed = flows.confirm(token)
    assert (confirmed.name, confirmed.email_confirmed) == ("alice", True)
    assert [(e.action, e.actor, e.account) for e in mailing.events("account.confirm")] == [
        ("account.confirm", "alice", "alice")
    ]
    with refused(410, DEAD):
        flows.confirm(token)
    assert flows.send_confirmation(user.id) is False  # confirmed: nothing to send


def test_a_sign_up_without_confirmation_is_confirmed_at_once(mailing: Site) -> None:
    user = mailing.core.account_mail.sign_up("alice", ALICE, PASSWORD, confirm=False, admin_if_first=True)
    assert user is not None and user.email_confirmed and user.is_admin
    assert mailing.mails() == []


def test_a_sign_up_with_an_address_in_use_mails_its_owner_and_says_nothing(alice: Site) -> None:
    flows = alice.core.account_mail
    assert flows.sign_up("mallory", "ALICE@example.TEST", "another long passphrase", confirm=True) is None
    assert [u.name for u in alice.core.accounts.users()] == ["alice"]
    [mail] = mails(alice, "signup_address_in_use")
    assert mail.subject == "Someone tried to sign up with your email address"
    assert "named alice" in mail.text_body and f"{SITE}/account/forgot" in mail.text_body
    assert "another long passphrase" not in mail.text_body + mail.html_body
    assert mails(alice, "confirm_email") == []


def test_a_taken_username_is_said_and_without_mail_a_taken_address_too(alice: Site, quiet: Site) -> None:
    for site in (alice, quiet):
        with refused(409, "^That username is already taken$"):
            site.core.account_mail.sign_up("ALICE", "other@example.test", PASSWORD, confirm=True)
    with refused(409, "^That username or email is already taken$"):  # no mail to send its owner instead
        quiet.core.account_mail.sign_up("mallory", ALICE, PASSWORD, confirm=False)
    assert alice.mails() == []


def test_sign_ups_at_one_address_mail_its_owner_five_times_an_hour(alice: Site, clock: Clock) -> None:
    flows = alice.core.account_mail
    for n in range(MAILS_PER_ACCOUNT + 2):
        assert flows.sign_up(f"mallory{n}", ALICE, PASSWORD, confirm=True) is None  # the same answer
    assert len(mails(alice, "signup_address_in_use")) == MAILS_PER_ACCOUNT
    clock.advance(hours=1)
    flows.sign_up("mallory", ALICE, PASSWORD, confirm=True)
    assert len(mails(alice, "signup_address_in_use")) == MAILS_PER_ACCOUNT + 1


def test_notices_a_stranger_sends_at_will_leave_the_owner_its_reset_and_confirmation_links(
    alice: Site,
) -> None:
    """Strangers' sign-ups (or email changes) with an account's address each mail its owner a notice:
    bounded per account, they must not use up what the owner needs, or a stranger sending five an hour
    would keep the owner from ever getting a reset link (or a confirmation link)."""
    flows = alice.core.account_mail
    bob = flows.sign_up("bob", "bob@example.test", PASSWORD, confirm=True)
    assert bob is not None
    mallory = alice.core.accounts.create_user("mallory", "mallory@example.test", PASSWORD)
    for n in range(MAILS_PER_ACCOUNT + 1):
        flows.sign_up(f"mallory{n}", ALICE, PASSWORD, confirm=True)
        flows.sign_up(f"eve{n}", "bob@example.test", PASSWORD, confirm=True)
        flows.request_email_change(mallory.id, ALICE)
        flows.request_email_change(mallory.id, "bob@example.test")
    assert len(mails(alice, "signup_address_in_use")) == MAILS_PER_ACCOUNT  # still bounded
    assert len(mails(alice, "email_address_in_use")) == MAILS_PER_ACCOUNT
    flows.forgot("alice", "198.51.100.7")
    assert len(mails(alice, "password_reset")) == 1  # the owner still gets its link
    assert flows.send_confirmation(bob.id)
    assert len(mails(alice, "confirm_email", to="bob@example.test")) == 2  # at sign-up, and now


def test_a_new_confirmation_link_kills_the_old_and_they_are_bounded(mailing: Site, clock: Clock) -> None:
    flows = mailing.core.account_mail
    user = flows.sign_up("alice", ALICE, PASSWORD, confirm=True)
    assert user is not None
    for _ in range(MAILS_PER_ACCOUNT - 1):
        assert flows.send_confirmation(user.id) is True
    with refused(429, "Too many mails were sent to this account this hour"):
        flows.send_confirmation(user.id)
    links = [token_in(m, "/account/confirm") for m in mails(mailing, "confirm_email")]
    assert len(links) == MAILS_PER_ACCOUNT
    with refused(410, DEAD):
        flows.confirm(links[0])
    clock.advance(hours=1)
    assert flows.send_confirmation(user.id) is True
    with refused(410, DEAD):
        flows.confirm(links[-1])
    assert flows.confirm(token_in(mails(mailing, "confirm_email")[-1], "/account/confirm")).email_confirmed


def test_a_confirmation_link_dies_after_48_hours(mailing: Site, clock: Clock) -> None:
    flows = mailing.core.account_mail
    flows.sign_up("alice", ALICE, PASSWORD, confirm=True)
    token = token_in(mails(mailing, "confirm_email")[0], "/account/confirm")
    clock.advance(hours=48)
    with refused(410, DEAD):
        flows.confirm(token)
    assert not mailing.core.accounts.users()[0].email_confirmed


def test_a_confirmation_link_for_an_address_no_longer_the_accounts_is_dead(mailing: Site) -> None:
    flows = mailing.core.account_mail
    user = flows.sign_up("alice", ALICE, PASSWORD, confirm=True)
    assert user is not None
    token = token_in(mails(mailing, "confirm_email")[0], "/account/confirm")
    mailing.core.accounts.set_email(user.id, "alice@elsewhere.test")
    with refused(410, DEAD):
        flows.confirm(token)
    assert not mailing.core.accounts.users()[0].email_confirmed


def test_no_confirmation_is_mailed_without_mail(quiet: Site, make_site: Callable[..., Site]) -> None:
    user = quiet.core.account_mail.sign_up("bob", "bob@example.test", PASSWORD, confirm=True)
    assert user is not None and not user.email_confirmed
    assert quiet.core.account_mail.send_confirmation(user.id) is False
    assert quiet.core.outbox.status().queued == 0
    assert make_site().core.account_mail.send_confirmation(10_000) is False


def test_an_operator_confirms_a_user(quiet: Site) -> None:
    flows = quiet.core.account_mail
    flows.sign_up("bob", "bob@example.test", PASSWORD, confirm=True)
    assert flows.set_confirmed("BOB").email_confirmed
    assert quiet.core.accounts.users()[1].email_confirmed
    [event] = quiet.events("account.confirm")
    assert (event.actor, event.account, event.detail["by"]) == (None, "bob", "operator")
    with refused(404, "No user named 'carol'"):
        flows.set_confirmed("carol")
    quiet.core.orgs.create("Contoso", "alice")
    with refused(404, "No user named 'Contoso'"):
        flows.set_confirmed("Contoso")


# Forgotten password -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("login", ["alice", "  ALICE ", "Alice@Example.test"])
def test_a_reset_link_is_mailed_by_name_or_address(alice: Site, login: str) -> None:
    alice.core.account_mail.forgot(login, ADDRESS)
    [mail] = mails(alice, "password_reset")
    assert mail.subject == "Reset your password for alice"
    token = token_in(mail, "/account/reset")
    target = alice.core.account_mail.reset_target(token)
    assert target is not None and target.name == "alice"


@pytest.mark.parametrize("login", ["nobody", "nobody@example.test", "", "   ", "a" * 255, "Contoso"])
def test_forgot_for_no_user_mails_nothing(alice: Site, login: str) -> None:
    alice.core.orgs.create("Contoso", "alice")
    alice.core.account_mail.forgot(login, ADDRESS)  # returns alike: the page says the same either way
    assert mails(alice, "password_reset") == []


def test_forgot_mails_nothing_without_mail(quiet: Site) -> None:
    quiet.core.account_mail.forgot("alice", ADDRESS)
    assert quiet.core.outbox.status().queued == 0


def test_reset_links_are_bounded_per_account_and_per_address(alice: Site, clock: Clock) -> None:
    flows = alice.core.account_mail
    for n in range(MAILS_PER_ACCOUNT + 1):
        flows.forgot("alice", f"198.51.100.{n}")
    assert len(mails(alice, "password_reset")) == MAILS_PER_ACCOUNT
    for n in range(MAILS_PER_ADDRESS + 1):
        alice.user(f"user{n}")
        flows.forgot(f"user{n}", "203.0.113.9")
    sent = [m for m in alice.mails() if m.kind == "password_reset" and m.recipient != ALICE]
    assert [m.recipient for m in sent] == [f"user{n}@example.test" for n in range(MAILS_PER_ADDRESS)]
    clock.advance(hours=1)
    flows.forgot("alice", "203.0.113.9")
    assert len(mails(alice, "password_reset")) == MAILS_PER_ACCOUNT + 1


def test_a_reset_sets_the_password_once_and_ends_every_session(alice: Site) -> None:
    flows = alice.core.account_mail
    user_id = alice.core.accounts.users()[0].id
    signed_in = [sessions(alice).start(user_id) for _ in range(2)]
    flows.forgot("alice", ADDRESS)
    token = token_in(mails(alice, "password_reset")[0], "/account/reset")
    with refused(400, "at least 10 characters"):
        flows.reset(token, "short")
    assert flows.reset_target(token) is not None  # a refused password does not use the link
    assert flows.reset(token, NEW_PASSWORD, ADDRESS).name == "alice"
    assert alice.core.accounts.authenticate("alice", NEW_PASSWORD) is not None
    assert alice.core.accounts.authenticate("alice", PASSWORD) is None
    assert [sessions(alice).user(t) for t in signed_in] == [None, None]
    [event] = alice.events("account.password_reset")
    assert (event.actor, event.address, event.detail["how"]) == ("alice", ADDRESS, "with a reset link")
    [told] = mails(alice, "password_changed")
    assert told.subject == "Your password was changed" and "changed with a reset link" in told.text_body
    assert all(NEW_PASSWORD not in m.text_body + m.html_body for m in alice.mails())
    assert flows.reset_target(token) is None
    with refused(410, DEAD):
        flows.reset(token, "yet another passphrase")


def test_a_reset_link_dies_after_an_hour_or_for_a_newer_one(alice: Site, clock: Clock) -> None:
    flows = alice.core.account_mail
    flows.forgot("alice", ADDRESS)
    flows.forgot("alice", ADDRESS)
    older, newer = (token_in(m, "/account/reset") for m in mails(alice, "password_reset"))
    with refused(410, DEAD):
        flows.reset(older, NEW_PASSWORD)
    clock.advance(hours=1)
    assert flows.reset_target(newer) is None
    with refused(410, DEAD):
        flows.reset(newer, NEW_PASSWORD)
    with refused(410, DEAD):
        flows.reset("not-a-token", NEW_PASSWORD)
    assert alice.core.accounts.authenticate("alice", PASSWORD) is not None


def test_a_disabled_user_s_new_password_does_not_let_it_in(alice: Site) -> None:
    flows = alice.core.account_mail
    flows.forgot("alice", ADDRESS)
    alice.core.accounts.disable_account("alice")
    with refused(410, DEAD):  # disabling ends the reset links mailed before
        flows.reset(token_in(mails(alice, "password_reset")[0], "/account/reset"), NEW_PASSWORD)
    flows.forgot("alice", ADDRESS)
    flows.reset(token_in(mails(alice, "password_reset")[-1], "/account/reset"), NEW_PASSWORD)
    with pytest.raises(Forbidden, match="The account alice is disabled"):
        alice.core.accounts.authenticate("alice", NEW_PASSWORD)


def test_the_site_admin_sets_a_password(alice: Site) -> None:
    flows = alice.core.account_mail
    token = sessions(alice).start(alice.core.accounts.users()[0].id)
    with refused(404, "No user named 'bob'"):
        flows.admin_reset("bob", NEW_PASSWORD)
    with refused(400, "must not be your username or email"):
        flows.admin_reset("alice", ALICE)
    flows.admin_reset("ALICE", NEW_PASSWORD)
    assert alice.core.accounts.authenticate("alice", NEW_PASSWORD) is not None
    assert sessions(alice).user(token) is None
    [event] = alice.events("account.password_reset")
    assert (event.actor, event.account, event.detail["how"]) == (None, "alice", "by the site administrator")
    [told] = mails(alice, "password_changed")
    assert "changed by the site administrator" in told.text_body and NEW_PASSWORD not in told.text_body


# Email change -----------------------------------------------------------------------------------------------


def test_a_new_address_counts_once_confirmed_and_the_old_one_is_told(alice: Site) -> None:
    flows = alice.core.account_mail
    user_id = alice.core.accounts.users()[0].id
    assert flows.request_email_change(user_id, "Alice@New.example.test") is False
    assert alice.core.accounts.users()[0].email == ALICE  # not yet
    [confirm] = mails(alice, "email_change_confirm", to="Alice@New.example.test")
    assert confirm.subject == "Confirm your new email address for alice"
    assert "valid for 24 hours" in confirm.text_body
    [notice] = mails(alice, "email_change_notice")
    assert notice.subject == "Your email address is being changed"
    assert f"from {ALICE} to Alice@New.example.test" in notice.text_body
    assert "/account/email/confirm/" not in notice.text_body + notice.html_body  # the old address can't
    token = token_in(confirm, "/account/email/confirm")
    changed = flows.confirm_email_change(token)
    assert (changed.email, changed.email_lower, changed.email_confirmed) == (
        "Alice@New.example.test",
        "alice@new.example.test",
        True,
    )
    assert [e.action for e in alice.events("account.email")] == ["account.email"]
    with refused(410, DEAD):
        flows.confirm_email_change(token)


def test_an_email_change_link_confirms_an_unconfirmed_account(mailing: Site) -> None:
    flows = mailing.core.account_mail
    user = flows.sign_up("bob", "bob@typo.example.test", PASSWORD, confirm=True)
    assert user is not None
    flows.request_email_change(user.id, "bob@example.test")
    [mail] = mails(mailing, "email_change_confirm", to="bob@example.test")
    changed = flows.confirm_email_change(token_in(mail, "/account/email/confirm"))
    assert (changed.email, changed.email_confirmed) == ("bob@example.test", True)  # the link proved it


def test_an_email_change_is_refused_for_a_bad_address_and_without_mail_a_taken_one(
    alice: Site, quiet: Site
) -> None:
    flows = alice.core.account_mail
    alice.user("bob")
    user_id = alice.core.accounts.users()[0].id
    with refused(400, "not a valid email address"):
        flows.request_email_change(user_id, "alice-at-example.test")
    assert alice.mails() == []
    quiet.user("bob")
    with refused(409, "That email is already taken"):  # no mail to send its owner instead
        quiet.core.account_mail.request_email_change(quiet.core.accounts.users()[0].id, "BOB@example.test")


def test_an_email_change_to_a_taken_address_is_answered_as_any_and_mails_its_owner(
    alice: Site, clock: Clock
) -> None:
    """Else any account holder (anyone may sign up) would learn which addresses have accounts: from the
    answer, from the old address's mail, or from a pending change's link dying or not."""
    flows = alice.core.account_mail
    alice.user("bob")
    user_id = next(u.id for u in alice.core.accounts.users() if u.name == "alice")
    assert flows.request_email_change(user_id, "mine@example.test") is False
    [link] = mails(alice, "email_change_confirm", to="mine@example.test")
    pending = token_in(link, "/account/email/confirm")
    assert flows.request_email_change(user_id, "BOB@example.test") is False  # as for a free address
    notices = mails(alice, "email_change_notice")  # the old address is told each time, as for any
    assert [m.subject for m in notices] == ["Your email address is being changed"] * 2
    assert mails(alice, "email_change_confirm", to="bob@example.test") == []  # no link to bob's address
    [told] = mails(alice, "email_address_in_use", to="bob@example.test")
    assert told.subject == "Someone tried to use your email address for another account"
    assert "nothing changed on yours (bob)" in " ".join(told.text_body.split())
    with refused(410, DEAD):  # the earlier link dies, as a change to a free address ends it
        flows.confirm_email_change(pending)
    assert next(u for u in alice.core.accounts.users() if u.name == "alice").email == ALICE
    for _ in range(MAILS_PER_ACCOUNT + 1):  # bob is mailed five times an hour at most
        flows.request_email_change(user_id, "bob@example.test")
    assert len(mails(alice, "email_address_in_use", to="bob@example.test")) == MAILS_PER_ACCOUNT


def test_an_address_taken_before_its_link_is_opened_is_refused(alice: Site) -> None:
    flows = alice.core.account_mail
    flows.request_email_change(alice.core.accounts.users()[0].id, "new@example.test")
    token = token_in(mails(alice, "email_change_confirm", to="new@example.test")[0], "/account/email/confirm")
    alice.core.accounts.create_user("bob", "NEW@example.test", None)
    with refused(409, "That email is already taken by another account"):
        flows.confirm_email_change(token)
    assert alice.core.accounts.users()[0].email == ALICE


def test_an_email_change_link_dies_after_24_hours(alice: Site, clock: Clock) -> None:
    flows = alice.core.account_mail
    flows.request_email_change(alice.core.accounts.users()[0].id, "new@example.test")
    token = token_in(mails(alice, "email_change_confirm", to="new@example.test")[0], "/account/email/confirm")
    clock.advance(hours=24)
    with refused(410, DEAD):
        flows.confirm_email_change(token)
    assert alice.core.accounts.users()[0].email == ALICE


def test_without_mail_the_address_changes_at_once(quiet: Site) -> None:
    user_id = quiet.core.accounts.users()[0].id
    assert quiet.core.account_mail.request_email_change(user_id, "alice@new.example.test") is True
    assert quiet.core.accounts.users()[0].email == "alice@new.example.test"
    [event] = quiet.events("account.email")
    assert (event.actor, event.account) == ("alice", "alice")


# Sign-ins ---------------------------------------------------------------------------------------------------


def test_a_sign_in_from_a_new_browser_is_mailed(alice: Site) -> None:
    flows = alice.core.account_mail
    user = alice.core.accounts.users()[0]
    flows.signed_in(user, "first-device", ADDRESS, "Firefox")
    assert mails(alice, "new_signin") == []  # the account's very first browser
    flows.signed_in(user, "first-device", ADDRESS, "Firefox")
    assert mails(alice, "new_signin") == []
    flows.signed_in(user, "second-device", "198.51.100.7", "Mozilla/5.0\n  (X11)\tChrome " + "x" * 300)
    flows.signed_in(user, "third-device", "198.51.100.8", "  ")
    first, second = mails(alice, "new_signin")
    assert first.subject == "New sign-in to alice"
    agent = "Mozilla/5.0 (X11) Chrome " + "x" * 175  # on one line, 200 characters at most
    assert f"address 198.51.100.7, {agent}, at 2026-03-01 12:00 UTC" in first.text_body
    assert "address 198.51.100.8, an unknown browser" in second.text_body
    assert "second-device" not in first.text_body + first.html_body  # the device cookie is a secret


def test_no_new_browser_mail_with_two_factor_sign_in(alice: Site, clock: Clock) -> None:
    flows = alice.core.account_mail
    user = alice.core.accounts.users()[0]
    totp = pyotp.TOTP(alice.core.twofactor.begin(user.id).secret)
    alice.core.twofactor.confirm(user.id, totp.at(clock.now.replace(tzinfo=UTC).timestamp()))
    user = alice.core.accounts.users()[0]
    flows.signed_in(user, "first-device", ADDRESS, "Firefox")
    flows.signed_in(user, "second-device", ADDRESS, "Firefox")
    assert mails(alice, "new_signin") == []


def test_the_second_step_of_a_sign_in_is_used_once_within_ten_minutes(alice: Site, clock: Clock) -> None:
    flows = alice.core.account_mail
    user_id = alice.core.accounts.users()[0].id
    pending = flows.start_second_step(user_id)
    clock.advance(minutes=9)
    found = flows.second_step(pending)
    assert found is not None and found.name == "alice"
    flows.finish_second_step(pending)
    assert flows.second_step(pending) is None
    with refused(410, DEAD):
        flows.finish_second_step(pending)
    late = flows.start_second_step(user_id)
    clock.advance(minutes=10)
    assert flows.second_step(late) is None
    with refused(410, DEAD):
        flows.finish_second_step(late)
    assert flows.second_step("forged") is None


# A new password or address ends the reset links and half-done sign-ins ----------------------------------


def live_tokens(site: Site, purpose: str) -> int:
    with site.core.db.reading() as s:
        rows = s.scalars(select(AccountToken).where(AccountToken.purpose == purpose)).all()
        return sum(1 for row in rows if row.used_at is None)


@pytest.mark.parametrize("change", ["settings", "admin", "email", "email-mailed", "disable"])
def test_a_reset_link_and_a_pending_sign_in_die_with_a_new_password_or_address(
    alice: Site, change: str
) -> None:
    flows, accounts = alice.core.account_mail, alice.core.accounts
    user_id = accounts.users()[0].id
    flows.forgot("alice", ADDRESS)
    link = token_in(mails(alice, "password_reset")[-1], "/account/reset")
    step = flows.start_second_step(user_id)
    if change == "settings":
        accounts.set_password(user_id, NEW_PASSWORD)
    elif change == "admin":
        flows.admin_reset("alice", NEW_PASSWORD)
    elif change == "email":
        accounts.set_email(user_id, "alice@new.example.test")
    elif change == "email-mailed":
        flows.request_email_change(user_id, "alice@new.example.test")
        assert flows.reset_target(link) is not None  # asked, not done: the link still holds
        flows.confirm_email_change(token_in(mails(alice, "email_change_confirm", "alice@new.example.test")[0],
                                            "/account/email/confirm"))  # fmt: skip
    else:
        accounts.disable_account("alice")
    assert flows.reset_target(link) is None
    with refused(410, DEAD):
        flows.reset(link, "yet another passphrase")
    assert flows.second_step(step) is None
    with refused(410, DEAD):
        flows.finish_second_step(step)
    assert live_tokens(alice, "reset") == live_tokens(alice, "signin") == 0


def test_a_new_password_ends_a_pending_email_change(alice: Site) -> None:
    flows, accounts = alice.core.account_mail, alice.core.accounts
    user_id = accounts.users()[0].id
    flows.request_email_change(user_id, "alice@new.example.test")
    accounts.set_password(user_id, NEW_PASSWORD)
    link = token_in(
        mails(alice, "email_change_confirm", "alice@new.example.test")[0], "/account/email/confirm"
    )
    with refused(410, DEAD):
        flows.confirm_email_change(link)
    assert accounts.users()[0].email == ALICE
