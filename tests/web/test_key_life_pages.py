"""A key's whole life in the pages, over HTTP (issue 11): revoked keys shown as such, org admins revoking,
expiring and expired keys and their renewal, unique names, and the site admin's Users page."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

from sqlalchemy import update

from nugat.clock import utcnow
from nugat.db.models import ApiKey
from web.helpers import PASSWORD, Site, field_errors, nupkg, page_text, secret_of


def card(html: str, key_id: str) -> str:
    """The text of one key's card on a page (up to the next card, or the end of the page)."""
    start = html.index(f'data-key-id="{key_id}"')
    end = html.find('<li class="card key', start)
    return page_text(html[start : end if end > 0 else len(html)])


def org_with_bob(alice: Site) -> Site:
    """Contoso (alice admin, bob collaborator); bob's browser."""
    alice.core.orgs.create("Contoso", "alice")
    bob = alice.browser("bob")
    alice.core.orgs.add_member("Contoso", "bob", "collaborator")
    return bob


def test_a_member_who_leaves_sees_their_org_key_revoked_with_the_reason(alice: Site) -> None:
    bob = org_with_bob(alice)
    _, secret = bob.create_key(name="contoso ci", owner="Contoso", glob="Contoso.*")
    assert bob.push(secret, nupkg("Contoso.Lib", "1.0.0")) == 201
    [key] = bob.core.accounts.list_keys("bob")
    removed = alice.submit("/orgs/Contoso/members/bob/remove", "/orgs/Contoso/members/bob/remove", {})
    assert removed.status_code == 303
    alice.core.orgs.add_member("Contoso", "bob", "collaborator")  # re-added: the key stays revoked
    html = bob.get("/account/apikeys").text
    text = card(html, key.id)
    assert "contoso ci Revoked" in text and "bob is no longer a member of Contoso" in text
    assert "Delete contoso ci" in text and "Edit" not in text and "Regenerate" not in text
    assert bob.get(f"/account/apikeys/{key.id}/edit").status_code == 409
    refused = bob.get(f"/account/apikeys/{key.id}/regenerate")
    assert refused.status_code == 409 and "cannot be regenerated" in unescape(refused.text)
    response = bob.client.put(
        "/api/v2/package/",
        files={"package": ("p.nupkg", nupkg("Contoso.Lib", "1.0.1"), "application/octet-stream")},
        headers={"X-NuGet-ApiKey": secret},
    )
    assert response.status_code == 403
    assert "bob is no longer a member of Contoso" in response.headers["x-nuget-warning"]
    deleted = bob.submit(f"/account/apikeys/{key.id}/delete", f"/account/apikeys/{key.id}/delete", {})
    assert deleted.status_code == 303 and bob.core.accounts.list_keys("bob") == []


def test_an_org_admin_revokes_a_members_key_on_the_org_page(alice: Site) -> None:
    bob = org_with_bob(alice)
    _, secret = bob.create_key(name="bob ci", owner="Contoso", glob="Contoso.*")
    [key] = bob.core.accounts.list_keys("bob")
    page = alice.get("/orgs/Contoso").text
    assert f'href="/orgs/Contoso/keys/{key.id}/revoke"' in page
    assert f"/orgs/Contoso/keys/{key.id}/revoke" not in bob.get("/orgs/Contoso").text  # collaborators: no
    confirm = alice.get(f"/orgs/Contoso/keys/{key.id}/revoke")
    assert "Revoke API key “bob ci” of bob?" in unescape(confirm.text)
    forbidden = bob.submit("/orgs/Contoso", f"/orgs/Contoso/keys/{key.id}/revoke", {})
    assert forbidden.status_code == 403 and "Only administrators of Contoso" in unescape(forbidden.text)
    done = alice.submit(f"/orgs/Contoso/keys/{key.id}/revoke", f"/orgs/Contoso/keys/{key.id}/revoke", {})
    assert done.status_code == 303
    assert "API key 'bob ci' of Contoso revoked." in unescape(alice.get(done.headers["location"]).text)
    assert "revoked by alice, an administrator of Contoso" in card(alice.get("/orgs/Contoso").text, key.id)
    assert f"/orgs/Contoso/keys/{key.id}/revoke" not in alice.get("/orgs/Contoso").text
    assert "revoked by alice, an administrator of Contoso" in card(bob.get("/account/apikeys").text, key.id)
    assert bob.push(secret, nupkg("Contoso.Lib", "1.0.0")) == 403
    [event] = [e for e in alice.core.audit.events() if e.action == "key.revoke"]
    assert (event.actor, event.account, event.key_id) == ("alice", "Contoso", key.id)


def test_editing_an_org_key_lists_the_orgs_packages(alice: Site) -> None:
    bob = org_with_bob(alice)
    _, secret = alice.create_key(name="org", owner="Contoso", glob="Contoso.*")
    assert alice.push(secret, nupkg("Contoso.Lib", "1.0.0")) == 201
    bob.create_key(name="bob org", owner="Contoso", glob="Contoso.*")
    [key] = bob.core.accounts.list_keys("bob")
    form = bob.get(f"/account/apikeys/{key.id}/edit").text
    assert 'value="Contoso.Lib"' in form and "has no packages yet" not in form


def test_expiring_and_expired_keys_are_marked_and_renewed_by_regenerate(alice: Site) -> None:
    _, soon_secret = alice.create_key(name="soon", expires="90")
    _, old_secret = alice.create_key(name="old", expires="180")
    keys = {k.name: k for k in alice.core.accounts.list_keys("alice")}
    with alice.core.db.session() as s:
        s.execute(update(ApiKey).where(ApiKey.name == "soon").values(expires_at=utcnow() + timedelta(days=5)))
        s.execute(update(ApiKey).where(ApiKey.name == "old").values(expires_at=utcnow() - timedelta(days=1)))
    html = alice.get("/account/apikeys").text
    soon = card(html, keys["soon"].id)
    assert "Expires in 5 days" in soon and "Regenerate soon" in soon and "Edit soon" in soon
    assert re.search(rf'data-key-id="{keys["soon"].id}".*?<mark>', html, re.S)
    old = card(html, keys["old"].id)
    assert "old Expired" in old and "Regenerate old" in old and "Delete old" in old and "Edit old" not in old
    assert alice.push(old_secret, nupkg("Old.Lib", "1.0.0")) == 403
    confirm = alice.get(f"/account/apikeys/{keys['old'].id}/regenerate")
    assert "it will expire 180 days from now" in page_text(confirm.text)
    answer = alice.submit(
        f"/account/apikeys/{keys['old'].id}/regenerate", f"/account/apikeys/{keys['old'].id}/regenerate", {}
    )
    assert answer.status_code == 200
    renewed = secret_of(answer.text)
    [view] = [k for k in alice.core.accounts.list_keys("alice") if k.name == "old"]
    assert view.state == "active" and abs(view.expires - (utcnow() + timedelta(days=180))) < timedelta(
        minutes=5
    )
    assert alice.push(renewed, nupkg("Old.Lib", "1.0.0")) == 201
    assert alice.push(soon_secret, nupkg("Soon.Lib", "1.0.0")) == 201


def test_key_names_are_unique_per_user(alice: Site) -> None:
    alice.create_key(name="ci")
    response = alice.submit(
        "/account/apikeys/new",
        "/account/apikeys",
        {"name": "CI", "owner": "alice", "push": "on", "push_kind": "push", "glob": "*", "expires": "365"},
    )
    assert response.status_code == 409
    assert field_errors(response.text) == {
        "name": "alice already has an API key named 'CI': choose another name"
    }
    assert [k.name for k in alice.core.accounts.list_keys("alice")] == ["ci"]


def test_a_key_name_with_a_control_character_is_refused_beside_the_name(alice: Site) -> None:
    for name, shown in (("ci\x00", "U+0000"), ("ci\r\nprod", "U+000D and U+000A")):
        response = alice.submit(
            "/account/apikeys/new",
            "/account/apikeys",
            {
                "name": name,
                "owner": "alice",
                "push": "on",
                "push_kind": "push",
                "glob": "*",
                "expires": "365",
            },
        )
        assert response.status_code == 400
        assert field_errors(response.text) == {
            "name": f"A key name cannot contain control characters such as line breaks or tabs ({shown})"
        }
    assert alice.core.accounts.list_keys("alice") == []


def test_site_admins_list_search_disable_and_enable_users(make_site: object) -> None:
    site: Site = make_site()  # type: ignore[operator]
    admin = site.browser("root", admin=True)
    bob = site.browser("bob")
    site.browser("carol")
    _, secret = bob.create_key(name="bob ci", owner="bob")
    assert bob.get("/admin/users").status_code == 403
    assert 'href="/admin/users"' in admin.get("/").text and 'href="/admin/users"' not in bob.get("/").text
    listing = page_text(admin.get("/admin/users").text)
    assert "alice alice@example.test User Active" in listing and "root (you)" in listing
    found = page_text(admin.get("/admin/users?q=CAR").text)
    assert "carol" in found and "bob" not in found
    assert "Disable bob?" in admin.get("/admin/users/bob/disable").text
    done = admin.submit("/admin/users", "/admin/users/bob/disable", {})
    assert done.status_code == 303
    assert "bob disabled" in page_text(admin.get(done.headers["location"]).text)
    assert "bob bob@example.test User Disabled since" in page_text(admin.get("/admin/users").text)
    # bob's session ends at its next request, his key is dead, and signing in says why
    assert bob.get("/account/apikeys", follow_redirects=False).headers["location"].startswith("/signin")
    assert bob.push(secret, nupkg("Bob.Lib", "1.0.0")) == 403
    signin = bob.submit("/signin", "/signin", {"login": "bob", "password": PASSWORD})
    assert signin.status_code == 403 and "The account bob is disabled" in unescape(signin.text)
    wrong = bob.submit("/signin", "/signin", {"login": "bob", "password": "not the password at all"})
    assert "disabled" not in unescape(wrong.text)  # only whoever knows the password learns it
    self_disable = admin.submit("/admin/users", "/admin/users/root/disable", {})
    assert (
        self_disable.status_code == 403
        and "You cannot disable or delete your own account here" in self_disable.text
    )
    enabled = admin.submit("/admin/users", "/admin/users/bob/enable", {})
    assert enabled.status_code == 303
    bob.sign_in("bob")
    assert bob.push(secret, nupkg("Bob.Lib", "1.0.0")) == 403  # revoked for good
    assert "bob's account was disabled" in card(
        bob.get("/account/apikeys").text, bob.core.accounts.list_keys("bob")[0].id
    )
    actions = [e.action for e in reversed(site.core.audit.events()) if e.action.startswith("account.")]
    assert actions == ["account.disable", "account.enable"]
