"""With mail, the account pages tell nobody which names and addresses have accounts: an email change to
another account's address is answered as one to a free address (anyone may sign up, so a refusal there
would tell any account holder), and a forgotten-password request is answered after the same time whether
or not its login is an account's (a known one costs the database a few milliseconds more)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from nugat.services.account_mail import FORGOT_ANSWER_SECONDS
from support.smtp import MailBox
from web.helpers import PASSWORD, MakeSite, Site, page_text


@pytest.fixture
def msite(make_site: MakeSite) -> Iterator[Site]:
    box = MailBox().start()
    try:
        yield make_site(
            smtp_url=box.url,
            mail_from="registry@example.test",
            public_url="http://127.0.0.1",
            mail_poll_seconds=0.05,
        )
    finally:
        box.stop()


def notice_after_email_change(site: Site, email: str) -> str:
    answer = site.submit("/account", "/account/email", {"current": PASSWORD, "email": email})
    assert answer.status_code == 303, page_text(answer.text)
    return page_text(site.get(answer.headers["location"]).text)


def test_an_email_change_to_a_taken_address_is_answered_as_one_to_a_free_address(msite: Site) -> None:
    msite.browser("bob")
    msite.sign_in("alice")
    free = notice_after_email_change(msite, "free@example.test")
    taken = notice_after_email_change(msite, "bob@example.test")
    assert "We sent a link to free@example.test" in free
    assert taken == free.replace("free@example.test", "bob@example.test")
    assert "already taken" not in taken


def test_a_forgotten_password_is_answered_after_the_same_time_for_any_login(msite: Site) -> None:
    def timed(login: str) -> tuple[float, str]:
        started = time.monotonic()
        answer = msite.submit("/account/forgot", "/account/forgot", {"login": login})
        took = time.monotonic() - started
        assert answer.status_code == 200
        return took, page_text(answer.text).replace(login, "X")

    for login in ("alice", "nobody", "alice@example.test", "nobody@example.test"):
        took, text = timed(login)
        # Not sooner (what the database did would show), and not much later on an idle test machine.
        assert FORGOT_ANSWER_SECONDS <= took < FORGOT_ANSWER_SECONDS + 5, (login, took)
        assert text == timed("someone-else")[1]
