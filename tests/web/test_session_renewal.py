"""A browser's session gets a new token whenever what signs in changes (the password, the email address,
two-factor sign-in): every session of the account ends, this browser's old token too, so a stolen copy of
this very cookie stops working with the others. And a sign-in ends the session it replaces."""

from __future__ import annotations

import pyotp
from starlette.testclient import TestClient

from web.helpers import PASSWORD, Site, csrf_of, page_text
from web.test_two_factor import enrol

NEW_PASSWORD = "a brand new passphrase 77"


def stolen_copy(site: Site) -> TestClient:
    """Another client holding a copy of ``site``'s session cookie (as an attacker who stole it)."""
    thief = TestClient(site.client.app, base_url="http://127.0.0.1")
    thief.cookies.set("nugat_session", site.client.cookies["nugat_session"])
    assert thief.get("/account", follow_redirects=False).status_code == 200
    return thief


def signed_out(client: TestClient) -> bool:
    answer = client.get("/account", follow_redirects=False)
    return answer.status_code == 303 and answer.headers["location"].startswith("/signin")


def renewed(site: Site, before: str, answer_cookie: str | None) -> None:
    """This browser got a new session cookie, which signs it in."""
    assert answer_cookie is not None and answer_cookie != before
    assert site.client.cookies["nugat_session"] == answer_cookie
    assert site.get("/account", follow_redirects=False).status_code == 200


def test_a_password_change_ends_a_stolen_copy_of_this_browsers_session(alice: Site) -> None:
    elsewhere, thief = alice.browser("alice"), stolen_copy(alice)
    before = alice.client.cookies["nugat_session"]
    form = {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    answer = alice.submit("/account", "/account/password", form)
    assert answer.status_code == 303
    renewed(alice, before, answer.cookies.get("nugat_session"))
    assert signed_out(thief) and signed_out(elsewhere.client)
    # The notice was signed for the new session: it shows.
    assert "Your password was changed" in page_text(alice.get(answer.headers["location"]).text)


def test_an_email_change_ends_a_stolen_copy_of_this_browsers_session(alice: Site) -> None:
    thief, before = stolen_copy(alice), alice.client.cookies["nugat_session"]
    answer = alice.submit("/account", "/account/email", {"current": PASSWORD, "email": "alice@new.test"})
    assert answer.status_code == 303
    renewed(alice, before, answer.cookies.get("nugat_session"))
    assert signed_out(thief)
    assert "Your email address is now alice@new.test" in page_text(alice.get(answer.headers["location"]).text)


def test_turning_two_factor_on_or_off_signs_out_every_other_session(alice: Site) -> None:
    elsewhere, thief = alice.browser("alice"), stolen_copy(alice)
    before = alice.client.cookies["nugat_session"]
    page = alice.get("/account/two-factor")
    secret = page.text.split('<code id="totp-secret">')[1].split("<")[0]
    totp = pyotp.TOTP(secret)
    done = alice.client.post("/account/two-factor", data={"csrf": csrf_of(page.text), "code": totp.now()})
    assert done.status_code == 200 and "recovery" in page_text(done.text).lower()
    renewed(alice, before, done.cookies.get("nugat_session"))
    # Sessions begun with the password alone, and the copy of this one, end.
    assert signed_out(thief) and signed_out(elsewhere.client)

    thief, before = stolen_copy(alice), alice.client.cookies["nugat_session"]
    codes = done.text.split("<li><code>")[1].split("<")[0]  # a recovery code, for turning it off
    off = alice.submit("/account/two-factor", "/account/two-factor/disable", {"code": codes})
    assert off.status_code == 303
    renewed(alice, before, off.cookies.get("nugat_session"))
    assert signed_out(thief)
    assert "Two-factor sign-in is off" in page_text(alice.get(off.headers["location"]).text)


def test_enrol_helper_still_works_after_the_renewal(alice: Site) -> None:
    enrol(alice)  # the recovery codes page is answered with the new session
    assert alice.get("/account", follow_redirects=False).status_code == 200


def test_signing_in_again_ends_the_session_it_replaces(alice: Site) -> None:
    thief = stolen_copy(alice)
    alice.browser("bob")  # bob exists
    alice.sign_in("bob")  # in the same browser, over alice's session
    assert signed_out(thief)  # alice's session ended; it is not left alive for its week
    assert "bob" in page_text(alice.get("/account").text)


def test_sign_out_everywhere_else(alice: Site) -> None:
    elsewhere, thief = alice.browser("alice"), stolen_copy(alice)
    before = alice.client.cookies["nugat_session"]
    assert "You are signed in on 2 browsers, this one included." in page_text(alice.get("/account").text)
    forged = alice.client.post("/account/sessions", data={"csrf": "not-the-token"}, follow_redirects=False)
    assert forged.status_code == 403 and not signed_out(elsewhere.client)  # a form of this site only
    answer = alice.submit("/account", "/account/sessions", {})
    assert answer.status_code == 303
    renewed(alice, before, answer.cookies.get("nugat_session"))
    assert signed_out(thief) and signed_out(elsewhere.client)
    page = page_text(alice.get(answer.headers["location"]).text)
    assert "You were signed out everywhere else." in page
    assert "You are signed in on this browser only." in page
