"""Private reads in the pages: an org admin makes the org's packages private; a read key from the key form;
what members and outsiders see of a private package, its owners page and links to it."""

from __future__ import annotations

from html import unescape

from web.helpers import Site, nupkg, page_text


def test_an_org_admin_makes_its_packages_private_and_a_collaborator_cannot(alice: Site) -> None:
    alice.core.orgs.create("Contoso", "alice")
    bob = alice.browser("bob")
    alice.core.orgs.add_member("Contoso", "bob", "collaborator")
    assert "readable by everyone the site lets read" in page_text(alice.get("/orgs/Contoso").text)
    done = alice.submit("/orgs/Contoso", "/orgs/Contoso/private", {"private": "on"}, follow=True)
    assert "The packages of Contoso are now private: only its members and their keys can read them." in (
        page_text(done.text)
    )
    assert "Make the packages public" in done.text
    assert "The packages of Contoso are private to its members." in page_text(bob.get("/orgs/Contoso").text)
    refused = bob.submit("/orgs/Contoso", "/orgs/Contoso/private", {"private": "off"})
    assert refused.status_code == 403 and "Only administrators of Contoso" in unescape(refused.text)
    assert alice.core.readers.load_private_ids() == {}  # it owns nothing yet, but stays private
    alice.submit("/orgs/Contoso", "/orgs/Contoso/private", {"private": "off"})
    assert [e.action for e in alice.core.audit.events()].count("org.private") == 2


def test_the_key_form_offers_read_and_the_list_shows_it(alice: Site) -> None:
    data = {"name": "restore", "owner": "alice", "read": "on", "glob": "Contoso.*", "expires": "90"}
    created = alice.submit("/account/apikeys/new", "/account/apikeys", data)
    assert created.status_code == 200, created.text
    assert "Scopes Read packages" in page_text(created.text)
    assert 'id="read"' in alice.get("/account/apikeys/new").text
    (key,) = alice.core.accounts.list_keys("alice")
    assert key.scopes == ["read"]
    assert "Read packages" in page_text(alice.get("/account/apikeys").text)


def test_a_private_package_is_shown_to_members_only_and_linked_only_for_them(alice: Site) -> None:
    core = alice.core
    core.orgs.create("Contoso", "alice")
    _, org_key = core.accounts.create_key("alice", "org", ["push"], ["*"], [], 30, "Contoso")
    assert alice.push(org_key, nupkg("Contoso.Secret", "1.0.0")) == 201
    carol = alice.browser("carol")
    _, carol_key = core.accounts.create_key("carol", "own", ["push"], ["*"], [], 30)
    deps = (
        '<dependencies><dependency id="Contoso.Secret" version="1.0.0" />'
        '<dependency id="Nope.Missing" version="1.0.0" /></dependencies>'
    )
    assert alice.push(carol_key, nupkg("Acme.App", "1.0.0", extra=deps)) == 201
    alice.submit("/orgs/Contoso", "/orgs/Contoso/private", {"private": "on"})  # the server's own process

    assert alice.get("/packages/Contoso.Secret").status_code == 200
    assert 'href="/packages/Contoso.Secret"' in alice.get("/packages?q=contoso").text
    hidden = carol.get("/packages/Contoso.Secret")
    never = carol.get("/packages/Nope.Missing")
    assert hidden.status_code == never.status_code == 404
    assert "There is no package Contoso.Secret on this server." in page_text(hidden.text)
    assert 'href="/packages/Contoso.Secret"' not in carol.get("/packages?q=contoso").text
    owners = carol.get("/packages/Contoso.Secret/owners")
    assert owners.status_code == 404 and "There is no package Contoso.Secret on this server." in owners.text
    assert carol.get("/packages/Acme.App/owners").status_code == 200  # carol's own

    member_view, outsider_view = alice.get("/packages/Acme.App").text, carol.get("/packages/Acme.App").text
    assert '<a href="/packages/Contoso.Secret">Contoso.Secret</a>' in member_view
    for html in (member_view, outsider_view):
        assert "<li>Nope.Missing <span" in html  # never pushed: no link, for anyone
    assert "<li>Contoso.Secret <span" in outsider_view  # as an id never pushed

    # What carol may do to it answers alike for every version and spelling: she learns it is taken, no more.
    for version in ("1.0.0", "7.7.7"):
        refused = carol.submit("/account/packages", f"/account/packages/contoso.secret/{version}/unlist", {})
        assert refused.status_code == 403, refused.text
        assert "You are not an owner of contoso.secret" in unescape(refused.text)
    trusted_only = "/account/trusted-publishing/packages/contoso.secret"
    refused = carol.submit("/account/trusted-publishing", trusted_only, {"trusted_only": "on"})
    assert refused.status_code == 403
    assert "carol is not an owner of contoso.secret" in unescape(refused.text)
    # Nor do her organization list, her activity or the organization's page show it.
    assert carol.get("/orgs/Contoso").status_code == 404
    for path in ("/account/activity", "/account/organizations", "/account/packages"):
        assert "contoso" not in carol.get(path).text.lower(), path


def test_on_a_users_site_the_pages_ask_to_sign_in(make_site: object) -> None:
    site = make_site(read_access="users")  # type: ignore[operator]
    for path in ("/", "/packages", "/packages/Acme.App", "/packages/Acme.App/1.0.0"):
        response = site.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/signin?next="), path
    site.sign_in("alice")
    assert site.get("/packages").status_code == 200


def test_a_new_id_of_a_private_org_is_never_shown_to_outsiders(alice: Site) -> None:
    """The read gate keeps the private ids for a second; a push of a new id (and a switch to private)
    in the server's process makes it read them again at once, so the id is private from its first answer
    (``alice.core`` is another process's: its changes are seen within the second)."""
    core = alice.core
    core.orgs.create("Contoso", "alice")
    _, org_key = core.accounts.create_key("alice", "org", ["push"], ["*"], [], 30, "Contoso")
    assert alice.push(org_key, nupkg("Contoso.Old", "1.0.0")) == 201
    carol = alice.browser("carol")
    flat = "/v3/flatcontainer/{}/index.json"
    assert carol.get(flat.format("contoso.old")).status_code == 200  # the private ids are read now
    alice.submit("/orgs/Contoso", "/orgs/Contoso/private", {"private": "on"})
    assert carol.get(flat.format("contoso.old")).status_code == 404
    assert alice.push(org_key, nupkg("Contoso.New", "1.0.0")) == 201
    assert carol.get(flat.format("contoso.new")).status_code == 404
    assert carol.get("/packages/Contoso.New").status_code == 404
    assert alice.get("/packages/Contoso.New").status_code == 200


def test_answering_an_invitation_does_not_show_a_private_id_to_an_outsider(alice: Site) -> None:
    """The audit's repro: carol posted Accept to /account/invitations/contoso.secret/carol/accept and read
    "carol has no pending invitation to own Contoso.Secret" (the id exists, in its casing), where an id
    never pushed gave "No package 'nope.missing'". Both now read alike, the id as she typed it."""
    core = alice.core
    core.orgs.create("Contoso", "alice")
    _, org_key = core.accounts.create_key("alice", "org", ["push"], ["*"], [], 30, "Contoso")
    assert alice.push(org_key, nupkg("Contoso.Secret", "1.0.0")) == 201
    alice.submit("/orgs/Contoso", "/orgs/Contoso/private", {"private": "on"})
    carol = alice.browser("carol")
    texts = []
    for package_id in ("contoso.secret", "nope.missing"):
        for answer in ("accept", "reject"):
            path = f"/account/invitations/{package_id}/carol/{answer}"
            refused = carol.submit("/account/invitations", path, {})
            assert refused.status_code == 404
            text = page_text(refused.text)
            assert f"carol has no pending invitation to own {package_id}" in text
            texts.append(text.replace(package_id, "ID"))
    assert "Contoso.Secret" not in " ".join(texts) and len(set(texts)) == 1
