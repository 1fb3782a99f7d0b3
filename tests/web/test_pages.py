"""The pages over HTTP, in process: sign up and in, API keys, My packages, settings, package pages."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

from sqlalchemy import select, update
from starlette.testclient import TestClient

from nugat.clock import utcnow
from nugat.db.models import Account, ApiKey, AuditEvent, Membership
from nugat.services.sessions import SESSION_COOKIE
from web.helpers import PASSWORD, MakeSite, Site, csrf_of, field_errors, nupkg, page_text


def _text(html: str) -> str:
    """The page's text, tags removed and whitespace folded (what a reader sees)."""
    return page_text(html)


def test_sign_up_signs_in_and_validates_each_field(site: Site) -> None:
    response = site.submit(
        "/signup",
        "/signup",
        {"username": "-bad", "email": "nope", "password": "short", "confirm": "other"},
    )
    assert response.status_code == 400
    errors = field_errors(response.text)
    assert set(errors) == {"username", "email", "password", "confirm"}
    assert "at least 10 characters" in errors["password"]
    assert 'value="-bad"' in response.text and 'value="nope"' in response.text  # kept, not the passwords
    assert "short" not in response.text
    response = site.submit(
        "/signup",
        "/signup",
        {"username": "carol", "email": "carol@example.test", "password": "Carol", "confirm": "Carol"},
    )
    assert "password" in field_errors(response.text)
    taken = site.submit(
        "/signup",
        "/signup",
        {"username": "ALICE", "email": "a2@example.test", "password": PASSWORD, "confirm": PASSWORD},
    )
    assert taken.status_code == 400 and "already taken" in taken.text
    response = site.submit(
        "/signup",
        "/signup",
        {"username": "carol", "email": "carol@example.test", "password": PASSWORD, "confirm": PASSWORD},
    )
    assert response.status_code == 303 and response.headers["location"] == "/account/apikeys"
    page = site.get("/account/apikeys")
    assert page.status_code == 200 and "carol" in page.text
    carol = next(u for u in site.core.accounts.users() if u.name == "carol")
    assert not carol.is_admin  # only with NUGAT_FIRST_SIGNUP_ADMIN, and only the very first user


def test_first_sign_up_is_admin_when_configured(make_site: MakeSite) -> None:
    site = make_site(first_signup_is_admin=True)
    with site.core.db.session() as s:  # an empty server: no user yet
        s.delete(s.scalar(select(Account).where(Account.name == "alice")))
    for name in ("first", "second"):
        site.client.cookies.clear()
        response = site.submit(
            "/signup",
            "/signup",
            {"username": name, "email": f"{name}@example.test", "password": PASSWORD, "confirm": PASSWORD},
        )
        assert response.status_code == 303
    admins = {u.name: u.is_admin for u in site.core.accounts.users()}
    assert admins == {"first": True, "second": False}


def test_sign_up_can_be_closed(make_site: MakeSite) -> None:
    site = make_site(allow_signup=False)
    assert site.get("/signup").status_code == 404
    assert 'href="/signup"' not in site.get("/").text
    html = site.get("/signin").text
    response = site.client.post(
        "/signup",
        data={"csrf": csrf_of(html), "username": "eve", "email": "e@example.test", "password": PASSWORD},
    )
    assert response.status_code == 404
    assert [u.name for u in site.core.accounts.users()] == ["alice"]


def test_sign_in_by_email_goes_back_where_it_was_asked(site: Site) -> None:
    response = site.get("/account/packages", follow_redirects=False)
    assert response.headers["location"] == "/signin?next=/account/packages"
    signin_page = site.get(response.headers["location"]).text
    assert 'name="next" value="/account/packages"' in signin_page
    wrong = site.submit(
        "/signin?next=/account/packages", "/signin", {"login": "alice", "password": "not it at all"}
    )
    assert wrong.status_code == 400 and "Wrong username, email or password" in wrong.text
    response = site.submit(
        "/signin",
        "/signin",
        {"login": "Alice@Example.test", "password": PASSWORD, "next": "/account/packages"},
    )
    assert response.status_code == 303 and response.headers["location"] == "/account/packages"
    assert site.get("/signin", follow_redirects=False).headers["location"] == "/"  # already signed in
    menu = site.get("/").text
    for link in ("/account/apikeys", "/account/packages", "/account"):
        assert f'href="{link}"' in menu
    site.submit("/", "/signout", {})
    assert SESSION_COOKIE not in site.client.cookies
    assert 'href="/signin"' in site.get("/").text


def test_create_key_shows_errors_beside_the_fields(alice: Site) -> None:
    response = alice.submit(
        "/account/apikeys/new",
        "/account/apikeys",
        {"name": "", "owner": "nobody", "glob": "bad glob!", "expires": "30", "push_kind": "push"},
    )
    assert response.status_code == 400
    errors = field_errors(response.text)
    assert set(errors) == {"name", "owner", "scopes", "glob", "expires"}
    assert errors["glob"].startswith("The glob pattern 'glob!' contains '!'.")
    assert 'aria-invalid="true" aria-describedby="name-error"' in response.text
    response = alice.submit(
        "/account/apikeys/new",
        "/account/apikeys",
        {"name": "k", "owner": "alice", "unlist": "on", "expires": "90", "package": ["Not.Mine"]},
    )
    assert field_errors(response.text) == {"packages": "Not.Mine: not a package of alice"}
    response = alice.submit(
        "/account/apikeys/new",
        "/account/apikeys",
        {"name": "k", "owner": "alice", "unlist": "on", "expires": "90"},
    )
    assert field_errors(response.text) == {"packages": "Give a glob pattern or select at least one package"}
    assert alice.core.accounts.list_keys("alice") == []


def test_create_form_defaults_and_choices(alice: Site) -> None:
    core = alice.core
    core.accounts.create_user("bob", "bob@example.test", PASSWORD)
    with core.db.session() as s:  # organizations are made elsewhere; a membership row is all it takes here
        now = utcnow()
        for org in ("contoso", "fabrikam"):
            s.add(Account(name=org, name_lower=org, kind="org", is_admin=False, created_at=now))
        s.flush()
        ids = {a.name: a.id for a in s.scalars(select(Account))}
        s.add(Membership(org_id=ids["contoso"], member_id=ids["alice"], role="collaborator"))
        s.add(Membership(org_id=ids["fabrikam"], member_id=ids["bob"], role="admin"))
    _, secret = alice.create_key(name="all")
    assert alice.push(secret, nupkg("Alice.One", "1.0.0")) == 201
    html = alice.get("/account/apikeys/new").text
    assert re.findall(r'<option value="([^"]+)"(?: selected)?>\1</option>', html)[:2] == ["alice", "contoso"]
    assert "fabrikam" not in html
    assert '<option value="365" selected>365 days</option>' in html
    assert [int(d) for d in re.findall(r'<option value="(\d+)"', html)] == [1, 90, 180, 270, 365]
    assert re.search(r'id="push" name="push" value="on" checked', html)
    assert re.search(r'id="push-new" name="push_kind" value="push" checked', html)
    assert 'data-owner="alice"' in html and 'value="Alice.One"' in html
    assert "contoso has no packages yet" in html
    response, org_secret = alice.create_key(name="for contoso", owner="contoso", glob="Contoso.*")
    assert "Owner contoso" in _text(response.text)
    assert {k.name: k.owner for k in alice.core.accounts.list_keys("alice")} == {
        "all": "alice",
        "for contoso": "contoso",
    }
    assert alice.push(org_secret, nupkg("Contoso.Lib", "1.0.0")) == 201
    mine = alice.get("/account/packages").text
    assert "Contoso.Lib" in mine and "Owned by contoso" in _text(mine)


def test_key_list_shows_every_setting_plainly(alice: Site) -> None:
    _, secret = alice.create_key(name="wide", glob="*")
    assert alice.push(secret, nupkg("Listed.Pkg", "1.0.0")) == 201
    alice.create_key(
        name="narrow",
        push_kind="push-version",
        unlist="on",
        glob="Contoso.*",
        package=["Listed.Pkg"],
        expires="90",
    )
    alice.create_key(name="soon", glob="*", expires="1")
    with alice.core.db.session() as s:
        s.execute(update(ApiKey).where(ApiKey.name == "wide").values(expires_at=utcnow() - timedelta(days=2)))
    page = _text(alice.get("/account/apikeys").text)
    narrow = page[page.index("narrow") : page.index("wide")]
    assert "Owner alice" in narrow
    assert "Push only new package versions Unlist package" in narrow
    assert "Glob pattern Contoso.*" in narrow and "Packages Listed.Pkg" in narrow
    assert "Expires in 90 days" in narrow and "Last used never" in narrow
    assert f"Created {utcnow():%Y-%m-%d}" in narrow
    assert "Expires in 1 day " in page
    wide = page[page.index("wide") :]
    assert "Expired" in wide and "This key has expired" in wide
    # an expired key: Expired, Regenerate (which renews it) and Delete, no Edit
    assert "Regenerate wide" in page and "Delete wide" in page and "Edit wide" not in page
    assert "Regenerate narrow" in page and "Edit narrow" in page


def test_edit_changes_packages_never_scopes(alice: Site) -> None:
    _, secret = alice.create_key(name="ci", glob="Edit.*", expires="90")
    assert alice.push(secret, nupkg("Edit.Lib", "1.0.0")) == 201
    key = alice.core.accounts.list_keys("alice")[0]
    form = alice.get(f"/account/apikeys/{key.id}/edit").text
    assert 'value="Edit.*"' in form and "expires in 90 days" in form and 'name="expires"' not in form
    response = alice.submit(
        f"/account/apikeys/{key.id}/edit",
        f"/account/apikeys/{key.id}/edit",
        {"name": "ci", "push": "", "unlist": "on", "glob": "", "package": []},
    )
    assert field_errors(response.text) == {"packages": "Give a glob pattern or select at least one package"}
    response = alice.submit(
        f"/account/apikeys/{key.id}/edit",
        f"/account/apikeys/{key.id}/edit",
        {"name": "ci unlist", "unlist": "on", "glob": "", "package": ["Edit.Lib"], "owner": "evil"},
        follow=True,
    )
    assert "API key 'ci unlist' saved." in unescape(response.text)
    edited = alice.core.accounts.list_keys("alice")[0]
    # the posted scopes (unlist only) are ignored: as on nuget.org, an edit never changes what a key may do
    assert (edited.name, edited.scopes, edited.globs, edited.packages) == (
        "ci unlist",
        ["push"],
        [],
        ["Edit.Lib"],
    )
    assert (edited.owner, edited.expires) == (key.owner, key.expires)
    assert alice.push(secret, nupkg("Edit.Lib", "1.0.1")) == 201  # the secret still works, as before
    unlist = alice.client.delete("/api/v2/package/Edit.Lib/1.0.0", headers={"X-NuGet-ApiKey": secret})
    assert unlist.status_code == 403 and "does not allow unlisting" in unlist.text
    form = alice.get(f"/account/apikeys/{key.id}/edit").text
    assert 'name="push"' not in form and 'name="unlist"' not in form
    assert "A key&#39;s scopes cannot change" in form or "A key's scopes cannot change" in form


def test_delete_asks_first_then_deletes(alice: Site) -> None:
    _, secret = alice.create_key(name="doomed")
    key = alice.core.accounts.list_keys("alice")[0]
    confirm = alice.get(f"/account/apikeys/{key.id}/delete")
    assert "Delete API key “doomed”?" in unescape(confirm.text)
    assert alice.core.accounts.list_keys("alice") == [key]  # looking is not deleting
    response = alice.submit(
        f"/account/apikeys/{key.id}/delete", f"/account/apikeys/{key.id}/delete", {}, follow=True
    )
    assert "API key 'doomed' deleted." in unescape(response.text)
    assert alice.core.accounts.list_keys("alice") == []
    assert alice.push(secret, nupkg("Gone.Lib", "1.0.0")) == 403
    assert alice.get(f"/account/apikeys/{key.id}/edit").status_code == 404


def test_keys_of_other_users_are_out_of_reach(alice: Site) -> None:
    alice.core.accounts.create_user("bob", "bob@example.test", PASSWORD)
    bobs, _ = alice.core.accounts.create_key("bob", "bobs", ["push"], ["*"], [], 30)
    html = alice.get("/account/apikeys").text
    token = csrf_of(html)
    assert alice.get(f"/account/apikeys/{bobs.id}/edit").status_code == 404
    for action in ("regenerate", "delete"):
        response = alice.client.post(
            f"/account/apikeys/{bobs.id}/{action}", data={"csrf": token, "once": "x" + action}
        )
        assert response.status_code == 404
    assert [k.id for k in alice.core.accounts.list_keys("bob")] == [bobs.id]


def test_my_packages_unlist_and_relist(alice: Site) -> None:
    _, secret = alice.create_key(name="ci")
    for version in ("1.0.0", "2.0.0-beta"):
        assert alice.push(secret, nupkg("Mine.Lib", version)) == 201
    alice.core.accounts.create_user("bob", "bob@example.test", PASSWORD)
    _, bobs = alice.core.accounts.create_key("bob", "b", ["push"], ["*"], [], 30)
    assert alice.push(bobs, nupkg("Bobs.Lib", "1.0.0")) == 201
    page = _text(alice.get("/account/packages").text)
    assert "Mine.Lib" in page and "Bobs.Lib" not in page
    assert re.search(r"2\.0\.0-beta \S+ 0 Listed Unlist Mine\.Lib 2\.0\.0-beta 1\.0\.0 \S+ 0 Listed", page)
    response = alice.submit("/account/packages", "/account/packages/Mine.Lib/1.0.0/unlist", {}, follow=True)
    assert "Mine.Lib 1.0.0 unlisted" in _text(response.text)
    assert re.search(r"1\.0\.0 \S+ 0 Unlisted Relist Mine\.Lib 1\.0\.0", _text(response.text))
    index = alice.get("/v3/registration-semver2/mine.lib/index.json").json()
    listed = {i["catalogEntry"]["version"]: i["catalogEntry"]["listed"] for i in index["items"][0]["items"]}
    assert listed == {"1.0.0": False, "2.0.0-beta": True}
    alice.submit("/account/packages", "/account/packages/Mine.Lib/1.0.0/relist", {})
    index = alice.get("/v3/registration-semver2/mine.lib/index.json").json()
    assert all(i["catalogEntry"]["listed"] for i in index["items"][0]["items"])
    refused = alice.submit("/account/packages", "/account/packages/Bobs.Lib/1.0.0/unlist", {})
    assert refused.status_code == 403 and "not an owner of Bobs.Lib" in refused.text
    missing = alice.submit("/account/packages", "/account/packages/Mine.Lib/9.0.0/unlist", {})
    assert missing.status_code == 404
    with alice.core.db.reading() as s:
        events = [
            (e.action, e.version, e.key_id)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.package_id == "Mine.Lib"))
            if e.action != "package.push"
        ]
    assert events == [("package.unlist", "1.0.0", None), ("package.relist", "1.0.0", None)]


def test_home_search_and_package_page(alice: Site) -> None:
    _, secret = alice.create_key(name="ci")
    readme = "# Hello\n<script>alert('x')</script> & more"
    deps = (
        "<readme>README.md</readme><tags>json fast</tags><projectUrl>https://example.test/web-json</projectUrl>"
        '<dependencies><group targetFramework="net8.0"><dependency id="Dep.One" version="1.2.0" />'
        '<dependency id="Dep.Two" version="[2.0.0, 3.0.0)" /></group></dependencies>'
    )
    assert alice.push(secret, nupkg("Web.Json", "1.0.0", description="Reads &lt;b&gt;JSON&lt;/b&gt;")) == 201
    assert alice.push(secret, nupkg("Web.Json", "1.1.0", extra=deps, files={"README.md": readme})) == 201
    assert alice.push(secret, nupkg("Web.Json", "2.0.0-rc.1")) == 201
    assert alice.push(secret, nupkg("Other.Thing", "1.0.0")) == 201
    home = _text(alice.get("/").text)
    assert "2 packages" in home and "Web.Json" in home and "Other.Thing" in home
    found = alice.get("/packages?q=json").text
    assert "1 package found" in _text(found) and "Other.Thing" not in found
    first = alice.get("/packages/Web.Json/1.0.0").text
    assert "<b>JSON</b>" not in first and "Reads &lt;b&gt;JSON&lt;/b&gt;" in first
    assert "No package matches" in alice.get("/packages?q=zzz").text
    page = alice.get("/packages/web.json").text  # ids are case-insensitive; the stable version is the default
    text = _text(page)
    assert "Web.Json 1.1.0" in text
    assert 'value="nuget install Web.Json -Version 1.1.0"' in page
    assert "Dep.One (>= 1.2.0)" in text and "Dep.Two (>= 2.0.0 && < 3.0.0)" in text
    assert (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in page and "<script>alert" not in page
    )
    assert '<a href="https://example.test/web-json" rel="nofollow noopener noreferrer">' in page
    assert "Owners alice" in text and "Authors Ann Author" in text
    versions_table = page[page.index('id="versions-heading"') : page.index("</table>")]
    versions = re.findall(r'<a href="/packages/Web.Json/([^"]+)">', versions_table)
    assert versions == ["2.0.0-rc.1", "1.1.0", "1.0.0"]
    assert '<a href="/packages/Web.Json/owners">Manage owners</a>' in page  # alice owns it
    assert "Web.Json 2.0.0-rc.1 Prerelease" in _text(alice.get("/packages/Web.Json/2.0.0-rc.1").text)
    alice.submit("/account/packages", "/account/packages/Web.Json/1.0.0/unlist", {})
    unlisted = _text(alice.get("/packages/Web.Json/1.0.0").text)
    assert "This version is unlisted" in unlisted
    assert "1.0.0 (unlisted)" in unlisted
    assert "1.0.0 (unlisted)" in _text(alice.get("/packages/Web.Json").text)  # to its owner, marked
    stranger = TestClient(alice.client.app, base_url="http://127.0.0.1")
    assert "1.0.0" not in re.findall(
        r'<a href="/packages/Web.Json/([^"]+)">', stranger.get("/packages/Web.Json").text
    )
    for missing in ("/packages/Nope", "/packages/Web.Json/9.9.9", "/packages/Web.Json/not-a-version"):
        assert alice.get(missing).status_code == 404


def test_settings_change_password_and_email(alice: Site) -> None:
    other = TestClient(alice.client.app, base_url="http://127.0.0.1")
    other_site = Site(other, alice.core, alice.settings)
    other_site.sign_in("alice")  # a second browser
    wrong = alice.submit(
        "/account",
        "/account/password",
        {"current": "not my password", "password": "new password 12345", "confirm": "new password 12345"},
    )
    assert wrong.status_code == 400 and field_errors(wrong.text) == {
        "password_current": "Your current password is wrong"
    }
    mismatch = alice.submit(
        "/account",
        "/account/password",
        {"current": PASSWORD, "password": "new password 12345", "confirm": "x"},
    )
    assert field_errors(mismatch.text) == {"password_confirm": "The passwords do not match"}
    response = alice.submit(
        "/account",
        "/account/password",
        {"current": PASSWORD, "password": "new password 12345", "confirm": "new password 12345"},
        follow=True,
    )
    assert "Your password was changed" in response.text
    assert alice.core.accounts.authenticate("alice", "new password 12345") is not None
    assert alice.core.accounts.authenticate("alice", PASSWORD) is None
    assert other_site.get("/account", follow_redirects=False).status_code == 303  # signed out there
    assert alice.get("/account").status_code == 200  # not here
    bad = alice.submit("/account", "/account/email", {"current": "new password 12345", "email": "nope"})
    assert field_errors(bad.text) == {"email_email": "'nope' is not a valid email address"}
    response = alice.submit(
        "/account",
        "/account/email",
        {"current": "new password 12345", "email": "alice@new.example"},
        follow=True,
    )
    assert (
        "Your email address is now alice@new.example; you were signed out everywhere else." in response.text
    )
    assert alice.core.accounts.authenticate("alice@new.example", "new password 12345") is not None


def test_a_refused_email_change_keeps_the_typed_address(alice: Site) -> None:
    wrong = alice.submit(
        "/account", "/account/email", {"current": "not my password", "email": "a@new.example"}
    )
    assert field_errors(wrong.text) == {"email_current": "Your current password is wrong"}
    assert re.search(r'<input id="new-email" name="email" type="email" value="a@new.example"', wrong.text)
    bad = alice.submit("/account", "/account/email", {"current": PASSWORD, "email": "not <an> address"})
    assert 'value="not &lt;an&gt; address"' in bad.text
    assert 'value=""' in alice.get("/account").text  # nothing typed yet: empty


def test_the_recovery_codes_left_warning_shows_only_a_small_count(alice: Site) -> None:
    def warning(query: str) -> str | None:
        found = re.search(
            r'<p class="alert warning" role="status">([^<]*)</p>', alice.get(f"/account?{query}").text
        )
        return unescape(found.group(1)) if found else None

    assert warning("recovery_left=9") == (
        "You signed in with a recovery code: 9 are left. Make new ones below if you lost your phone."
    )
    assert warning("recovery_left=1") is not None and "1 is left" in (warning("recovery_left=1") or "")
    assert warning("recovery_left=0") is not None
    for planted in ("call%20+1-555-0100%20now:%209", "-1", "123", "%EF%BC%99", "9%20", ""):
        assert warning(f"recovery_left={planted}") is None, planted


def test_search_past_the_last_page_says_so_and_links_to_the_last(alice: Site) -> None:
    _, key = alice.create_key(glob="Bulk.*")
    for n in range(23):
        assert alice.push(key, nupkg(f"Bulk.P{n:02}", "1.0.0")) == 201
    first = page_text(alice.get("/packages?q=bulk").text)
    assert "23 packages found" in first and "Page 1 of 2 Next" in first
    second = alice.get("/packages?q=bulk&page=2").text
    assert "Previous Page 2 of 2" in page_text(second) and 'rel="next"' not in second
    past = alice.get("/packages?q=bulk&page=3").text
    text = page_text(past)
    assert "No package matches" not in text
    assert "Page 3 is past the last page of results: go to page 2 ." in text
    assert '<a href="/packages?q=bulk&amp;page=2">go to page 2</a>' in past
    assert re.search(r'<a href="/packages\?q=bulk&amp;page=2" rel="prev">Previous</a>', past)
    assert "No package matches" in page_text(alice.get("/packages?q=nothing-like-it&page=3").text)


def test_a_browser_at_an_unknown_address_gets_the_sites_not_found_page(site: Site) -> None:
    html = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for path in ("/nonexistent", "/packages/", "/orgs/", "/account/apikeys/x/y/z"):
        response = site.client.get(path, headers=html)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert "<h1>Not found</h1>" in response.text and "There is no page at this address" in response.text
    wrong_method = site.client.get("/account/password", headers=html)
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert "<h1>Not found</h1>" in wrong_method.text
    # The feed, the probes and anything but a browser's GET keep their plain answers.
    for method, path, accept in (
        ("GET", "/nonexistent", "*/*"),
        ("GET", "/nonexistent", "application/json"),
        ("GET", "/v3/nonexistent", html["accept"]),
        ("GET", "/v3-flatcontainer/x/index.json", html["accept"]),
        ("GET", "/api/v2/nonexistent/a/b", html["accept"]),
        ("GET", "/private/v3/nonexistent", html["accept"]),
        ("POST", "/health", html["accept"]),
        ("POST", "/nonexistent", html["accept"]),
        ("PUT", "/account/password", html["accept"]),
    ):
        response = site.client.request(method, path, headers={"accept": accept})
        assert response.status_code in (401, 404, 405), (method, path, response.status_code)
        assert response.headers["content-type"].startswith("text/plain"), (method, path)
        assert "<h1>" not in response.text, (method, path)


def test_get_signout_offers_a_sign_out_button(alice: Site) -> None:
    page = alice.get("/signout")
    assert page.status_code == 200
    assert re.search(r'<form method="post" action="/signout"', page.text)
    signed_out = alice.client.post("/signout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert signed_out.status_code == 303
    assert alice.get("/account", follow_redirects=False).status_code == 303  # signed out
    assert "You are not signed in" in page_text(alice.get("/signout").text)


def test_the_headers_sign_in_link_comes_back_to_the_page_and_sign_up_honours_next(site: Site) -> None:
    html = site.get("/packages?q=bulk&page=2").text
    assert '<a href="/signin?next=/packages%3Fq%3Dbulk%26page%3D2">Sign in</a>' in html
    assert 'href="/signup?next=/packages%3Fq%3Dbulk%26page%3D2">Sign up</a>' in html
    assert '<a href="/signin">Sign in</a>' in site.get("/").text  # home: nothing to come back to
    signin = site.get("/signin?next=/packages%3Fq%3Dx").text  # its own next, passed on to sign-up
    assert 'href="/signup?next=/packages%3Fq%3Dx">Sign up</a>' in signin
    signup = site.get("/signup?next=/packages%3Fq%3Dx").text
    assert '<input type="hidden" name="next" value="/packages?q=x">' in signup
    fields = {
        "email": "bob@example.test",
        "password": "a long password 123",
        "confirm": "a long password 123",
    }
    for name, target, back in (
        ("bob", "/packages?q=x", "/packages?q=x"),
        ("dave", "//evil.example/", "/"),  # never another site
        ("erin", "https://evil.example/", "/"),
        ("frank", "", "/account/apikeys"),  # no next: to the new account's API Keys, as before
    ):
        data = {**fields, "username": name, "email": f"{name}@example.test", "next": target}
        made = site.submit("/signup", "/signup", data)
        assert made.status_code == 303 and made.headers["location"] == back, name
        site.submit("/account", "/signout", {})
