"""Two-factor sign-in over HTTP: enrolment from the page's secret (and its QR code), the code after the
password, recovery codes once each, wrong codes throttled, turning it off only with a code; and the
password asked again before a key is made or regenerated more than 15 minutes after signing in."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import update

from nugat.clock import utcnow
from nugat.db.models import WebSession
from web.helpers import PASSWORD, MakeSite, Site, csrf_of, field_errors, page_text


def enrol(site: Site) -> tuple[pyotp.TOTP, list[str]]:
    page = site.get("/account/two-factor")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page.text)
    assert secret, page.text
    assert "<svg" in page.text  # the QR code, inline (no network, no script)
    totp = pyotp.TOTP(secret.group(1))
    wrong = site.client.post("/account/two-factor", data={"csrf": csrf_of(page.text), "code": "000000"})
    assert wrong.status_code == 400 and "not right" in page_text(wrong.text)
    assert secret.group(1) in wrong.text  # the same secret: the app need not scan again
    done = site.client.post("/account/two-factor", data={"csrf": csrf_of(page.text), "code": totp.now()})
    assert done.status_code == 200, page_text(done.text)
    codes = re.findall(r"<li><code>([a-z2-7]{5}-[a-z2-7]{5})</code></li>", done.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    return totp, codes


def password_step(site: Site, password: str = PASSWORD) -> str:
    response = site.submit("/signin", "/signin", {"login": "alice", "password": password})
    assert response.status_code == 200 and "Two-factor sign-in" in response.text
    assert "nugat_session" not in response.headers.get("set-cookie", "")
    return csrf_of(response.text)


def code_step(site: Site, csrf: str, code: str) -> int:
    return site.client.post(
        "/signin/code", data={"csrf": csrf, "code": code, "next": "/"}, follow_redirects=False
    ).status_code


def sign_out(site: Site) -> None:
    site.client.post("/signout", data={"csrf": csrf_of(site.get("/account").text)})
    site.client.cookies.clear()


def last_step_back(site: Site) -> None:
    """Let the same TOTP step count again (as if the next 30 s had come)."""
    from nugat.db.models import Account

    with site.core.db.session() as s:
        s.execute(update(Account).values(totp_last_step=None))


def test_enrol_sign_in_with_a_code_and_with_recovery_codes(alice: Site) -> None:
    totp, codes = enrol(alice)
    sign_out(alice)
    csrf = password_step(alice)
    assert alice.get("/account", follow_redirects=False).status_code == 303  # not signed in yet
    assert code_step(alice, csrf, "123456") == 400
    last_step_back(alice)
    used = totp.now()
    assert code_step(alice, csrf, used) == 303
    assert alice.get("/account").status_code == 200
    sign_out(alice)

    csrf = password_step(alice)
    # the same code again: refused (replay; the code used, not totp.now(), which a new 30 s step changes)
    assert code_step(alice, csrf, used) == 400
    assert code_step(alice, csrf, codes[0].upper()) == 303  # a recovery code, in any case
    page = alice.get("/account?recovery_left=9")
    assert "9 are left" in page_text(page.text)
    sign_out(alice)
    csrf = password_step(alice)
    assert code_step(alice, csrf, codes[0]) == 400  # once only
    assert code_step(alice, csrf, codes[1]) == 303


def test_the_code_step_needs_the_password_step_first(alice: Site) -> None:
    totp, _ = enrol(alice)
    sign_out(alice)
    html = alice.get("/signin").text
    response = alice.client.post("/signin/code", data={"csrf": csrf_of(html), "code": totp.now()})
    assert response.status_code == 400 and "sign in again" in page_text(response.text)
    assert alice.get("/account", follow_redirects=False).status_code == 303


def test_wrong_codes_are_throttled(alice: Site) -> None:
    totp, _ = enrol(alice)
    sign_out(alice)
    csrf = password_step(alice)
    statuses = [code_step(alice, csrf, f"{n:06d}") for n in range(11)]
    assert statuses[:10] == [400] * 10 and statuses[10] == 429
    last_step_back(alice)
    assert code_step(alice, csrf, totp.now()) == 429  # even the right code, for now


def test_turning_off_needs_a_code(alice: Site) -> None:
    totp, _ = enrol(alice)
    page = alice.get("/account/two-factor")
    assert "Recovery codes left: 10 of 10" in page_text(page.text)
    refused = alice.client.post("/account/two-factor/disable", data={"csrf": csrf_of(page.text), "code": ""})
    assert refused.status_code == 400
    last_step_back(alice)
    off = alice.client.post(
        "/account/two-factor/disable",
        data={"csrf": csrf_of(page.text), "code": totp.now()},
        follow_redirects=False,
    )
    assert off.status_code == 303
    sign_out(alice)
    alice.sign_in("alice")  # the password alone again


def test_new_recovery_codes_replace_the_old(alice: Site) -> None:
    totp, codes = enrol(alice)
    page = alice.get("/account/two-factor")
    last_step_back(alice)
    fresh = alice.client.post(
        "/account/two-factor/recovery-codes", data={"csrf": csrf_of(page.text), "code": totp.now()}
    )
    new = re.findall(r"<li><code>([a-z2-7]{5}-[a-z2-7]{5})</code></li>", fresh.text)
    assert len(new) == 10 and not set(new) & set(codes)
    sign_out(alice)
    csrf = password_step(alice)
    assert code_step(alice, csrf, codes[0]) == 400
    assert code_step(alice, csrf, new[0]) == 303


def test_the_secret_is_stored_encrypted(alice: Site) -> None:
    page = alice.get("/account/two-factor")
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page.text)
    assert secret
    with alice.core.db.reading() as s:
        from nugat.db.models import Account

        stored = s.query(Account.totp_secret).filter(Account.name == "alice").scalar()
    assert stored and secret.group(1) not in stored


def _age_session(site: Site, minutes: int) -> None:
    with site.core.db.session() as s:
        s.execute(update(WebSession).values(authenticated_at=utcnow() - timedelta(minutes=minutes)))


def test_keys_need_a_recent_sign_in_or_the_password_again(alice: Site) -> None:
    _, secret = alice.create_key(name="first")  # just signed in
    _age_session(alice, 16)
    page = alice.get("/account/apikeys/new")
    assert "Confirm your password" in page_text(page.text)
    key_id = secret.split("_")[1]
    regen = alice.get(f"/account/apikeys/{key_id}/regenerate")
    assert "Confirm your password" in page_text(regen.text)
    # A form filled in before the 15 minutes ran out is refused too, and says why.
    stale = alice.client.post(
        "/account/apikeys",
        data={
            "csrf": csrf_of(page.text),
            "name": "x",
            "owner": "alice",
            "push": "on",
            "glob": "*",
            "expires": "365",
        },
    )
    assert stale.status_code == 403 and "enter your password again" in page_text(stale.text)
    wrong = alice.client.post(
        "/account/sudo",
        data={"csrf": csrf_of(page.text), "current": "not it", "next": "/account/apikeys/new"},
    )
    assert wrong.status_code == 400
    ok = alice.client.post(
        "/account/sudo",
        data={"csrf": csrf_of(page.text), "current": PASSWORD, "next": "/account/apikeys/new"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/account/apikeys/new"
    _, second = alice.create_key(name="second")
    assert second != secret


def test_site_and_org_can_require_two_factor(make_site: MakeSite) -> None:
    site = make_site(require_2fa=True)
    site.sign_in("alice")
    response = site.submit(
        "/account/apikeys/new",
        "/account/apikeys",
        {"name": "ci", "owner": "alice", "push": "on", "push_kind": "push", "glob": "*", "expires": "365"},
    )
    assert response.status_code == 403 and "requires two-factor sign-in" in page_text(response.text)
    enrol(site)
    site.create_key()


def test_an_org_admin_can_require_two_factor_of_members(alice: Site) -> None:
    alice.core.orgs.create("Contoso", "alice")
    bob = alice.browser("bob")
    alice.core.orgs.add_member("Contoso", "bob", "collaborator")
    page = alice.get("/orgs/Contoso")
    response = alice.client.post(
        "/orgs/Contoso/two-factor", data={"csrf": csrf_of(page.text), "require": "on"}, follow_redirects=True
    )
    assert "now need two-factor sign-in" in page_text(response.text)
    # A collaborator cannot change it.
    bob_page = bob.get("/orgs/Contoso")
    assert "requires two-factor sign-in" in page_text(bob_page.text)
    assert (
        bob.client.post(
            "/orgs/Contoso/two-factor", data={"csrf": csrf_of(bob_page.text), "require": "off"}
        ).status_code
        == 403
    )
    fields = {
        "name": "ci",
        "owner": "Contoso",
        "push": "on",
        "push_kind": "push",
        "glob": "*",
        "expires": "365",
    }
    refused = bob.submit("/account/apikeys/new", "/account/apikeys", fields)
    assert refused.status_code == 403 and "Contoso requires two-factor sign-in" in page_text(refused.text)
    bob.create_key(owner="bob")  # for himself, still fine
    enrol(bob)
    bob.create_key(name="ci for Contoso", owner="Contoso")


def test_an_operator_turns_two_factor_off_for_a_lost_phone(
    alice: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    from nugat.cli import main

    enrol(alice)
    sign_out(alice)
    password_step(alice)
    assert main(["user", "disable-2fa", "alice", "--data-dir", str(alice.settings.data_dir)]) == 0
    assert "turned two-factor sign-in off for alice" in capsys.readouterr().out
    alice.client.cookies.clear()
    alice.sign_in("alice")  # the password alone


def test_a_wrong_code_is_shown_beside_the_field_of_the_form_sent(alice: Site) -> None:
    html = alice.get("/account/two-factor").text
    refused = alice.client.post("/account/two-factor", data={"csrf": csrf_of(html), "code": "000000"})
    assert refused.status_code == 400 and list(field_errors(refused.text)) == ["code"]
    assert 'aria-invalid="true" aria-describedby="code-error"' in refused.text
    enrol(alice)
    last_step_back(alice)
    for action, field in (("disable", "off-code"), ("recovery-codes", "codes-code")):
        html = alice.get("/account/two-factor").text
        refused = alice.client.post(
            f"/account/two-factor/{action}", data={"csrf": csrf_of(html), "code": "1"}
        )
        assert refused.status_code == 400
        errors = field_errors(refused.text)
        assert list(errors) == [field], errors
        assert re.search(
            rf'<input id="{field}" [^>]*aria-invalid="true" aria-describedby="{field}-error"', refused.text
        )
        summary = re.search(
            r'<div class="error-summary" id="error-summary"[^>]*autofocus>(.*?)</div>', refused.text, re.S
        )
        assert summary and f'<a href="#{field}">{errors[field]}</a>' in summary.group(1)
        assert 'class="alert"' not in refused.text  # no alert apart from its field


def test_turning_two_factor_on_needs_a_recent_sign_in_or_the_password_again(alice: Site) -> None:
    """A stolen session cookie must not turn it on and lock the owner out."""
    page = alice.get("/account/two-factor")  # just signed in: the set-up shows
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page.text)
    assert page.status_code == 200 and secret
    _age_session(alice, 16)
    late = alice.client.post(
        "/account/two-factor", data={"csrf": csrf_of(page.text), "code": pyotp.TOTP(secret.group(1)).now()}
    )
    assert late.status_code == 403 and "Confirm your password" in page_text(late.text)
    assert "enter your password again" in page_text(late.text)
    assert alice.core.accounts.users()[0].totp_enabled_at is None
    asked = alice.get("/account/two-factor")
    assert "Confirm your password" in page_text(asked.text) and "totp-secret" not in asked.text
    ok = alice.client.post(
        "/account/sudo",
        data={"csrf": csrf_of(asked.text), "current": PASSWORD, "next": "/account/two-factor"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/account/two-factor"
    enrol(alice)
    assert alice.core.accounts.users()[0].totp_enabled_at is not None
