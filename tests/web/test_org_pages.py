"""The organization pages over HTTP: the list, creating one, members and roles, leaving, the org's keys."""

from __future__ import annotations

from html import unescape

from starlette.testclient import TestClient

from web.helpers import Site, csrf_of, nupkg, page_text


def members(site: Site, org: str) -> dict[str, str]:
    return {m.name: m.role for m in site.core.orgs.members(org)}


def test_create_an_organization_and_list_it(alice: Site) -> None:
    response = alice.submit("/account/organizations", "/account/organizations", {"name": "Contoso"})
    assert response.status_code == 303 and response.headers["location"].startswith("/orgs/Contoso?")
    created = page_text(alice.get(response.headers["location"]).text)
    assert "Organization Contoso created: you are its administrator." in created
    html = alice.get("/orgs/contoso").text  # names are case-insensitive
    assert "Members Member Role Remove alice (you) Role of alice" in page_text(html)
    assert '<option value="admin" selected>Admin</option>' in html
    assert "Contoso owns no packages yet." in page_text(html)
    listing = page_text(alice.get("/account/organizations").text)
    assert "Organization Your role Contoso Admin" in listing
    assert members(alice, "Contoso") == {"alice": "admin"}

    bad = alice.submit("/account/organizations", "/account/organizations", {"name": "-bad"})
    assert bad.status_code == 400 and "organization name is 1-64 letters" in unescape(bad.text)
    assert 'aria-invalid="true"' in bad.text and 'value="-bad"' in bad.text
    taken = alice.submit("/account/organizations", "/account/organizations", {"name": "ALICE"})
    assert taken.status_code == 409 and "already taken" in unescape(taken.text)
    assert [o.name for o in alice.core.orgs.all()] == ["Contoso"]


def test_an_admin_adds_members_changes_roles_and_removes_after_confirming(alice: Site) -> None:
    alice.core.orgs.create("Contoso", "alice")
    for name in ("bob", "carol"):
        alice.browser(name)
    page = "/orgs/Contoso"
    added = alice.submit(page, "/orgs/Contoso/members", {"username": "BOB", "role": "collaborator"})
    assert added.status_code == 303 and added.headers["location"].startswith("/orgs/Contoso?")
    assert "bob added to Contoso as collaborator." in page_text(alice.get(added.headers["location"]).text)
    alice.submit(page, "/orgs/Contoso/members", {"username": "carol", "role": "admin"})
    assert members(alice, "Contoso") == {"alice": "admin", "bob": "collaborator", "carol": "admin"}
    text = page_text(alice.get(page).text)
    assert "alice (you) Role of alice Admin Collaborator Change role of alice Remove alice" in text
    assert "bob Role of bob Admin Collaborator Change role of bob Remove bob" in text

    missing = alice.submit(page, "/orgs/Contoso/members", {"username": "nobody", "role": "admin"})
    assert missing.status_code == 404 and "No user named 'nobody'" in unescape(missing.text)
    assert 'value="nobody"' in missing.text  # the form keeps what was typed
    twice = alice.submit(page, "/orgs/Contoso/members", {"username": "bob", "role": "admin"})
    assert twice.status_code == 409 and "bob is already a member of Contoso" in twice.text
    role = alice.submit(page, "/orgs/Contoso/members/bob/role", {"role": "admin"}, follow=True)
    assert "bob is now an admin of Contoso." in role.text
    wrong = alice.submit(page, "/orgs/Contoso/members/bob/role", {"role": "owner"})
    assert wrong.status_code == 400 and "Unknown role" in unescape(wrong.text)
    assert members(alice, "Contoso")["bob"] == "admin"

    confirm = alice.get("/orgs/Contoso/members/bob/remove")
    assert (
        "Remove bob from Contoso?" in confirm.text
        and 'action="/orgs/Contoso/members/bob/remove"' in confirm.text
    )
    assert "bob" in members(alice, "Contoso")  # looking is not removing
    removed = alice.submit(confirm.url.path, "/orgs/Contoso/members/bob/remove", {}, follow=True)
    assert "bob removed from Contoso." in removed.text
    assert members(alice, "Contoso") == {"alice": "admin", "carol": "admin"}
    assert alice.get("/orgs/Contoso/members/bob/remove").status_code == 404  # no longer a member
    events = [e.action for e in alice.core.audit.events(user="Contoso")]
    assert (
        events.count("org.member_add") == 2 and "org.member_role" in events and "org.member_remove" in events
    )


def test_a_collaborator_sees_the_org_but_cannot_manage_it(alice: Site) -> None:
    alice.core.orgs.create("Contoso", "alice")
    bob = alice.browser("bob")
    alice.core.orgs.add_member("Contoso", "bob", "collaborator")
    alice.browser("carol")
    html = bob.get("/orgs/Contoso").text
    text = page_text(html)
    assert "alice Admin bob (you) Collaborator" in text and "You are a collaborator of Contoso" in text
    assert "Add member" not in text and "<select" not in html and "Remove alice" not in text
    assert "Keys of this organization" not in text
    token = csrf_of(html)
    for action, data in (
        ("/orgs/Contoso/members", {"username": "carol", "role": "admin"}),
        ("/orgs/Contoso/members/alice/role", {"role": "collaborator"}),
        ("/orgs/Contoso/members/alice/remove", {}),
    ):
        response = bob.client.post(action, data={"csrf": token, **data})
        assert response.status_code == 403, action
        assert "Only administrators of Contoso can manage its members" in response.text
    assert bob.get("/orgs/Contoso/members/alice/remove").status_code == 403
    assert members(alice, "Contoso") == {"alice": "admin", "bob": "collaborator"}


def test_an_organization_does_not_exist_for_non_members(alice: Site) -> None:
    alice.core.orgs.create("Contoso", "alice")
    carol = alice.browser("carol")
    for path in ("/orgs/Contoso", "/orgs/Nowhere", "/orgs/Contoso/members/alice/remove"):
        response = carol.get(path)
        assert response.status_code == 404, path
    assert "alice" not in carol.get("/orgs/Contoso").text.split("</header>")[1]
    token = csrf_of(carol.get("/account/organizations").text)
    response = carol.client.post(
        "/orgs/Contoso/members", data={"csrf": token, "username": "carol", "role": "admin"}
    )
    assert response.status_code == 404
    assert members(alice, "Contoso") == {"alice": "admin"}
    assert "You are not a member of any organization." in carol.get("/account/organizations").text
    assert alice.get("/orgs/alice").status_code == 404  # a user is not an organization
    anonymous = TestClient(alice.client.app, base_url="http://127.0.0.1")
    signed_out = anonymous.get("/orgs/Contoso", follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/signin?next=/orgs/Contoso"
    root = alice.browser("root", admin=True)  # a site admin who is not a member can manage it
    text = page_text(root.get("/orgs/Contoso").text)
    assert "You are not a member: as a site admin you can manage it." in text and "Add member" in text


def test_org_admins_see_the_org_keys_but_never_a_secret(alice: Site) -> None:
    alice.core.orgs.create("Contoso", "alice")
    bob = alice.browser("bob")
    alice.core.orgs.add_member("Contoso", "bob", "collaborator")
    _, secret = bob.create_key(name="bob ci", owner="Contoso", glob="Contoso.*", unlist="on")
    assert bob.push(secret, nupkg("Contoso.Lib", "1.0.0")) == 201
    key = alice.core.accounts.list_keys("bob")[0]
    _, own = alice.create_key(name="alice personal")  # acts for alice, not for Contoso
    html = alice.get("/orgs/Contoso").text
    text = page_text(html)
    assert "Keys of this organization bob ci Created by bob" in text
    assert (
        "Push new packages and package versions Unlist package Packages Contoso.* Expires Expires in 365 days"
        in text
    )
    assert f"Key id {key.id}" in text and "Last used" in text
    assert "alice personal" not in text
    assert "Packages Contoso.Lib" in text
    for leaked in (secret, own):
        assert leaked.split("_", 2)[2] not in html
    assert "Keys of this organization" not in bob.get("/orgs/Contoso").text


def test_a_member_leaves_but_the_last_admin_cannot(alice: Site) -> None:
    alice.core.orgs.create("Contoso", "alice")
    bob = alice.browser("bob")
    alice.core.orgs.add_member("Contoso", "bob", "collaborator")
    page = page_text(bob.get("/orgs/Contoso").text)
    assert "Leave Contoso" in page
    confirm = bob.get("/orgs/Contoso/members/bob/remove")
    assert "Leave Contoso?" in confirm.text
    assert "API keys you created for it are revoked at once" in confirm.text
    left = bob.submit(confirm.url.path, "/orgs/Contoso/members/bob/remove", {})
    assert left.status_code == 303 and left.headers["location"].startswith("/account/organizations?")
    assert "You left Contoso." in bob.get(left.headers["location"]).text
    assert members(alice, "Contoso") == {"alice": "admin"}
    assert bob.get("/orgs/Contoso").status_code == 404

    refused = alice.submit("/orgs/Contoso/members/alice/remove", "/orgs/Contoso/members/alice/remove", {})
    assert refused.status_code == 409 and "Contoso must keep at least one administrator" in refused.text
    demote = alice.submit("/orgs/Contoso", "/orgs/Contoso/members/alice/role", {"role": "collaborator"})
    assert demote.status_code == 409
    assert members(alice, "Contoso") == {"alice": "admin"}
