"""A key over its whole life (issue 11): renewal on regenerate, edits that never widen scopes, unique names,
revocation (one key, an org's admin, leaving an org), and users disabled, enabled and deleted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nugat import keys
from nugat.services import INVALID_KEY
from nugat.services.search import Query
from nugat.services.sessions import Sessions
from support.services import ADDRESS, Clock, Site, refused


def key_id(secret: str) -> str:
    parsed = keys.parse_key(secret)
    assert parsed is not None
    return parsed.key_id


def dead(reason: str) -> str:
    return f"^{reason}.*\\. {INVALID_KEY}$"


@pytest.fixture
def contoso(site: Site) -> Site:
    """alice (site admin), bob and carol; the org Contoso (alice admin, bob collaborator)."""
    site.user("alice", admin=True)
    site.users("bob", "carol")
    site.core.orgs.create("Contoso", "alice")
    site.core.orgs.add_member("Contoso", "bob", "collaborator")
    return site


# Renewal ----------------------------------------------------------------------------------------------------


def test_regenerate_renews_for_the_original_duration_even_when_expired(contoso: Site, clock: Clock) -> None:
    accounts = contoso.core.accounts
    view, _ = accounts.create_key("bob", "ci", ["push"], ["*"], [], 90)
    clock.advance(days=100)
    assert accounts.list_keys("bob")[0].state == "expired"
    renewed, new = accounts.regenerate_key("bob", view.id)
    assert renewed.expires == clock.now + timedelta(days=90) and renewed.lifetime_days == 90
    assert not renewed.expired and renewed.state == "active"
    accounts.verify_key(new, ADDRESS)
    [event] = contoso.events("key.regenerate")
    assert event.detail["expires"] == "2026-09-07T12:00:00Z"


def test_the_list_marks_keys_expiring_within_ten_days(contoso: Site, clock: Clock) -> None:
    accounts = contoso.core.accounts
    accounts.create_key("bob", "soon", ["push"], ["*"], [], 30)
    clock.advance(days=19)
    assert accounts.list_keys("bob")[0].state == "active"
    clock.advance(days=2)
    [view] = accounts.list_keys("bob")
    assert (view.state, view.expiring_soon, view.as_json()["state"]) == ("expiring", True, "expiring")


# Edits and names ---------------------------------------------------------------------------------------


def test_edit_changes_packages_never_scopes(contoso: Site) -> None:
    accounts = contoso.core.accounts
    view, secret = accounts.create_key("bob", "ci", ["push-version"], ["Bob.*"], [], None)
    for wider in (["push"], ["push-version", "unlist"], ["unlist"]):
        with refused(400, "A key's scopes cannot change .*create a new key"):
            accounts.edit_key("bob", view.id, scopes=wider)
    edited = accounts.edit_key("bob", view.id, scopes=["push-version"], globs=["Bob.Lib.*"])
    assert (edited.scopes, edited.globs) == (["push-version"], ["Bob.Lib.*"])
    grant, _ = accounts.verify_key(secret, ADDRESS)
    assert grant.scopes == frozenset({"push-version"})


def test_key_names_are_unique_per_user_whatever_their_case(contoso: Site) -> None:
    accounts = contoso.core.accounts
    first, _ = accounts.create_key("bob", "ci", ["push"], ["*"], [], None)
    with refused(409, "bob already has an API key named 'CI'"):
        accounts.create_key("bob", "CI", ["push"], ["*"], [], None, "Contoso")
    accounts.create_key("carol", "ci", ["push"], ["*"], [], None)  # another user may
    other, _ = accounts.create_key("bob", "nightly", ["push"], ["*"], [], None)
    with refused(409, "already has an API key named 'Ci '|already has an API key named 'Ci'"):
        accounts.edit_key("bob", other.id, name="Ci ")
    assert accounts.edit_key("bob", first.id, name="CI").name == "CI"  # its own name, in another case
    assert sorted(k.name for k in accounts.list_keys("bob")) == ["CI", "nightly"]


# Revocation --------------------------------------------------------------------------------------------


def test_revoke_key_kills_a_key_for_good_with_its_reason(contoso: Site, clock: Clock) -> None:
    accounts = contoso.core.accounts
    view, secret = accounts.create_key("bob", "ci", ["push"], ["*"], [], None)
    revoked = accounts.revoke_key(view.id, "the key was found in a public repository", address=ADDRESS)
    assert (revoked.state, revoked.revoked_reason) == ("revoked", "the key was found in a public repository")
    reason = (
        f"API key {view.id} was revoked on 2026-03-01T12:00:00Z: the key was found in a public repository"
    )
    with refused(403, dead(reason)):
        accounts.verify_key(secret, ADDRESS)
    with refused(409, "was revoked .*cannot be regenerated"):
        accounts.regenerate_key("bob", view.id)
    with refused(409, "was revoked .*cannot be edited"):
        accounts.edit_key("bob", view.id, name="again")
    accounts.revoke_key(view.id, "twice")  # a revoked key stays as it was
    assert accounts.list_keys("bob")[0].revoked_reason == "the key was found in a public repository"
    [event] = contoso.events("key.revoke")
    assert (event.key_id, event.actor, event.account, event.address) == (view.id, None, "bob", ADDRESS)
    accounts.delete_key("bob", view.id)  # its holder may still clean it up
    assert accounts.list_keys("bob") == []


def test_who_may_revoke_a_key(contoso: Site) -> None:
    accounts = contoso.core.accounts
    view, _ = accounts.create_key("bob", "own", ["push"], ["*"], [], None)
    with refused(403, "Only bob can revoke its keys"):
        accounts.revoke_key(view.id, "mine now", by="carol")
    with refused(404, "carol has no API key"):
        accounts.revoke_key(view.id, "wrong owner", owner="carol")
    accounts.revoke_key(view.id, "site admin says so", by="alice")


def test_org_admins_revoke_any_key_acting_for_the_org(contoso: Site) -> None:
    core = contoso.core
    view, secret = core.accounts.create_key("bob", "ci", ["push"], ["*"], [], None, "Contoso")
    own, own_secret = core.accounts.create_key("bob", "own", ["push"], ["*"], [], None)
    with refused(403, "Only administrators of Contoso can revoke its keys"):
        core.orgs.revoke_key("Contoso", view.id, by="bob")
    with refused(404, "No API key .* acts for Contoso"):
        core.orgs.revoke_key("Contoso", own.id, by="alice")
    revoked = core.orgs.revoke_key("Contoso", view.id, by="alice", address=ADDRESS)
    assert revoked.revoked_reason == "revoked by alice, an administrator of Contoso"
    with refused(403, "revoked by alice, an administrator of Contoso"):
        core.accounts.verify_key(secret, ADDRESS)
    core.accounts.verify_key(own_secret, ADDRESS)
    [org_key] = core.orgs.keys("Contoso", by="alice")
    assert org_key.key.state == "revoked"
    [event] = contoso.events("key.revoke")
    assert (event.actor, event.account, event.address) == ("alice", "Contoso", ADDRESS)


# Disabled and deleted users ---------------------------------------------------------------------------------


def test_disabling_a_user_ends_its_sessions_and_revokes_its_keys(contoso: Site) -> None:
    core = contoso.core
    sessions = Sessions(core.db, b"x" * 32)
    _, own = core.accounts.create_key("bob", "own", ["push"], ["*"], [], None)
    _, org = core.accounts.create_key("bob", "org", ["push"], ["*"], [], None, "Contoso")
    _, alices = core.accounts.create_key("alice", "alice's", ["push"], ["*"], [], None, "Contoso")
    users = {u.name: u for u in core.accounts.users()}
    token = sessions.start(users["bob"].id)
    assert sessions.user(token) is not None
    with refused(403, "Only site admins can disable accounts"):
        core.accounts.disable_account("carol", by="bob")
    core.accounts.disable_account("bob", by="alice", address=ADDRESS)
    assert sessions.user(token) is None
    for secret in (own, org):
        with refused(403, "bob's account was disabled"):
            core.accounts.verify_key(secret, ADDRESS)
    core.accounts.verify_key(alices, ADDRESS)  # other members' keys for the org go on
    core.accounts.enable_account("bob", by="alice")
    with refused(403, "bob's account was disabled"):  # revoked for good: enabling does not revive them
        core.accounts.verify_key(own, ADDRESS)
    actions = [e.action for e in contoso.events() if e.action.startswith(("account.", "key.revoke"))]
    assert actions == ["account.disable", "key.revoke", "key.revoke", "account.enable"]


def test_a_disabled_user_cannot_sign_in_and_is_told_so_only_with_its_password(site: Site) -> None:
    accounts = site.core.accounts
    accounts.create_user("dave", "dave@example.test", "violet tractor harbour")
    accounts.disable_account("dave")
    with refused(403, "The account dave is disabled"):
        accounts.sign_in("dave", "violet tractor harbour", ADDRESS)
    with refused(401, "Wrong username, email or password"):
        accounts.sign_in("dave", "wrong password here", ADDRESS)


def test_a_disabled_organization_s_keys_are_refused_while_it_is_disabled(contoso: Site) -> None:
    accounts = contoso.core.accounts
    _, secret = accounts.create_key("bob", "org", ["push"], ["*"], [], None, "Contoso")
    accounts.disable_account("Contoso")
    with refused(403, "acts for the organization Contoso, which is disabled"):
        accounts.verify_key(secret, ADDRESS)
    accounts.enable_account("Contoso")
    accounts.verify_key(secret, ADDRESS)


def test_the_last_site_admin_can_be_neither_disabled_nor_deleted(contoso: Site) -> None:
    with refused(409, "alice is the last site admin"):
        contoso.core.accounts.disable_account("alice")
    with refused(409, "alice is the last site admin"):
        contoso.core.accounts.delete_user("alice", transfer_to="bob", new_admin="bob")


def test_users_are_searched_by_name_or_email(contoso: Site) -> None:
    accounts = contoso.core.accounts
    assert [u.name for u in accounts.users("AR")] == ["carol"]
    assert [u.name for u in accounts.users("example.test")] == ["alice", "bob", "carol"]
    assert accounts.users("%") == [] and accounts.users("_") == []


def test_deleting_a_user_keeps_its_packages_and_history(contoso: Site) -> None:
    core = contoso.core
    bob = contoso.key("bob")
    contoso.push(bob, "Bob.Alone")
    contoso.push(bob, "Bob.Shared")
    core.owners.add("Bob.Shared", "carol")
    org_key = contoso.key("alice", owner="Contoso")
    with refused(409, "bob is the only owner of Bob.Alone: name a new owner"):
        core.accounts.delete_user("bob")
    with refused(403, "Only site admins can delete users"):
        core.accounts.delete_user("bob", transfer_to="carol", by="carol")
    moved = core.accounts.delete_user("bob", transfer_to="carol", by="alice", address=ADDRESS)
    assert moved == ["Bob.Alone"]
    assert [o.name for o in core.owners.of_package("Bob.Alone")] == ["carol"]
    assert [o.name for o in core.owners.of_package("Bob.Shared")] == ["carol"]
    _, hits = core.search.search(Query(q="bob", prerelease=True))  # search's owners follow at once
    assert sorted((h.registration.package_id, h.owners) for h in hits) == [
        ("Bob.Alone", ["carol"]),
        ("Bob.Shared", ["carol"]),
    ]
    assert core.search.search(Query(q="owner:bob"))[0] == 0
    assert [m.name for m in core.orgs.members("Contoso")] == ["alice"]
    assert [u.name for u in core.accounts.users()] == ["alice", "carol"]
    contoso.push(org_key, "Contoso.Lib")  # other accounts' keys go on
    pushes = [e for e in core.audit.events(package="Bob.Alone") if e.action == "package.push"]
    assert pushes[0].actor == "deleted user"
    [deleted] = contoso.events("user.delete")
    assert deleted.detail["name"] == "bob" and deleted.detail["packages"] == ["Bob.Alone"]
    assert (deleted.actor, deleted.account) == ("alice", "deleted user")


def test_the_last_admin_of_an_org_is_deleted_only_with_a_successor(contoso: Site) -> None:
    core = contoso.core
    core.orgs.create("Fabrikam", "carol")
    with refused(409, "carol is the only administrator of Fabrikam: name another administrator"):
        core.accounts.delete_user("carol")
    core.accounts.delete_user("carol", new_admin="bob")
    assert [(m.name, m.role) for m in core.orgs.members("Fabrikam")] == [("bob", "admin")]
