"""The pages' defences over HTTP: CSRF, sessions and their expiry, throttled sign-in, secrets shown once."""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from nugat import httpcommon
from nugat.clock import utcnow
from nugat.db.models import Account, AuditEvent, Throttle, WebSession
from nugat.services.accounts import (
    FAILED_SIGNIN_PER_ACCOUNT,
    FAILED_SIGNIN_PER_ACCOUNT_ADDRESS,
    FAILED_SIGNIN_PER_ADDRESS,
    SLOWED_SIGNIN,
)
from nugat.services.sessions import SESSION_COOKIE
from nugat.web.pages import CSRF_COOKIE
from nugat.web.security import CONTENT_SECURITY_POLICY
from web.helpers import PASSWORD, MakeSite, Site, csrf_of, nupkg, once_of, page_text, secret_of

# Every state-changing form of a signed-in user, with data that would succeed given a valid token.
SIGNED_IN_FORMS = [
    ("/account/apikeys", {"name": "x", "owner": "alice", "push": "on", "push_kind": "push", "glob": "*"}),
    ("/account/apikeys/{key}/edit", {"name": "renamed", "push": "on", "push_kind": "push", "glob": "*"}),
    ("/account/apikeys/{key}/regenerate", {}),
    ("/account/apikeys/{key}/delete", {}),
    ("/account/packages/Csrf.Lib/1.0.0/unlist", {}),
    (
        "/account/password",
        {"current": PASSWORD, "password": "a whole new password", "confirm": "a whole new password"},
    ),
    ("/account/email", {"current": PASSWORD, "email": "mallory@example.test"}),
    ("/signout", {}),
]


def test_every_form_refuses_a_post_without_a_valid_csrf_token(alice: Site) -> None:
    _, secret = alice.create_key(expires="365")
    assert alice.push(secret, nupkg("Csrf.Lib", "1.0.0")) == 201
    key = alice.core.accounts.list_keys("alice")[0]
    page = alice.get("/account/apikeys").text
    good = csrf_of(page)
    for path, data in SIGNED_IN_FORMS:
        action = path.format(key=key.id)
        for token in (None, "", "0" * 64, good[:-1] + ("0" if good[-1] != "0" else "1")):
            form = dict(data, **({"csrf": token} if token is not None else {}))
            response = alice.client.post(action, data=form, follow_redirects=False)
            assert response.status_code == 403, (action, token, response.status_code)
            assert "This form has expired" in response.text
        for site in ("cross-site", "same-site"):  # same-site: another host or port of this site
            other = alice.client.post(
                action, data=dict(data, csrf=good), headers={"sec-fetch-site": site}, follow_redirects=False
            )
            assert other.status_code == 403, (action, site)
    # Nothing changed: same key and secret, package listed, password, email, still signed in.
    assert alice.core.accounts.list_keys("alice") == [key]
    assert alice.push(secret, nupkg("Csrf.Lib", "1.0.1")) == 201
    assert alice.core.accounts.authenticate("alice", PASSWORD) is not None
    assert alice.core.accounts.users()[0].email == "alice@example.test"
    assert alice.get("/account/apikeys").status_code == 200
    mine = alice.core.accounts.packages_of([alice.core.accounts.users()[0].id])
    assert all(v.listed for v in mine[0].versions)


# The organization, owner and prefix forms, in an order in which each succeeds given a valid token.
MEMBERSHIP_FORMS = [
    ("/account/organizations", {"name": "NewOrg"}),
    ("/orgs/Contoso/members", {"username": "carol", "role": "admin"}),
    ("/orgs/Contoso/members/bob/role", {"role": "admin"}),
    ("/orgs/Contoso/members/bob/remove", {}),
    ("/packages/Shared.Lib/owners", {"owner": "carol"}),
    ("/packages/Shared.Lib/owners/dave/cancel", {}),
    ("/packages/Shared.Lib/owners/bob/remove", {}),
    ("/account/invitations/Bob.Lib/alice/accept", {}),
    ("/account/invitations/Other.Lib/alice/reject", {}),
    ("/admin/prefixes", {"prefix": "Csrf.*", "owners": "alice"}),
    ("/admin/prefixes/release", {"prefix": "Held.*", "owner": "alice"}),
]


def test_membership_owner_and_prefix_forms_refuse_a_post_without_a_valid_csrf_token(alice: Site) -> None:
    core = alice.core
    with core.db.session() as s:  # alice is a site admin here, for the prefix forms
        s.execute(update(Account).where(Account.name == "alice").values(is_admin=True))
    for name in ("bob", "carol", "dave"):
        core.accounts.create_user(name, f"{name}@example.test", PASSWORD)
    core.orgs.create("Contoso", "alice")
    core.orgs.add_member("Contoso", "bob", "collaborator")
    _, secret = alice.create_key()
    assert alice.push(secret, nupkg("Shared.Lib", "1.0.0")) == 201
    _, bobs = core.accounts.create_key("bob", "b", ["push"], ["*"], [], 30)
    for package_id in ("Bob.Lib", "Other.Lib"):
        assert alice.push(bobs, nupkg(package_id, "1.0.0")) == 201
        core.owners.invite(package_id, "alice", by="bob")
    core.owners.add("Shared.Lib", "bob")
    core.owners.invite("Shared.Lib", "dave", by="alice")
    core.prefixes.reserve("Held.*", ["alice"])

    def state() -> object:
        return (
            [(o.name, [(m.name, m.role) for m in o.members]) for o in core.orgs.all()],
            [core.owners.of_package(p) for p in ("Shared.Lib", "Bob.Lib", "Other.Lib")],
            [core.owners.invitations_for_package(p) for p in ("Shared.Lib", "Bob.Lib", "Other.Lib")],
            core.prefixes.all(),
        )

    before = state()
    good = csrf_of(alice.get("/account/organizations").text)
    for action, data in MEMBERSHIP_FORMS:
        for token in (None, "", good[:-1] + ("0" if good[-1] != "0" else "1")):
            form = dict(data, **({"csrf": token} if token is not None else {}))
            response = alice.client.post(action, data=form, follow_redirects=False)
            assert response.status_code == 403 and "This form has expired" in response.text, (action, token)
        for site in ("cross-site", "same-site"):
            other = alice.client.post(action, data=dict(data, csrf=good), headers={"sec-fetch-site": site})
            assert other.status_code == 403, (action, site)
    assert state() == before
    for action, data in MEMBERSHIP_FORMS:  # the same posts with the token go through
        response = alice.client.post(action, data=dict(data, csrf=good), follow_redirects=False)
        assert response.status_code == 303, (action, response.text)
    assert state() != before


def test_a_token_of_another_session_is_refused(make_site: MakeSite) -> None:
    site = make_site()
    site.core.accounts.create_user("mallory", "mallory@example.test", PASSWORD)
    site.sign_in("mallory")
    mallorys_token = csrf_of(site.get("/account/apikeys").text)
    site.client.cookies.clear()
    site.sign_in("alice")
    response = site.client.post(
        "/account/email", data={"csrf": mallorys_token, "current": PASSWORD, "email": "m@example.test"}
    )
    assert response.status_code == 403
    assert site.core.accounts.users()[0].email == "alice@example.test"


def test_sign_in_and_sign_up_forms_need_the_token_of_their_visitor(site: Site) -> None:
    response = site.client.post("/signin", data={"login": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.cookies
    token = csrf_of(site.get("/signin").text)
    site.client.cookies.delete(CSRF_COOKIE)  # another browser: the token is bound to this one's cookie
    response = site.client.post("/signin", data={"csrf": token, "login": "alice", "password": PASSWORD})
    assert response.status_code == 403
    response = site.client.post(
        "/signup",
        data={
            "csrf": token,
            "username": "eve",
            "email": "eve@example.test",
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
    )
    assert response.status_code == 403
    assert [u.name for u in site.core.accounts.users()] == ["alice"]


def test_sessions_are_stored_hashed_and_end_at_sign_out(site: Site) -> None:
    site.sign_in("alice")
    token = site.client.cookies[SESSION_COOKIE]
    with site.core.db.reading() as s:
        stored = list(s.scalars(select(WebSession)))
    assert len(stored) == 1 and token.encode() not in stored[0].token_hash
    assert site.get("/account/apikeys").status_code == 200
    response = site.submit("/account/apikeys", "/signout", {})
    assert response.status_code == 303
    site.client.cookies.set(SESSION_COOKIE, token)  # a copied cookie is worthless after sign-out
    response = site.get("/account/apikeys", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/account/apikeys"


def test_an_expired_session_sends_the_user_to_sign_in(alice: Site) -> None:
    assert alice.get("/account/apikeys").status_code == 200
    with alice.core.db.session() as s:
        s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = alice.get("/account/apikeys", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/account/apikeys"
    assert SESSION_COOKIE in response.headers["set-cookie"] and "Max-Age=0" in response.headers["set-cookie"]
    # A form posted with the expired session changes nothing.
    response = alice.client.post("/account/apikeys/x/delete", data={"csrf": "x"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")


def test_signing_in_with_a_session_cookie_that_ended_keeps_the_new_session(alice: Site) -> None:
    """A sign-in posted with a session cookie that no longer works (ended elsewhere, or by its 7 days): the
    answer sets the new session, and does not also delete the cookie (a browser would apply both, in
    order, and be signed out again)."""
    stale = alice.client.cookies[SESSION_COOKIE]
    with alice.core.db.session() as s:
        s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    html = alice.get("/signin?next=/account/apikeys").text  # a form of a visitor not signed in
    alice.client.cookies.set(SESSION_COOKIE, stale)  # as another tab, or a cookie the page did not clear
    form = {"csrf": csrf_of(html), "login": "alice", "password": PASSWORD, "next": "/account/apikeys"}
    response = alice.client.post("/signin", data=form, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/account/apikeys"
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}=")]
    assert len(cookies) == 1 and "Max-Age=0" not in cookies[0] and stale not in cookies[0]
    fresh = cookies[0].split(";")[0]
    signed_in = alice.client.get("/account/apikeys", headers={"cookie": fresh}, follow_redirects=False)
    assert signed_in.status_code == 200


def test_a_sign_in_form_posted_from_another_port_of_this_host_is_refused(site: Site) -> None:
    """Login CSRF: a page on another port or subdomain (same-site) may plant this site's anonymous form
    cookie, and post its own account's credentials with the token bound to it."""
    html = site.get("/signin").text
    form = {"csrf": csrf_of(html), "login": "alice", "password": PASSWORD}
    planted = site.client.post("/signin", data=form, headers={"sec-fetch-site": "same-site"})
    assert planted.status_code == 403 and SESSION_COOKIE not in planted.headers.get("set-cookie", "")
    for fetch_site in ("same-origin", "none", None):  # this site's own page; a typed URL; an old browser
        headers = {"sec-fetch-site": fetch_site} if fetch_site else {}
        response = site.client.post("/signin", data=form, headers=headers, follow_redirects=False)
        assert response.status_code == 303, fetch_site
        site.client.cookies.delete(SESSION_COOKIE)


def test_signed_in_pages_are_not_kept_by_the_browser(alice: Site) -> None:
    for path in ("/account", "/account/apikeys", "/"):
        assert alice.get(path).headers["cache-control"] == "no-store", path
    alice.submit("/account", "/signout", {})
    assert alice.get("/").headers["cache-control"] == "private, no-cache"


def test_sign_in_brings_the_visitor_back_to_the_whole_url(site: Site) -> None:
    response = site.get("/account/activity?user=alice&page=2", follow_redirects=False)
    assert response.headers["location"] == "/signin?next=/account/activity%3Fuser%3Dalice%26page%3D2"
    html = site.get(response.headers["location"]).text
    [kept] = re.findall(r'name="next" value="([^"]*)"', html)  # the form carries it
    assert unescape(kept) == "/account/activity?user=alice&page=2"
    form = {"csrf": csrf_of(html), "login": "alice", "password": PASSWORD, "next": unescape(kept)}
    response = site.client.post("/signin", data=form, follow_redirects=False)
    assert response.headers["location"] == "/account/activity?user=alice&page=2"


def test_session_cookie_flags(make_site: MakeSite) -> None:
    site = make_site(trust_forwarded=True)
    response = site.submit("/signin", "/signin", {"login": "alice", "password": PASSWORD})
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    site.client.cookies.clear()
    html = site.client.get("/signin", headers={"x-forwarded-proto": "https"})
    assert "Secure" in html.headers["set-cookie"]
    # The client keeps a Secure cookie from plain-http URLs, as a browser would: hand it over by hand.
    anonymous = html.headers["set-cookie"].split(";")[0]
    response = site.client.post(
        "/signin",
        data={"csrf": csrf_of(html.text), "login": "alice", "password": PASSWORD},
        headers={"x-forwarded-proto": "https", "cookie": anonymous},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"] and "HttpOnly" in response.headers["set-cookie"]


def _sign_in(site: Site, login: str, password: str, address: str) -> int:
    headers = {"x-forwarded-for": address}
    html = site.client.get("/signin", headers=headers).text
    data = {"csrf": csrf_of(html), "login": login, "password": password}
    return site.client.post("/signin", data=data, headers=headers, follow_redirects=False).status_code


def test_failed_sign_ins_at_an_account_are_refused_only_where_they_came_from(make_site: MakeSite) -> None:
    site = make_site(trust_forwarded=True)
    site.core.accounts.create_user("bob", "bob@example.test", PASSWORD)
    for attempt in range(FAILED_SIGNIN_PER_ACCOUNT_ADDRESS):
        # The login as typed, in any case (a name and an email count apart: see test_accounts).
        login = "alice" if attempt % 2 else "ALICE"
        assert _sign_in(site, login, "wrong password!", "10.0.0.1") == 400
    site.client.cookies.clear()
    html = site.client.get("/signin", headers={"x-forwarded-for": "10.0.0.1"}).text
    response = site.client.post(
        "/signin",
        data={"csrf": csrf_of(html), "login": "alice", "password": PASSWORD},
        headers={"x-forwarded-for": "10.0.0.1"},
    )
    assert response.status_code == 429  # the right password does not help from there now
    assert "Too many failed sign-in attempts" in response.text
    assert 0 < int(response.headers["retry-after"]) <= 15 * 60
    assert SESSION_COOKIE not in response.cookies
    assert _sign_in(site, "bob", PASSWORD, "10.0.0.1") == 303  # other accounts are not affected
    assert _sign_in(site, "alice", PASSWORD, "10.1.0.1") == 303  # nor the account from elsewhere
    with site.core.db.session() as s:  # the window passes
        s.execute(update(Throttle).values(window_start=utcnow() - timedelta(minutes=16)))
    assert _sign_in(site, "alice", PASSWORD, "10.0.0.1") == 303


def test_failures_at_an_account_from_everywhere_only_slow_it_down(make_site: MakeSite) -> None:
    site = make_site(trust_forwarded=True)
    for attempt in range(FAILED_SIGNIN_PER_ACCOUNT):  # one guess per address: no address is refused
        assert _sign_in(site, "alice", "wrong password!", f"10.3.0.{attempt}") == 400
    started = time.monotonic()
    assert _sign_in(site, "alice", PASSWORD, "10.3.1.1") == 303  # the owner, from an address with no failure
    assert time.monotonic() - started >= SLOWED_SIGNIN
    started = time.monotonic()
    assert _sign_in(site, "alice", "wrong password!", "10.3.0.1") == 400  # a guess is slowed as much
    assert time.monotonic() - started >= SLOWED_SIGNIN


def test_failed_sign_ins_are_throttled_per_address(make_site: MakeSite) -> None:
    site = make_site(trust_forwarded=True)
    for attempt in range(FAILED_SIGNIN_PER_ADDRESS):
        assert _sign_in(site, f"nobody{attempt}", "wrong password!", "10.2.0.1") == 400
    assert _sign_in(site, "alice", PASSWORD, "10.2.0.1") == 429
    assert _sign_in(site, "alice", PASSWORD, "10.2.0.2") == 303


def test_a_forged_forwarded_for_does_not_escape_the_sign_in_throttle(make_site: MakeSite) -> None:
    """A client that is not a trusted proxy (the loopback is, by default) writes X-Forwarded-For in vain."""
    site = make_site(trust_forwarded=True)
    direct = Site(TestClient(site.client.app, client=("192.0.2.7", 50000)), site.core, site.settings)
    for attempt in range(FAILED_SIGNIN_PER_ADDRESS):
        assert _sign_in(direct, f"nobody{attempt}", "wrong password!", f"10.4.0.{attempt}") == 400
    assert _sign_in(direct, "alice", PASSWORD, "10.4.1.1") == 429
    # Through the proxy, a client claiming the refused address is what the proxy says it is.
    assert _sign_in(site, "alice", PASSWORD, "192.0.2.7, 10.4.1.1") == 303


def test_an_ignored_forwarded_for_is_said_in_the_log(
    make_site: MakeSite, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients of a proxy whose X-Forwarded-For is ignored all share its address: the operator is told."""
    monkeypatch.setattr(httpcommon, "_warned", set())
    monkeypatch.setattr(httpcommon, "_warned_off", False)
    for trust, peer, expected in [
        (False, "127.0.0.1", "NUGAT_TRUST_FORWARDED is off"),
        (True, "192.0.2.9", "ignoring X-Forwarded-For from 192.0.2.9: not in NUGAT_TRUSTED_PROXIES"),
    ]:
        site = make_site(trust_forwarded=trust)
        behind = Site(TestClient(site.client.app, client=(peer, 50000)), site.core, site.settings)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="nugat"):
            assert _sign_in(behind, "alice", PASSWORD, "10.5.0.1") == 303
            assert _sign_in(behind, "alice", PASSWORD, "10.5.0.2") == 303
        warnings = [r.getMessage() for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
        assert len(warnings) == 1 and expected in warnings[0], warnings


def test_security_headers_on_pages(site: Site) -> None:
    for path in ("/", "/signin", "/packages/none", "/static/site.css"):
        response = site.get(path)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    html = site.get("/signin").text
    assert "<script>" not in html and " style=" not in html  # the CSP allows neither inline
    links = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert links == [
        "/favicon.ico",
        "/static/site.css",
        "/static/site.js",
        "#main",
        "/",
        "/signin",
        "/signup",
        "/account/forgot",
        "/signup",
    ]


def test_open_redirects_are_refused_after_sign_in(site: Site) -> None:
    for target, expected in [
        ("/account/packages", "/account/packages"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ]:
        site.client.cookies.clear()
        response = site.submit(
            f"/signin?next={target}", "/signin", {"login": "alice", "password": PASSWORD, "next": target}
        )
        assert response.headers["location"] == expected, target


def test_a_secret_is_on_its_one_page_only_never_in_other_pages_logs_or_storage(
    alice: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    created, first = alice.create_key(name="leaky", glob="Leak.*")
    assert created.headers["cache-control"] == "no-store"
    assert "It will not be shown again" in created.text
    key_id = alice.core.accounts.list_keys("alice")[0].id
    assert alice.push(first, nupkg("Leak.Lib", "1.0.0")) == 201
    list_page = alice.get("/account/apikeys").text
    regenerate = f"/account/apikeys/{key_id}/regenerate"
    regenerated = alice.submit(regenerate, regenerate, {})
    assert regenerated.status_code == 200 and regenerated.headers["cache-control"] == "no-store"
    second = secret_of(regenerated.text)
    assert second != first and first not in regenerated.text
    assert alice.push(first, nupkg("Leak.Lib", "1.0.1")) == 403
    assert alice.push(second, nupkg("Leak.Lib", "1.0.1")) == 201
    for path in [
        "/",
        "/packages?q=leak",
        "/packages/Leak.Lib",
        "/packages/Leak.Lib/1.0.1",
        "/account",
        "/account/apikeys",
        "/account/apikeys/new",
        f"/account/apikeys/{key_id}/edit",
        f"/account/apikeys/{key_id}/regenerate",
        f"/account/apikeys/{key_id}/delete",
        "/account/packages",
    ]:
        response = alice.get(path)
        assert response.status_code == 200, path
        seen.append(response.text + str(response.headers))
    edited = alice.submit(
        f"/account/apikeys/{key_id}/edit",
        f"/account/apikeys/{key_id}/edit",
        {"name": "leaky", "push": "on", "push_kind": "push", "unlist": "on", "glob": "Leak.*"},
        follow=True,
    )
    deleted = alice.submit(
        f"/account/apikeys/{key_id}/delete", f"/account/apikeys/{key_id}/delete", {}, follow=True
    )
    seen += [list_page, edited.text, deleted.text, str(created.headers), str(regenerated.headers)]
    for secret in (first, second):
        body = secret.split("_", 2)[2]
        for text in seen:
            assert body not in text
        assert body not in caplog.text
        assert secret not in str(alice.client.cookies)
    with alice.core.db.reading() as s:
        audit = " ".join(str(e.detail) for e in s.scalars(select(AuditEvent)))
    assert first not in audit and second not in audit
    stored = b"".join(p.read_bytes() for p in alice.settings.data_dir.rglob("*") if p.is_file())
    assert first.encode() not in stored and second.encode() not in stored


def test_reposting_a_secret_form_neither_makes_nor_shows_a_secret(alice: Site) -> None:
    html = alice.get("/account/apikeys/new").text
    form = {
        "csrf": csrf_of(html),
        "once": once_of(html),
        "name": "twice",
        "owner": "alice",
        "push": "on",
        "push_kind": "push",
        "glob": "*",
        "expires": "90",
    }
    first = alice.client.post("/account/apikeys", data=form)
    secret = secret_of(first.text)
    again = alice.client.post("/account/apikeys", data=form, follow_redirects=False)  # what reload does
    assert again.status_code == 409
    page = again.text
    assert "shown only once" in page and secret not in page and "nugat_" not in page
    assert [k.name for k in alice.core.accounts.list_keys("alice")] == ["twice"]
    assert alice.client.post("/account/apikeys", data=form).status_code == 409  # and again: still none
    assert [k.name for k in alice.core.accounts.list_keys("alice")] == ["twice"]
    key_id = alice.core.accounts.list_keys("alice")[0].id
    html = alice.get(f"/account/apikeys/{key_id}/regenerate").text  # the confirmation page
    regen = {"csrf": csrf_of(html), "once": once_of(html)}
    new_secret = secret_of(alice.client.post(f"/account/apikeys/{key_id}/regenerate", data=regen).text)
    again = alice.client.post(f"/account/apikeys/{key_id}/regenerate", data=regen, follow_redirects=False)
    assert again.status_code == 409 and "nugat_" not in again.text
    assert "already sent once" in page_text(again.text)
    assert alice.push(new_secret, nupkg("Once.Lib", "1.0.0")) == 201  # the second post did not regenerate


def test_back_to_a_sent_key_form_shows_it_again_as_typed_with_a_fresh_token(alice: Site) -> None:
    html = alice.get("/account/apikeys/new").text
    form = {"csrf": csrf_of(html), "once": once_of(html), "owner": "alice", "push": "on"}
    form |= {"push_kind": "push-version", "glob": "Back.*", "expires": "90"}
    secret_of(alice.client.post("/account/apikeys", data={**form, "name": "backA"}).text)
    # Back to the cached form (the same one-time token), another name, Create:
    again = alice.client.post("/account/apikeys", data={**form, "name": "backB"}, follow_redirects=False)
    assert again.status_code == 409
    text = page_text(again.text)
    assert "This form was already sent once: a key was made from it" in text
    assert "Press Create again to make another key." in text
    assert 'value="backB"' in again.text and 'value="Back.*"' in again.text
    assert re.search(r'<option value="90" selected>', again.text)
    assert re.search(r'id="push-version" name="push_kind" value="push-version" checked', again.text)
    fresh = once_of(again.text)
    assert fresh != form["once"]
    assert [k.name for k in alice.core.accounts.list_keys("alice")] == ["backA"]
    made = alice.client.post("/account/apikeys", data={**form, "name": "backB", "once": fresh})
    secret_of(made.text)
    assert sorted(k.name for k in alice.core.accounts.list_keys("alice")) == ["backA", "backB"]


def test_back_to_a_sent_regenerate_confirmation_asks_again(alice: Site) -> None:
    _, first = alice.create_key(name="regen")
    key_id = alice.core.accounts.list_keys("alice")[0].id
    html = alice.get(f"/account/apikeys/{key_id}/regenerate").text
    regen = {"csrf": csrf_of(html), "once": once_of(html)}
    second = secret_of(alice.client.post(f"/account/apikeys/{key_id}/regenerate", data=regen).text)
    again = alice.client.post(f"/account/apikeys/{key_id}/regenerate", data=regen)
    assert again.status_code == 409 and "nugat_" not in again.text
    assert "Press Regenerate again to make another secret" in page_text(again.text)
    assert alice.push(second, nupkg("Regen.Lib", "1.0.0")) == 201  # nothing regenerated
    regen["once"] = once_of(again.text)
    third = secret_of(alice.client.post(f"/account/apikeys/{key_id}/regenerate", data=regen).text)
    assert third not in (first, second)
