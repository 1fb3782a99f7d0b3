"""The pages' details a demanding user checks, over HTTP: notices that name what changed (and cannot be
forged by a link), error summaries linked to their fields on every form, the key form's expiration and
Push choices, glob and sign-up messages, the sole administrator of an org, unlisted versions shown to
owners, Regenerate asking first, and the favicon."""

from __future__ import annotations

import re
import struct
from html import unescape
from urllib.parse import urlencode

from starlette.testclient import TestClient

from nugat.keys import Scope, scope_actions
from web.helpers import PASSWORD, Site, csrf_of, field_errors, nupkg, page_text

NEW_KEY = "/account/apikeys/new"


def notice(html: str) -> str | None:
    found = re.search(r'<p class="notice" role="status">([^<]*)</p>', html)
    return unescape(found.group(1)) if found else None


def summary(html: str) -> list[tuple[str | None, str]]:
    """The error summary's items: (the id its link goes to, or None for an unlinked item; its text)."""
    found = re.search(r'<div class="error-summary" id="error-summary"([^>]*)>(.*?)</div>', html, re.S)
    assert found, f"no error summary in:\n{html[:3000]}"
    assert 'tabindex="-1"' in found.group(1) and "autofocus" in found.group(1)  # it takes the focus
    items = re.findall(r"<li>(.*?)</li>", found.group(2), re.S)
    linked = [re.fullmatch(r'<a href="#([\w-]+)">(.*)</a>', item, re.S) for item in items]
    return [
        (m.group(1), unescape(m.group(2))) if m else (None, unescape(item))
        for m, item in zip(linked, items, strict=True)
    ]


def assert_links_to_fields(html: str, expected: list[tuple[str | None, str]]) -> None:
    """The summary lists ``expected`` in order, and every link goes to an element of the page."""
    items = summary(html)
    assert len(items) == len(expected), items
    shown = [(target, text[: len(want)]) for (target, text), (_, want) in zip(items, expected, strict=True)]
    assert shown == expected
    for target, _ in items:
        if target is not None:
            assert re.search(rf'\bid="{target}"', html.split('id="error-summary"', 1)[1]), target


# --- notices -----------------------------------------------------------------------------------------


def test_a_notice_shows_only_when_this_visitor_was_sent_it(alice: Site) -> None:
    alice.create_key(name="ci")
    key = alice.core.accounts.list_keys("alice")[0]
    deleted = alice.submit(f"/account/apikeys/{key.id}/delete", f"/account/apikeys/{key.id}/delete", {})
    location = deleted.headers["location"]
    assert deleted.status_code == 303 and location.startswith("/account/apikeys?")
    assert notice(alice.get(location).text) == "API key 'ci' deleted."
    forged = "/account/apikeys?" + urlencode({"notice": "API key 'prod' deleted.", "sig": "0" * 32})
    assert notice(alice.get(forged).text) is None
    unsigned = "/account/apikeys?" + urlencode({"notice": "Your account is locked: call 555-0100"})
    assert notice(alice.get(unsigned).text) is None
    bob = alice.browser("bob")  # alice's link, opened in bob's session, says nothing to him
    assert notice(bob.get(location).text) is None
    assert "API key" not in page_text(bob.get(location).text).split("API Keys", 2)[-1].split("An API key")[0]


def test_membership_notices_name_the_member_the_org_and_the_role(alice: Site) -> None:
    alice.core.orgs.create("Contoso", "alice")
    alice.browser("bob")
    added = alice.submit(
        "/orgs/Contoso", "/orgs/Contoso/members", {"username": "BOB", "role": "collaborator"}
    )
    assert notice(alice.get(added.headers["location"]).text) == "bob added to Contoso as collaborator."
    role = alice.submit("/orgs/Contoso", "/orgs/Contoso/members/bob/role", {"role": "admin"}, follow=True)
    assert notice(role.text) == "bob is now an admin of Contoso."
    removed = alice.submit("/orgs/Contoso", "/orgs/Contoso/members/bob/remove", {}, follow=True)
    assert notice(removed.text) == "bob removed from Contoso."
    created = alice.submit(
        "/account/organizations", "/account/organizations", {"name": "Fabrikam"}, follow=True
    )
    assert notice(created.text) == "Organization Fabrikam created: you are its administrator."


def test_unlist_relist_and_edit_notices_name_the_version_and_the_key(alice: Site) -> None:
    _, secret = alice.create_key(name="ci")
    assert alice.push(secret, nupkg("Named.Lib", "1.0.0")) == 201
    unlisted = alice.submit("/account/packages", "/account/packages/Named.Lib/1.0.0/unlist", {}, follow=True)
    assert notice(unlisted.text) == "Named.Lib 1.0.0 unlisted: it no longer shows in search."
    relisted = alice.submit("/account/packages", "/account/packages/Named.Lib/1.0.0/relist", {}, follow=True)
    assert notice(relisted.text) == "Named.Lib 1.0.0 listed again."
    key = alice.core.accounts.list_keys("alice")[0]
    edit = f"/account/apikeys/{key.id}/edit"
    saved = alice.submit(
        edit, edit, {"name": "ci two", "push": "on", "push_kind": "push", "glob": "*"}, follow=True
    )
    assert notice(saved.text) == "API key 'ci two' saved."


def test_the_already_sent_warning_looks_like_a_warning(alice: Site) -> None:
    html = alice.get(NEW_KEY).text
    form = {"csrf": csrf_of(html), "name": "twice", "owner": "alice", "push": "on", "push_kind": "push"}
    form |= {"glob": "*", "expires": "90", "once": re.findall(r'name="once" value="([^"]+)"', html)[0]}
    alice.client.post("/account/apikeys", data=form)
    again = alice.client.post("/account/apikeys", data=form, follow_redirects=True)
    warning = re.search(r'<p class="alert warning" role="status">([^<]*)</p>', again.text)
    assert warning and "This form was already sent once" in unescape(warning.group(1))
    assert notice(again.text) is None  # not in the success style


# --- the key form --------------------------------------------------------------------------------------


def test_without_push_its_two_kinds_are_ignored(alice: Site) -> None:
    response = alice.submit(
        NEW_KEY,
        "/account/apikeys",
        {
            "name": "unlister",
            "owner": "alice",
            "push_kind": "no such kind",
            "unlist": "on",
            "glob": "*",
            "expires": "90",
        },
    )
    assert response.status_code == 200, field_errors(response.text)
    assert alice.core.accounts.list_keys("alice")[0].scopes == ["unlist"]
    refused = alice.submit(
        NEW_KEY, "/account/apikeys", {"name": "", "push_kind": "push-version", "unlist": "on", "glob": "*"}
    )
    assert refused.status_code == 400
    assert not re.search(r'id="push" name="push" value="on" checked', refused.text)  # Push stays off
    # site.js disables the two kinds while Push is unchecked (tests/browser); the page names them for it
    assert 'id="push-kinds"' in refused.text and refused.text.count('name="push_kind"') == 2


def test_the_key_form_offers_every_scope_under_its_checkbox(alice: Site) -> None:
    html = alice.get(NEW_KEY).text
    for action, kinds in scope_actions().items():
        assert f'<input type="checkbox" id="{action.name}" name="{action.name}" value="on"' in html
        assert f'<label for="{action.name}">{action.label}</label>' in html
        radios = re.findall(rf'name="{action.name}_kind" value="([^"]+)"', html)
        assert radios == ([scope.value for scope in kinds] if len(kinds) > 1 else [])
    assert all(f">{scope.label}</label>" in html for scope in Scope)


def test_a_refused_expiration_shows_the_choice_or_the_default_never_one_day(alice: Site) -> None:
    base = {"owner": "alice", "push": "on", "push_kind": "push", "glob": "*"}
    odd = alice.submit(NEW_KEY, "/account/apikeys", {**base, "name": "k", "expires": "30"})
    assert field_errors(odd.text) == {
        "expires": "Choose an expiration from the list: 1, 90, 180, 270 or 365 days"
    }
    assert re.findall(r'<option value="(\d+)" selected>', odd.text) == ["365"]
    kept = alice.submit(NEW_KEY, "/account/apikeys", {**base, "name": "", "expires": "90"})
    assert set(field_errors(kept.text)) == {"name"}
    assert re.findall(r'<option value="(\d+)" selected>', kept.text) == ["90"]
    garbage = alice.submit(NEW_KEY, "/account/apikeys", {**base, "name": "", "expires": "soon"})
    assert re.findall(r'<option value="(\d+)" selected>', garbage.text) == ["365"]
    assert alice.core.accounts.list_keys("alice") == []


def test_every_bad_glob_is_reported_at_once_as_a_sentence(alice: Site) -> None:
    response = alice.submit(
        NEW_KEY,
        "/account/apikeys",
        {
            "name": "k",
            "owner": "alice",
            "push": "on",
            "push_kind": "push",
            "glob": "Good.*, a/b, c!",
            "expires": "90",
        },
    )
    assert field_errors(response.text) == {
        "glob": "2 glob patterns are not valid: 'a/b' contains '/'; 'c!' contains '!'. "
        "A pattern uses only letters, digits, '.', '-', '_' and '*', at most 100 characters."
    }


# --- error summaries -------------------------------------------------------------------------------------


def test_the_key_forms_summarize_their_errors_with_links_to_the_fields(alice: Site) -> None:
    response = alice.submit(
        NEW_KEY,
        "/account/apikeys",
        {"name": "", "owner": "nobody", "push": "on", "push_kind": "x", "glob": "a/b", "expires": "2"},
    )
    assert_links_to_fields(
        response.text,
        [
            ("name", "Give the key a name"),
            ("owner", "Choose a package owner"),
            ("push", "Choose what the key may push"),
            ("glob", "The glob pattern 'a/b' contains '/'."),
            ("expires", "Choose an expiration from the list"),
        ],
    )
    assert "There are 5 problems" in response.text
    alice.create_key(name="ci")
    key = alice.core.accounts.list_keys("alice")[0]
    edit = f"/account/apikeys/{key.id}/edit"
    refused = alice.submit(edit, edit, {"name": "ci", "push": "on", "push_kind": "push", "glob": ""})
    assert_links_to_fields(refused.text, [("glob", "Give a glob pattern or select at least one package")])
    assert "There is a problem" in refused.text
    assert 'id="error-summary"' not in alice.get(edit).text  # only after a refusal


def test_account_forms_summarize_their_errors(site: Site) -> None:
    signup = site.submit(
        "/signup", "/signup", {"username": "-x", "email": "", "password": "short", "confirm": "y"}
    )
    assert_links_to_fields(
        signup.text,
        [
            (
                "username",
                "A username is 1-64 letters, digits, '.', '-' or '_', starting with a letter or digit",
            ),
            ("email", "Enter an email address"),
            ("password", "The password must be at least 10 characters long"),
            ("confirm", "The passwords do not match"),
        ],
    )
    taken = site.submit(
        "/signup",
        "/signup",
        {"username": "alice", "email": "a@example.test", "password": PASSWORD, "confirm": PASSWORD},
    )
    assert_links_to_fields(taken.text, [("username", "That username is already taken")])
    signin = site.submit("/signin", "/signin", {"login": "alice", "password": "wrong password"})
    assert_links_to_fields(signin.text, [("login", "Wrong username, email or password")])
    after_summary = signin.text.split('id="error-summary"', 1)[1].split("</div>", 1)[1]
    assert " autofocus" not in after_summary  # the summary, not the login field, has the focus
    site.sign_in("alice")
    email = site.submit("/account", "/account/email", {"email": "nope", "current": PASSWORD})
    assert_links_to_fields(email.text, [("new-email", "'nope' is not a valid email address")])
    password = site.submit(
        "/account", "/account/password", {"current": "x", "password": "short", "confirm": "z"}
    )
    assert_links_to_fields(
        password.text,
        [
            ("password-new", "The password must be at least"),
            ("password-confirm", "The passwords do not match"),
        ],
    )


def test_org_owner_and_prefix_forms_summarize_their_errors(alice: Site) -> None:
    org = alice.submit("/account/organizations", "/account/organizations", {"name": "-bad"})
    assert_links_to_fields(org.text, [("name", "An organization name is 1-64 letters")])
    alice.core.orgs.create("Contoso", "alice")
    member = alice.submit("/orgs/Contoso", "/orgs/Contoso/members", {"username": "nobody", "role": "admin"})
    assert_links_to_fields(member.text, [("username", "No user named 'nobody'")])
    assert (
        'id="username" name="username" value="nobody"' in member.text and 'aria-invalid="true"' in member.text
    )
    demote = alice.submit("/orgs/Contoso", "/orgs/Contoso/members/alice/role", {"role": "collaborator"})
    assert_links_to_fields(demote.text, [(None, "Contoso must keep at least one administrator")])
    _, secret = alice.create_key(name="ci")
    assert alice.push(secret, nupkg("Shared.Lib", "1.0.0")) == 201
    owners = "/packages/Shared.Lib/owners"
    alice.browser("bob")
    invited = alice.submit(owners, owners, {"owner": "BOB"}, follow=True)
    assert notice(invited.text) == (
        "bob was invited to co-own Shared.Lib: the invitation waits on their Invitations page."
    )
    invite = alice.submit(owners, owners, {"owner": "nobody"})
    assert_links_to_fields(invite.text, [("owner", "No account named 'nobody'")])
    root = alice.browser("root", admin=True)
    bad = root.submit("/admin/prefixes", "/admin/prefixes", {"prefix": "no spaces *", "owners": ""})
    assert_links_to_fields(bad.text, [("prefix", "Invalid prefix"), ("owners", "Name at least one owner")])
    nobody = root.submit("/admin/prefixes", "/admin/prefixes", {"prefix": "Fab.*", "owners": "nobody"})
    assert_links_to_fields(nobody.text, [("owners", "No account named 'nobody'")])


def test_sign_up_messages(site: Site) -> None:
    response = site.submit(
        "/signup", "/signup", {"username": "", "email": "", "password": PASSWORD, "confirm": PASSWORD}
    )
    assert field_errors(response.text) == {
        "username": "A username is 1-64 letters, digits, '.', '-' or '_', starting with a letter or digit",
        "email": "Enter an email address",
    }
    bad = site.submit(
        "/signup",
        "/signup",
        {"username": "ok", "email": "not-an-email", "password": PASSWORD, "confirm": PASSWORD},
    )
    assert field_errors(bad.text) == {"email": "'not-an-email' is not a valid email address"}


# --- organizations, packages, keys, favicon ---------------------------------------------------------------


def test_the_sole_admin_is_offered_neither_remove_nor_leave(alice: Site) -> None:
    alice.core.orgs.create("Contoso", "alice")
    alice.browser("bob")
    alice.core.orgs.add_member("Contoso", "bob", "collaborator")
    html = alice.get("/orgs/Contoso").text
    assert "/orgs/Contoso/members/alice/remove" not in html  # neither Leave nor Remove alice
    assert 'href="/orgs/Contoso/members/bob/remove"' in html
    assert "You are the only administrator of Contoso" in page_text(html)
    refused = alice.get("/orgs/Contoso/members/alice/remove")
    assert refused.status_code == 409 and "Contoso must keep at least one administrator" in refused.text
    alice.core.orgs.change_role("Contoso", "bob", "admin")
    html = alice.get("/orgs/Contoso").text
    assert (
        page_text(html).count("Leave Contoso") == 1
        and 'href="/orgs/Contoso/members/alice/remove">Remove' in html
    )
    assert alice.get("/orgs/Contoso/members/alice/remove").status_code == 200


def test_the_last_owner_of_a_package_is_not_offered_remove(alice: Site) -> None:
    _, secret = alice.create_key(name="ci")
    assert alice.push(secret, nupkg("Shared.Lib", "1.0.0")) == 201
    owners = "/packages/Shared.Lib/owners"
    assert "/owners/alice/remove" not in alice.get(owners).text and "Last owner" in alice.get(owners).text
    alice.browser("bob")
    alice.core.owners.add("Shared.Lib", "bob")
    html = alice.get(owners).text
    assert 'href="/packages/Shared.Lib/owners/alice/remove"' in html
    assert 'href="/packages/Shared.Lib/owners/bob/remove"' in html


def test_owners_and_their_org_members_see_unlisted_versions_marked(alice: Site) -> None:
    alice.core.orgs.create("Contoso", "alice")
    bob, carol = alice.browser("bob"), alice.browser("carol")
    alice.core.orgs.add_member("Contoso", "bob", "collaborator")
    _, secret = alice.create_key(name="org ci", owner="Contoso", glob="Contoso.*", unlist="on")
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        assert alice.push(secret, nupkg("Contoso.Lib", version)) == 201
    for version in ("1.0.0", "1.1.0"):
        response = alice.client.delete(
            f"/api/v2/package/Contoso.Lib/{version}", headers={"X-NuGet-ApiKey": secret}
        )
        assert response.status_code == 204

    def versions(site: Site | TestClient) -> list[str]:
        html = site.get("/packages/Contoso.Lib").text
        table = html[html.index('id="versions-heading"') : html.index("</table>")]
        return re.findall(r"<td><a [^>]*>([^<]+)</a>( \(unlisted\))?</td>", table)  # type: ignore[return-value]

    marked = [("2.0.0", ""), ("1.1.0", " (unlisted)"), ("1.0.0", " (unlisted)")]
    assert versions(alice) == marked  # alice administers Contoso, the owner
    assert versions(bob) == marked  # bob is a collaborator of Contoso: he may unlist them too
    assert versions(carol) == [("2.0.0", "")]
    assert versions(TestClient(alice.client.app, base_url="http://127.0.0.1")) == [("2.0.0", "")]


def test_regenerate_asks_first(alice: Site) -> None:
    _, secret = alice.create_key(name="ci")
    key = alice.core.accounts.list_keys("alice")[0]
    listing = alice.get("/account/apikeys").text
    assert f'<a class="button" href="/account/apikeys/{key.id}/regenerate">Regenerate' in listing
    assert f'action="/account/apikeys/{key.id}/regenerate"' not in listing  # no one-click form
    confirm = alice.get(f"/account/apikeys/{key.id}/regenerate")
    assert confirm.status_code == 200 and "nugat_" not in confirm.text
    text = page_text(confirm.text)
    assert "Regenerate API key “ci”?" in text and "can no longer push or unlist with it" in text
    assert f'action="/account/apikeys/{key.id}/regenerate"' in confirm.text and 'name="once"' in confirm.text
    assert alice.push(secret, nupkg("Still.Works", "1.0.0")) == 201  # looking is not regenerating
    assert alice.get("/account/apikeys/nosuchkey0000000/regenerate").status_code == 404


def test_a_favicon_is_served_and_linked(site: Site) -> None:
    response = site.get("/favicon.ico")
    assert response.status_code == 200 and response.headers["content-type"] == "image/x-icon"
    assert "max-age" in response.headers["cache-control"]
    reserved, kind, count = struct.unpack("<HHH", response.content[:6])
    assert (reserved, kind) == (0, 1) and count >= 2  # an icon directory of several sizes
    sizes = {struct.unpack("<BB", response.content[6 + 16 * i : 8 + 16 * i]) for i in range(count)}
    assert {(16, 16), (32, 32)} <= sizes
    for i in range(count):  # each image lies inside the file and is a PNG
        length, offset = struct.unpack("<II", response.content[6 + 16 * i + 8 : 6 + 16 * i + 16])
        assert offset + length <= len(response.content)
        assert response.content[offset : offset + 8] == b"\x89PNG\r\n\x1a\n"
    assert site.client.head("/favicon.ico").status_code == 200
    assert '<link rel="icon" href="/favicon.ico"' in site.get("/").text


def test_tables_with_buttons_name_each_cell_for_their_phone_cards(alice: Site) -> None:
    """On a phone these tables become one card per row (site.css): each cell names its column."""
    _, secret = alice.create_key(name="ci")
    assert alice.push(secret, nupkg("Card.Very.Long.Lib", "1.0.0")) == 201
    mine = alice.get("/account/packages").text
    assert '<table class="stacked versions">' in mine
    for label in ("Published", "Downloads", "Status"):
        assert f'<td data-label="{label}">' in mine
    assert '<td class="action">' in mine
    alice.core.orgs.create("Contoso", "alice")
    assert '<table class="stacked members">' in alice.get("/orgs/Contoso").text
    activity = alice.get("/account/activity").text
    assert '<table class="stacked events">' in activity
    for label in ("Action", "By", "Account", "Package", "Key id", "Address", "Details"):
        assert f'data-label="{label}"' in activity
    assert "Card.<wbr>Very.<wbr>Long.<wbr>Lib 1.0.0" in activity  # long ids wrap after their dots
