"""``services.orgs``: organizations, their members and roles, and who may manage them (an org admin, a site
admin, the command line as ``by=OPERATOR``); a member may always leave, and the last admin always stays."""

from __future__ import annotations

import pytest

from nugat.authz import OPERATOR
from nugat.services import Forbidden, NotFound
from nugat.services.orgs import Member, OrgView
from support.services import ADDRESS, Site, refused


@pytest.fixture
def site_with_users(site: Site) -> Site:
    """alice, bob, carol, and root (a site admin)."""
    site.users("alice", "bob", "carol")
    site.user("root", admin=True)
    return site


@pytest.fixture
def contoso(site_with_users: Site) -> Site:
    """Contoso: alice its admin, bob a collaborator."""
    site_with_users.core.orgs.create("Contoso", "alice")
    site_with_users.core.orgs.add_member("Contoso", "bob", "collaborator")
    return site_with_users


def test_an_org_is_an_account_that_cannot_sign_in(site_with_users: Site) -> None:
    org = site_with_users.core.orgs.create("Contoso", "alice", by="alice", address=ADDRESS)
    assert (org.name, org.kind, org.email, org.password_hash, org.is_admin) == (
        "Contoso",
        "org",
        None,
        None,
        False,
    )
    assert site_with_users.core.orgs.members("CONTOSO") == [Member("alice", "admin")]
    assert site_with_users.core.accounts.authenticate("Contoso", "") is None
    assert "Contoso" not in [u.name for u in site_with_users.core.accounts.users()]
    [event] = site_with_users.events("org.create")
    assert (event.actor, event.account, event.address, event.detail) == (
        "alice",
        "Contoso",
        ADDRESS,
        {"admin": "alice"},
    )


def test_who_creates_an_org_for_whom(site_with_users: Site) -> None:
    orgs = site_with_users.core.orgs
    with refused(403, "You can only create an organization you administer yourself"):
        orgs.create("Contoso", "bob", by="alice")
    orgs.create("Fabrikam", "bob", by="root")  # a site admin may, for anyone
    orgs.create("Northwind", "carol")  # and the command line
    with pytest.raises(NotFound, match="No user named 'Fabrikam'"):
        orgs.create("Tailspin", "Fabrikam")  # an org cannot administer an org
    assert orgs.all() == [
        OrgView("Fabrikam", [Member("bob", "admin")]),
        OrgView("Northwind", [Member("carol", "admin")]),
    ]


@pytest.mark.parametrize("name", ["ALICE", "contoso", "root"])
def test_org_names_are_unique_among_all_accounts(contoso: Site, name: str) -> None:
    with refused(409, f"The name '{name}' is already taken"):
        contoso.core.orgs.create(name, "carol")


def test_an_org_name_follows_the_name_rules(site_with_users: Site) -> None:
    with refused(400, "An organization name is 1-64 letters"):
        site_with_users.core.orgs.create("Con toso", "alice")


def test_admins_manage_members_and_roles(contoso: Site) -> None:
    orgs = contoso.core.orgs
    orgs.add_member("Contoso", "carol", "admin", by="alice")
    assert orgs.members("Contoso") == [
        Member("alice", "admin"),
        Member("carol", "admin"),
        Member("bob", "collaborator"),
    ]
    orgs.change_role("Contoso", "bob", "admin", by="carol")
    orgs.remove_member("Contoso", "alice", by="bob")
    assert orgs.of_user("alice") == []
    assert orgs.of_user("bob") == [Member("Contoso", "admin")]
    assert [e.action for e in contoso.events() if e.action.startswith("org.member")] == [
        "org.member_add",
        "org.member_add",
        "org.member_role",
        "org.member_remove",
    ]
    role = contoso.events("org.member_role")[0]
    assert (role.actor, role.detail) == (
        "carol",
        {"member": "bob", "role": "admin", "previous": "collaborator"},
    )


def test_collaborators_and_outsiders_do_not_manage_members(contoso: Site) -> None:
    orgs = contoso.core.orgs
    for by in ("bob", "carol"):
        with refused(403, "Only administrators of Contoso can manage its members"):
            orgs.add_member("Contoso", "carol", "collaborator", by=by)
        with refused(403, "Only administrators of Contoso"):
            orgs.change_role("Contoso", "bob", "admin", by=by)
        with refused(403, "Only administrators of Contoso"):
            orgs.remove_member("Contoso", "alice", by=by)
    orgs.add_member("Contoso", "carol", "collaborator", by="root")  # site admins manage every org
    assert [m.name for m in orgs.members("Contoso")] == ["alice", "bob", "carol"]


def test_no_one_manages_a_disabled_org_through_it_until_it_is_enabled(contoso: Site) -> None:
    """Its admins neither add, change nor remove members, nor change its settings, nor see or revoke its
    keys; a member may still leave, a site admin still manages it; enabling it gives the right back."""
    orgs = contoso.core.orgs
    orgs.add_member("Contoso", "carol", "admin")
    contoso.core.accounts.create_key("bob", "ci", ["push"], ["*"], [], None, "Contoso")
    contoso.core.accounts.disable_account("Contoso")
    suspended = "Contoso is disabled: its administrators cannot manage its members or settings"
    with refused(403, suspended):
        orgs.add_member("Contoso", "root", "collaborator", by="alice")
    with refused(403, suspended):
        orgs.change_role("Contoso", "bob", "admin", by="alice")
    with refused(403, suspended):
        orgs.remove_member("Contoso", "bob", by="alice")
    with refused(403, suspended):
        orgs.set_private("Contoso", True, by="alice")
    with refused(403, suspended):
        orgs.set_require_2fa("Contoso", True, by="alice")
    with refused(403, "Contoso is disabled: its administrators cannot see or revoke its keys"):
        orgs.keys("Contoso", by="alice")
    key_id = orgs.keys("Contoso", by="root")[0].key.id
    with refused(403, "Contoso is disabled: its administrators cannot see or revoke its keys"):
        orgs.revoke_key("Contoso", key_id, by="alice")
    orgs.remove_member("Contoso", "carol", by="carol")  # leaving
    orgs.change_role("Contoso", "bob", "admin", by="root")  # a site admin
    assert orgs.members("Contoso") == [Member("alice", "admin"), Member("bob", "admin")]

    contoso.core.accounts.enable_account("Contoso")
    orgs.remove_member("Contoso", "bob", by="alice")
    assert orgs.members("Contoso") == [Member("alice", "admin")]


def test_a_member_may_leave(contoso: Site) -> None:
    contoso.core.orgs.remove_member("Contoso", "BOB", by="bob")
    assert contoso.core.orgs.members("Contoso") == [Member("alice", "admin")]


def test_the_last_admin_stays(contoso: Site) -> None:
    orgs = contoso.core.orgs
    with refused(409, "Contoso must keep at least one administrator"):
        orgs.remove_member("Contoso", "alice", by="alice")
    with refused(409, "at least one administrator"):
        orgs.change_role("Contoso", "alice", "collaborator", by="root")
    orgs.change_role("Contoso", "bob", "admin")
    orgs.change_role("Contoso", "alice", "collaborator", by="alice")
    assert orgs.members("Contoso") == [Member("bob", "admin"), Member("alice", "collaborator")]


def test_the_last_admin_who_can_act_stays(contoso: Site) -> None:
    """A disabled administrator does not count: the last enabled one may neither leave nor be demoted."""
    orgs, accounts = contoso.core.orgs, contoso.core.accounts
    orgs.change_role("Contoso", "bob", "admin", by="alice")
    accounts.disable_account("bob")
    with refused(409, "Contoso must keep at least one administrator who is not disabled"):
        orgs.remove_member("Contoso", "alice", by="alice")
    with refused(409, "at least one administrator who is not disabled"):
        orgs.change_role("Contoso", "alice", "collaborator", by="root")
    orgs.remove_member("Contoso", "bob", by="alice")  # the disabled one may go: alice stays
    assert orgs.members("Contoso") == [Member("alice", "admin")]


def test_member_changes_that_make_no_sense(contoso: Site) -> None:
    orgs = contoso.core.orgs
    with refused(400, "Unknown role 'owner': use admin or collaborator"):
        orgs.add_member("Contoso", "carol", "owner")
    with refused(409, "bob is already a member of Contoso"):
        orgs.add_member("Contoso", "bob", "admin")
    with pytest.raises(NotFound, match="carol is not a member of Contoso"):
        orgs.remove_member("Contoso", "carol")
    with pytest.raises(NotFound, match="No organization named 'alice'"):
        orgs.add_member("alice", "carol", "admin")
    with pytest.raises(NotFound, match="No user named 'nobody'"):
        orgs.add_member("Contoso", "nobody", "admin")
    before = len(contoso.events())
    orgs.change_role("Contoso", "bob", "collaborator")  # already so: nothing happens
    assert len(contoso.events()) == before


def test_only_admins_see_the_orgs_keys(contoso: Site) -> None:
    view, secret = contoso.core.accounts.create_key("bob", "ci", ["push"], ["*"], [], None, "Contoso")
    contoso.core.accounts.create_key("bob", "mine", ["push"], ["*"], [], None)  # bob's own: not the org's
    for by in ("alice", "root", OPERATOR):
        [org_key] = contoso.core.orgs.keys("Contoso", by=by)
        assert (org_key.creator, org_key.key) == ("bob", view)
    assert secret not in repr(contoso.core.orgs.keys("Contoso"))
    with pytest.raises(Forbidden, match="Only administrators of Contoso can see its keys"):
        contoso.core.orgs.keys("Contoso", by="bob")


def test_the_packages_an_org_owns(contoso: Site) -> None:
    grant = contoso.key("bob", owner="Contoso")
    contoso.push(grant, "Contoso.Web")
    contoso.push(grant, "Contoso.Core")
    contoso.push(contoso.key("bob"), "Bob.Lib")
    assert contoso.core.orgs.packages("Contoso") == ["Contoso.Core", "Contoso.Web"]
    with pytest.raises(NotFound):
        contoso.core.orgs.packages("bob")
