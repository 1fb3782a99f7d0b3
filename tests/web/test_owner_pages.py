"""Package owners over HTTP: the owners on the package page, Manage owners (invite, cancel, remove) and the
Invitations page (accept, reject), each honoured by the next push."""

from __future__ import annotations

from html import unescape

from sqlalchemy import delete
from starlette.testclient import TestClient

from nugat.db.models import Membership
from nugat.services.actors import resolve
from web.helpers import Site, csrf_of, nupkg, page_text

OWNERS = "/packages/Shared.Lib/owners"


def shared_lib(alice: Site) -> str:
    """alice pushes Shared.Lib 1.0.0; returns her key."""
    _, secret = alice.create_key(name="alice ci")
    assert alice.push(secret, nupkg("Shared.Lib", "1.0.0")) == 201
    return secret


def owners(site: Site) -> list[tuple[str, str]]:
    return [(o.name, o.kind) for o in site.core.owners.of_package("Shared.Lib")]


def test_only_those_who_manage_a_package_see_its_owners_page(alice: Site) -> None:
    shared_lib(alice)
    bob = alice.browser("bob")
    page = alice.get("/packages/shared.lib")
    assert "Owners alice Manage owners" in page_text(page.text)
    assert f'href="{OWNERS}"' in page.text
    assert f'href="{OWNERS}"' not in bob.get("/packages/Shared.Lib").text
    assert "Owners alice" in page_text(bob.get("/packages/Shared.Lib").text)
    anonymous = TestClient(alice.client.app, base_url="http://127.0.0.1")
    assert "Manage owners" not in anonymous.get("/packages/Shared.Lib").text
    assert anonymous.get(OWNERS, follow_redirects=False).headers["location"] == f"/signin?next={OWNERS}"

    refused = bob.get(OWNERS)
    assert refused.status_code == 403 and "Only owners of Shared.Lib can manage its owners" in refused.text
    assert "Pending invitations" not in refused.text
    assert bob.get(f"{OWNERS}/alice/remove").status_code == 403
    assert bob.get("/packages/No.Such/owners").status_code == 404
    token = csrf_of(bob.get("/account/invitations").text)
    for action, data in ((OWNERS, {"owner": "bob"}), (f"{OWNERS}/alice/remove", {})):
        response = bob.client.post(action, data={"csrf": token, **data})
        assert response.status_code == 403, action
    assert owners(alice) == [("alice", "user")]
    assert alice.core.owners.invitations_for_package("Shared.Lib") == []

    text = page_text(alice.get(OWNERS).text)
    assert "Owners Owner Kind Remove alice (you) User Last owner" in text
    assert "No invitation is waiting for an answer." in text
    root = alice.browser("root", admin=True)  # site admins manage every package
    assert root.get(OWNERS).status_code == 200
    assert 'href="/packages/Shared.Lib/owners"' in root.get("/packages/Shared.Lib").text


def test_an_accepted_invitation_makes_a_co_owner_whose_key_then_pushes(alice: Site) -> None:
    shared_lib(alice)
    bob = alice.browser("bob")
    _, bobs_key = bob.create_key(name="bob ci", owner="bob", glob="Shared.*")
    assert bob.push(bobs_key, nupkg("Shared.Lib", "2.0.0")) == 403

    sent = alice.submit(OWNERS, OWNERS, {"owner": "bob"}, follow=True)
    text = page_text(sent.text)
    assert "bob was invited to co-own Shared.Lib: the invitation waits on their Invitations page." in text
    assert "Pending invitations Invited By Sent Cancel bob alice" in text
    assert owners(alice) == [("alice", "user")]  # not an owner until bob accepts
    again = alice.submit(OWNERS, OWNERS, {"owner": "BOB"})
    assert again.status_code == 409 and "bob is already invited to own Shared.Lib" in again.text
    unknown = alice.submit(OWNERS, OWNERS, {"owner": "nobody"})
    assert unknown.status_code == 404 and "No account named 'nobody'" in unescape(unknown.text)
    assert 'value="nobody"' in unknown.text
    mine = alice.submit(OWNERS, OWNERS, {"owner": "alice"})
    assert mine.status_code == 409 and "alice already owns Shared.Lib" in mine.text

    menu = bob.get("/account/packages").text
    assert 'Invitations <span class="count">1<span class="visually-hidden"> pending</span>' in menu
    assert "1 pending invitations" in page_text(menu)
    assert "1 invitation to co-own a package waits for your answer." in page_text(menu)
    assert "pending invitations" not in page_text(alice.get("/account/packages").text)
    html = bob.get("/account/invitations").text
    assert "alice invites you to co-own Shared.Lib" in page_text(html)
    assert bob.push(bobs_key, nupkg("Shared.Lib", "2.0.0")) == 403  # invited is not owning

    accepted = bob.submit("/account/invitations", "/account/invitations/Shared.Lib/bob/accept", {})
    assert accepted.status_code == 303
    assert accepted.headers["location"].startswith("/account/invitations?")
    after = bob.get(accepted.headers["location"]).text
    assert "Invitation accepted: you now co-own Shared.Lib. It is in My packages." in after
    assert "No invitation is waiting for you." in after
    assert 'class="count"' not in after
    assert owners(alice) == [("alice", "user"), ("bob", "user")]
    assert bob.push(bobs_key, nupkg("Shared.Lib", "2.0.0")) == 201
    assert "Shared.Lib" in bob.get("/account/packages").text
    assert "Manage owners" in bob.get("/packages/Shared.Lib").text
    assert "No invitation is waiting for an answer." in alice.get(OWNERS).text
    events = [(e.action, e.actor, e.account) for e in alice.core.audit.events(package="Shared.Lib")]
    assert ("owner.invite", "alice", "bob") in events and ("owner.add", "bob", "bob") in events
    assert {
        e.address for e in alice.core.audit.events(package="Shared.Lib") if e.action.startswith("owner")
    } == {"testclient"}


def test_invitations_can_be_cancelled_or_rejected_and_only_by_the_right_people(alice: Site) -> None:
    shared_lib(alice)
    bob, carol = alice.browser("bob"), alice.browser("carol")
    alice.submit(OWNERS, OWNERS, {"owner": "carol"})
    token = csrf_of(bob.get("/account/invitations").text)
    for answer in ("accept", "reject"):
        response = bob.client.post(f"/account/invitations/Shared.Lib/carol/{answer}", data={"csrf": token})
        assert response.status_code == 403 and "Only carol can" in response.text
    stolen = bob.client.post(f"{OWNERS}/carol/cancel", data={"csrf": token})
    assert stolen.status_code == 403
    assert [i.new_owner for i in alice.core.owners.invitations_for_package("Shared.Lib")] == ["carol"]

    cancelled = alice.submit(OWNERS, f"{OWNERS}/carol/cancel", {}, follow=True)
    assert "The invitation of carol to co-own Shared.Lib was cancelled." in cancelled.text
    assert alice.core.owners.invitations_for_package("Shared.Lib") == []
    gone = carol.submit("/account/invitations", "/account/invitations/Shared.Lib/carol/accept", {})
    assert gone.status_code == 404 and "carol has no pending invitation to own Shared.Lib" in gone.text
    assert owners(alice) == [("alice", "user")]

    alice.submit(OWNERS, OWNERS, {"owner": "carol"})
    rejected = carol.submit(
        "/account/invitations", "/account/invitations/Shared.Lib/carol/reject", {}, follow=True
    )
    assert "Invitation to co-own Shared.Lib rejected." in rejected.text
    assert alice.core.owners.invitations_for_package("Shared.Lib") == []
    assert owners(alice) == [("alice", "user")]


def test_an_organization_invited_answers_through_its_admins(alice: Site) -> None:
    shared_lib(alice)
    bob, carol = alice.browser("bob"), alice.browser("carol")
    alice.core.orgs.create("Fabrikam", "bob")
    alice.core.orgs.add_member("Fabrikam", "carol", "collaborator")
    alice.submit(OWNERS, OWNERS, {"owner": "fabrikam"})
    assert "the organization Fabrikam to co-own Shared.Lib" in page_text(bob.get("/account/invitations").text)
    assert "No invitation is waiting for you." in carol.get("/account/invitations").text
    accepted = bob.submit("/account/invitations", "/account/invitations/Shared.Lib/Fabrikam/accept", {})
    assert accepted.status_code == 303
    assert owners(alice) == [("alice", "user"), ("Fabrikam", "org")]
    assert "Fabrikam Organization" in page_text(alice.get(OWNERS).text)
    assert "Shared.Lib" in page_text(bob.get("/orgs/Fabrikam").text).split("Packages", 1)[1]


def test_removing_an_owner_asks_first_and_the_last_owner_stays(alice: Site) -> None:
    secret = shared_lib(alice)
    bob = alice.browser("bob")
    last = alice.submit(OWNERS, f"{OWNERS}/alice/remove", {})
    assert last.status_code == 409
    assert "alice is the last owner of Shared.Lib and cannot be removed" in last.text
    assert owners(alice) == [("alice", "user")]

    alice.core.owners.add("Shared.Lib", "bob")
    confirm = alice.get(f"{OWNERS}/bob/remove")
    assert "Remove bob as an owner of Shared.Lib?" in confirm.text
    assert f'action="{OWNERS}/bob/remove"' in confirm.text
    assert alice.get(f"{OWNERS}/carol/remove").status_code == 404
    assert owners(alice) == [("alice", "user"), ("bob", "user")]  # looking is not removing
    removed = alice.submit(confirm.url.path, f"{OWNERS}/bob/remove", {}, follow=True)
    assert "bob removed as an owner of Shared.Lib." in removed.text
    assert owners(alice) == [("alice", "user")]
    assert bob.get(OWNERS).status_code == 403

    alice.core.owners.add("Shared.Lib", "bob")
    bye = bob.submit(f"{OWNERS}/bob/remove", f"{OWNERS}/bob/remove", {})  # bob removes himself
    assert bye.status_code == 303 and bye.headers["location"] == "/packages/Shared.Lib"
    assert owners(alice) == [("alice", "user")]
    assert alice.push(secret, nupkg("Shared.Lib", "1.0.1")) == 201


def test_an_invitation_dies_with_its_sender_s_right_to_send_it(alice: Site) -> None:
    """bob, an admin of the owning org, invites himself and carol; removed from the org, neither can accept;
    one whose sender lost the right in another way is refused with the reason when accepted, and dropped."""
    shared_lib(alice)
    bob, carol = alice.browser("bob"), alice.browser("carol")
    alice.core.orgs.create("Contoso", "alice")
    alice.core.orgs.add_member("Contoso", "bob", "admin")
    alice.core.owners.add("Shared.Lib", "Contoso")
    bob.submit(OWNERS, OWNERS, {"owner": "bob"})
    bob.submit(OWNERS, OWNERS, {"owner": "carol"})
    alice.core.orgs.remove_member("Contoso", "bob", by="alice")
    assert "No invitation is waiting for you." in bob.get("/account/invitations").text
    assert "No invitation is waiting for you." in carol.get("/account/invitations").text
    assert "No invitation is waiting for an answer." in alice.get(OWNERS).text
    token = csrf_of(bob.get("/account/invitations").text)
    late = bob.client.post("/account/invitations/Shared.Lib/bob/accept", data={"csrf": token})
    assert late.status_code == 404 and owners(alice) == [("alice", "user"), ("Contoso", "org")]

    # a right lost without the invitation dropped (written straight to the database): refused when accepted
    alice.core.orgs.add_member("Contoso", "bob", "admin")
    bob.submit(OWNERS, OWNERS, {"owner": "carol"})
    with alice.core.db.session() as s:
        s.execute(delete(Membership).where(Membership.member_id == resolve(s, "bob").id))
    refused = carol.submit("/account/invitations", "/account/invitations/Shared.Lib/carol/accept", {})
    assert refused.status_code == 409
    assert (
        "The invitation to own Shared.Lib no longer holds: bob, who sent it, may no longer manage its "
        "owners. Ask a current owner to invite you again." in page_text(refused.text)
    )
    assert "No invitation is waiting for you." in refused.text
    assert owners(alice) == [("alice", "user"), ("Contoso", "org")]


def test_no_one_acts_through_a_disabled_organization_on_the_pages(alice: Site) -> None:
    """The audit's repro: bob, an admin of Contoso (an owner of Shared.Lib), invited carol while Contoso was
    disabled. Now refused, as are unlisting and relisting through it, until a site admin enables it."""
    shared_lib(alice)
    bob = alice.browser("bob")
    alice.browser("carol")
    alice.core.orgs.create("Contoso", "bob")
    alice.core.owners.add("Shared.Lib", "Contoso")
    alice.core.accounts.disable_account("Contoso")
    page = bob.get(OWNERS)
    assert page.status_code == 403
    assert "Contoso is disabled: its administrators cannot manage the owners of Shared.Lib" in page_text(
        page.text
    )
    token = csrf_of(bob.get("/account/invitations").text)
    invited = bob.client.post(OWNERS, data={"csrf": token, "owner": "carol"})
    assert invited.status_code == 403 and alice.core.owners.invitations_for_package("Shared.Lib") == []
    for action in ("unlist", "relist"):
        changed = bob.client.post(f"/account/packages/Shared.Lib/1.0.0/{action}", data={"csrf": token})
        assert changed.status_code == 403, action
        assert "Contoso is disabled: its members cannot unlist or relist Shared.Lib" in page_text(
            changed.text
        )
    assert "Shared.Lib" in page_text(bob.get("/orgs/Contoso").text)  # seeing it is not acting

    alice.core.accounts.enable_account("Contoso")
    assert bob.get(OWNERS).status_code == 200
    assert bob.submit(OWNERS, OWNERS, {"owner": "carol"}).status_code == 303
    assert [i.new_owner for i in alice.core.owners.invitations_for_package("Shared.Lib")] == ["carol"]
