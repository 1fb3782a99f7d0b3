"""The account flows that go through a mailbox, over HTTP with the whole application, and a real SMTP
server on the loopback: each mail read from that server (recipients, subject, body), its link followed
in a second request; and with the SMTP server down, nothing lost."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from nugat.cli import main
from nugat.db.models import AccountToken, OutboxMail, WebSession
from support.server import postgres_database
from support.smtp import MailBox
from web.helpers import PASSWORD, MakeSite, Site, csrf_of, nupkg, page_text, secret_of

NEW_PASSWORD = "a brand new passphrase 77"


@pytest.fixture
def mailbox() -> Iterator[MailBox]:
    box = MailBox().start()
    yield box
    box.stop()


def mail_settings(box: MailBox) -> dict[str, object]:
    return {
        "smtp_url": box.url,
        "mail_from": "registry@example.test",
        "public_url": "http://127.0.0.1",
        "mail_poll_seconds": 0.05,
        "mail_retry_seconds": 0.2,
    }


@pytest.fixture
def msite(make_site: MakeSite, mailbox: MailBox, request: pytest.FixtureRequest) -> Iterator[Site]:
    """The site with mail; on PostgreSQL for the tests that ask (``indirect`` parameter "postgres")."""
    if getattr(request, "param", "sqlite") == "postgres":
        with postgres_database() as url:
            yield make_site(database_url=url, **mail_settings(mailbox))
        return
    yield make_site(**mail_settings(mailbox))


BOTH = pytest.mark.parametrize("msite", ["sqlite", "postgres"], indirect=True)


def sign_up(site: Site, name: str, email: str) -> str:
    form = {"username": name, "email": email, "password": PASSWORD, "confirm": PASSWORD}
    response = site.submit("/signup", "/signup", form)
    assert response.status_code == 200, response.text
    return page_text(response.text)


def no_secret_in(mail_text: str, *secrets: str) -> None:
    assert "nugat_" not in mail_text
    for secret in (PASSWORD, NEW_PASSWORD, *secrets):
        assert secret not in mail_text


@BOTH
def test_sign_up_confirms_the_address_before_keys(msite: Site, mailbox: MailBox) -> None:
    text = sign_up(msite, "carol", "carol@example.test")
    assert "Check your mail" in text and "carol@example.test" in text
    assert "nugat_session" not in msite.client.cookies  # not signed in by the answer (see the next test)
    mail = mailbox.to("carol@example.test", "Confirm your email address for carol")
    assert mail.recipients == ["carol@example.test"] and mail.mail_from == "registry@example.test"
    no_secret_in(mail.text + mail.html)
    link = mail.link("/account/confirm/")
    assert f'href="http://127.0.0.1{link}"' in mail.html
    with msite.core.db.reading() as s:  # only the token's digest is stored
        hashes = [t.token_hash for t in s.scalars(select(AccountToken))]
    assert link.rsplit("/", 1)[1].encode() not in b"".join(hashes)

    # Unconfirmed: signs in, but no keys (nor pushes, which need one).
    msite.sign_in("carol")
    refused = msite.submit(
        "/account/apikeys/new",
        "/account/apikeys",
        {"name": "ci", "owner": "carol", "push": "on", "push_kind": "push", "glob": "*", "expires": "365"},
    )
    assert refused.status_code == 403 and "Confirm your email address" in page_text(refused.text)
    assert "not confirmed" in page_text(msite.get("/account").text)
    assert "Confirm your email address (carol@example.test)" in page_text(msite.get("/account/apikeys").text)

    confirmed = msite.get(link)
    assert confirmed.status_code == 200 and "is confirmed" in page_text(confirmed.text)
    assert msite.get(link).status_code == 410  # single use
    _, secret = msite.create_key(owner="carol")
    assert secret.startswith("nugat_")
    created = mailbox.to("carol@example.test", '"ci" created')
    no_secret_in(created.text + created.html, secret)
    assert msite.get(created.link("/account/apikeys")).status_code == 200


def test_resend_of_the_confirmation_link(msite: Site, mailbox: MailBox) -> None:
    sign_up(msite, "dave", "dave@example.test")
    first = mailbox.to("dave@example.test", "Confirm")
    msite.sign_in("dave")
    response = msite.submit("/account", "/account/confirm", {}, follow=True)
    assert "We sent a new confirmation link" in page_text(response.text)
    second = mailbox.wait_for(lambda m: "dave@example.test" in m.recipients and m is not first)
    assert msite.get(first.link("/account/confirm/")).status_code == 410  # replaced by the new one
    assert msite.get(second.link("/account/confirm/")).status_code == 200


@BOTH
def test_sign_up_with_an_address_in_use_answers_the_same_and_mails_its_owner(
    msite: Site, mailbox: MailBox
) -> None:
    fresh = sign_up(msite, "erin", "erin@example.test")
    msite.client.cookies.clear()
    taken = sign_up(msite, "mallory", "ALICE@example.test")
    assert taken.replace("mallory", "NAME").replace("ALICE@example.test", "MAIL") == fresh.replace(
        "erin", "NAME"
    ).replace("erin@example.test", "MAIL").replace("NAME@example.test", "MAIL")
    told = mailbox.to("alice@example.test", "Someone tried to sign up with your email address")
    assert "named alice" in told.text
    assert msite.get(told.link("/account/forgot")).status_code == 200
    assert "mallory" not in {u.name for u in msite.core.accounts.users()}
    assert mailbox.count(lambda m: "ALICE@example.test" in m.recipients) == 0


def test_a_taken_username_is_said(msite: Site) -> None:
    form = {"username": "Alice", "email": "new@example.test", "password": PASSWORD, "confirm": PASSWORD}
    response = msite.submit("/signup", "/signup", form)
    assert response.status_code == 400 and "That username is already taken" in response.text


@BOTH
def test_forgotten_password_resets_once_and_ends_every_session(
    msite: Site, mailbox: MailBox, make_site: MakeSite
) -> None:
    other = msite.browser("alice")  # signed in elsewhere
    unknown = msite.submit("/account/forgot", "/account/forgot", {"login": "nobody@example.test"})
    known = msite.submit("/account/forgot", "/account/forgot", {"login": "alice"})
    assert known.status_code == unknown.status_code == 200
    assert page_text(known.text).replace("alice", "X") == page_text(unknown.text).replace(
        "nobody@example.test", "X"
    )
    mail = mailbox.to("alice@example.test", "Reset your password for alice")
    no_secret_in(mail.text + mail.html)
    assert "one hour" in mail.text
    link = mail.link("/account/reset/")
    form = msite.get(link)
    assert form.status_code == 200 and "alice" in form.text
    assert form.headers["cache-control"] == "no-store"
    weak = msite.client.post(link, data={"csrf": csrf_of(form.text), "password": "short", "confirm": "short"})
    assert weak.status_code == 400
    done = msite.client.post(
        link,
        data={"csrf": csrf_of(form.text), "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/signin?notice=")
    assert other.get("/account", follow_redirects=False).status_code == 303  # signed out everywhere
    with msite.core.db.reading() as s:
        assert s.scalar(select(WebSession.id)) is None
    assert msite.get(link).status_code == 410  # once
    changed = mailbox.to("alice@example.test", "Your password was changed")
    assert "with a reset link" in changed.text
    old = msite.submit("/signin", "/signin", {"login": "alice", "password": PASSWORD})
    assert old.status_code == 400
    msite.sign_in("alice", NEW_PASSWORD)


def test_a_reset_link_dies_after_an_hour(msite: Site, mailbox: MailBox) -> None:
    msite.submit("/account/forgot", "/account/forgot", {"login": "alice@example.test"})
    link = mailbox.to("alice@example.test", "Reset").link("/account/reset/")
    with msite.core.db.session() as s:
        row = s.scalars(select(AccountToken).where(AccountToken.purpose == "reset")).one()
        assert (row.expires_at - row.created_at).total_seconds() == 3600
        row.expires_at = row.created_at  # an hour later
    assert msite.get(link).status_code == 410


def test_forgot_without_mail_says_to_ask_the_admin(site: Site) -> None:
    page = site.get("/account/forgot")
    assert "sends no mail" in page_text(page.text) and "nugat user reset-password" in page.text
    html = site.get("/signin").text
    answer = site.client.post("/account/forgot", data={"csrf": csrf_of(html), "login": "alice"})
    assert answer.status_code == 503 and "sends no mail" in answer.text


@BOTH
def test_email_change_confirms_the_new_address_and_tells_the_old(msite: Site, mailbox: MailBox) -> None:
    msite.sign_in("alice")
    other = msite.browser("alice")
    response = msite.submit(
        "/account", "/account/email", {"email": "alice@new.example.test", "current": PASSWORD}, follow=True
    )
    assert "your address changes once you open it" in page_text(response.text)
    assert msite.core.accounts.users()[0].email == "alice@example.test"  # not yet
    notice = mailbox.to("alice@example.test", "Your email address is being changed")
    assert "alice@new.example.test" in notice.text
    confirm = mailbox.to("alice@new.example.test", "Confirm your new email address for alice")
    no_secret_in(confirm.text + confirm.html)
    done = msite.get(confirm.link("/account/email/confirm/"))
    assert done.status_code == 200 and "alice@new.example.test" in page_text(done.text)
    assert msite.core.accounts.users()[0].email == "alice@new.example.test"
    assert other.get("/account", follow_redirects=False).status_code == 303  # signed out elsewhere
    assert msite.get(confirm.link("/account/email/confirm/")).status_code == 410


def test_key_mails_created_regenerated_deleted(msite: Site, mailbox: MailBox) -> None:
    msite.sign_in("alice")
    _, secret = msite.create_key(name="deploy")
    key_id = secret.split("_")[1]
    created = mailbox.to("alice@example.test", 'API key "deploy" created')
    assert key_id in created.text
    regenerated = msite.submit(
        f"/account/apikeys/{key_id}/regenerate", f"/account/apikeys/{key_id}/regenerate", {}
    )
    new_secret = secret_of(regenerated.text)
    mail = mailbox.to("alice@example.test", 'API key "deploy" regenerated')
    no_secret_in(mail.text + mail.html, secret, new_secret)
    msite.submit(f"/account/apikeys/{key_id}/delete", f"/account/apikeys/{key_id}/delete", {})
    deleted = mailbox.to("alice@example.test", 'API key "deploy" deleted')
    assert msite.get(deleted.link("/account/apikeys")).status_code == 200


def test_nothing_is_lost_while_the_smtp_server_is_down(make_site: MakeSite) -> None:
    box = MailBox()  # its port refuses connections until it starts
    site = make_site(**mail_settings(box))
    sign_up(site, "frank", "frank@example.test")  # the page answers at once: no request waits on SMTP
    deadline_tries = 0
    while deadline_tries < 500:  # the sender has tried (and failed) at least once
        with site.core.db.reading() as s:
            row = s.scalars(select(OutboxMail)).one()
        if row.attempts >= 1:
            break
        deadline_tries += 1
        time.sleep(0.02)
    assert row.attempts >= 1 and row.sent_at is None and row.last_error
    box.start()
    try:
        mail = box.to("frank@example.test", "Confirm", timeout=60)
        assert site.get(mail.link("/account/confirm/")).status_code == 200
        with site.core.db.reading() as s:
            assert s.scalars(select(OutboxMail)).one().sent_at is not None
        assert box.count(lambda m: True) == 1
    finally:
        box.stop()


def test_new_device_sign_in_is_mailed_without_two_factor(msite: Site, mailbox: MailBox) -> None:
    msite.sign_in("alice")  # the account's first browser: no mail
    msite.client.post("/signout", data={"csrf": csrf_of(msite.get("/account").text)})
    msite.sign_in("alice")  # the same browser again: no mail
    other = msite.browser("alice")  # another browser
    mail = mailbox.to("alice@example.test", "New sign-in to alice")
    assert "address testclient" in mail.text and "a browser it had not used before" in mail.text
    assert mailbox.count(lambda m: "New sign-in" in m.subject) == 1
    assert other.get("/account").status_code == 200


def test_cli_confirm_and_reset_password(
    site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    site.core.account_mail.sign_up("gina", "gina@example.test", PASSWORD, confirm=True)
    gina = next(u for u in site.core.accounts.users() if u.name == "gina")
    assert not gina.email_confirmed
    assert main(["user", "confirm", "gina", "--data-dir", str(site.settings.data_dir)]) == 0
    assert next(u for u in site.core.accounts.users() if u.name == "gina").email_confirmed
    other = site.browser("alice")
    monkeypatch.setattr("sys.stdin", io.StringIO(NEW_PASSWORD + "\n"))
    data_dir = str(site.settings.data_dir)
    code = main(["user", "reset-password", "alice", "--password-stdin", "--data-dir", data_dir])
    assert code == 0 and "signed out" in capsys.readouterr().out
    assert other.get("/account", follow_redirects=False).status_code == 303
    site.sign_in("alice", NEW_PASSWORD)


def test_ownership_invitation_and_membership_mails(msite: Site, mailbox: MailBox) -> None:
    msite.sign_in("alice")
    _, secret = msite.create_key(name="alice ci")
    assert msite.push(secret, nupkg("Shared.Lib", "1.0.0")) == 201
    bob = msite.browser("bob")
    msite.submit("/packages/Shared.Lib/owners", "/packages/Shared.Lib/owners", {"owner": "bob"})
    invited = mailbox.to("bob@example.test", "alice invites you to co-own Shared.Lib")
    link = invited.link("/account/invitations")
    assert "alice invites you to co-own Shared.Lib" in page_text(bob.get(link).text)  # bob's browser

    msite.core.orgs.create("Contoso", "alice")
    page = msite.get("/orgs/Contoso")
    msite.client.post(
        "/orgs/Contoso/members", data={"csrf": csrf_of(page.text), "username": "bob", "role": "collaborator"}
    )
    added = mailbox.to("bob@example.test", "Your membership of Contoso: added")
    assert "alice added you to the organization Contoso" in added.text and "collaborator" in added.text
    assert bob.get(added.link("/account/organizations")).status_code == 200
    msite.client.post("/orgs/Contoso/members/bob/role", data={"csrf": csrf_of(page.text), "role": "admin"})
    assert "your role: admin" in mailbox.to("bob@example.test", "role changed").text
    msite.client.post("/orgs/Contoso/members/bob/remove", data={"csrf": csrf_of(page.text)})
    removed = mailbox.to("bob@example.test", "Your membership of Contoso: removed")
    assert "no longer work" in removed.text
    assert mailbox.count(lambda m: "alice@example.test" in m.recipients and "membership" in m.subject) == 0


def test_an_org_admin_revokes_a_members_key(msite: Site, mailbox: MailBox) -> None:
    msite.core.orgs.create("Contoso", "alice")
    bob = msite.browser("bob")
    msite.core.orgs.add_member("Contoso", "bob", "collaborator")
    _, secret = bob.create_key(name="bob ci", owner="Contoso")
    key_id = secret.split("_")[1]
    refused = bob.submit("/orgs/Contoso", f"/orgs/Contoso/keys/{key_id}/revoke", {})
    assert refused.status_code == 403  # a collaborator cannot
    msite.sign_in("alice")
    done = msite.submit("/orgs/Contoso", f"/orgs/Contoso/keys/{key_id}/revoke", {}, follow=True)
    assert "API key 'bob ci' of Contoso revoked." in page_text(done.text)
    assert [k.state for k in msite.core.accounts.list_keys("bob")] == ["revoked"]
    told = mailbox.to("bob@example.test", 'API key "bob ci" revoked')
    assert "revoked by alice, an administrator of Contoso" in told.text


def test_mail_status_on_the_command_line(
    msite: Site, mailbox: MailBox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_up(msite, "hank", "hank@example.test")
    mailbox.to("hank@example.test", "Confirm")
    for name, value in mail_settings(mailbox).items():
        monkeypatch.setenv(f"NUGAT_{name.upper()}", str(value))
    data_dir = str(msite.settings.data_dir)
    assert main(["mail", "status", "--data-dir", data_dir]) == 0
    out = capsys.readouterr().out
    assert "queued 0 (retrying 0); sent 1; refused for good 0" in out
    assert "sent      confirm_email" in out and "to hank@example.test" in out
    assert main(["mail", "status", "--json", "--data-dir", data_dir]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["enabled"] and status["sent"] == 1 and status["recent"][0]["state"] == "sent"
    for limit in ("-1", "0", "x"):  # refused by name, not a listing cut from the other end
        with pytest.raises(SystemExit) as exited:
            main(["mail", "status", "--limit", limit, "--data-dir", data_dir])
        assert exited.value.code == 2 and "--limit" in capsys.readouterr().err
