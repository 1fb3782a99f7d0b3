"""``services.actors``: who acts, resolved once per operation into the facts ``authz`` decides on (a user's
flags and its organizations with its role in each), or the operator of the command line as it is."""

from __future__ import annotations

import pytest

from nugat import authz
from nugat.authz import OPERATOR, Operator, Party, User
from nugat.services import NotFound
from nugat.services.actors import actor_id, party, resolve, user_actor
from support.services import Site


@pytest.fixture
def contoso(site: Site) -> Site:
    """alice (site admin), bob and carol; Contoso (alice admin, bob collaborator) and Fabrikam (bob admin)."""
    site.user("alice", admin=True)
    site.users("bob", "carol")
    site.core.orgs.create("Contoso", "alice")
    site.core.orgs.add_member("Contoso", "bob", "collaborator")
    site.core.orgs.create("Fabrikam", "bob")
    return site


def ids(site: Site) -> dict[str, int]:
    """Account name -> id, for users and organizations."""
    with site.core.db.reading() as s:
        names = [u.name for u in site.core.accounts.users()] + [o.name for o in site.core.orgs.all()]
        return {name: site.core.accounts.find_account(s, name).id for name in names}


def test_a_user_name_resolves_to_its_flags_and_organizations(contoso: Site) -> None:
    known = ids(contoso)
    with contoso.core.db.reading() as s:
        bob, alice, carol = resolve(s, "BOB"), resolve(s, "alice"), resolve(s, "carol")
    assert bob == User(
        id=known["bob"],
        name="bob",  # as it is spelled, whatever the case asked for
        site_admin=False,
        active=True,
        admin_of=frozenset({known["Fabrikam"]}),
        member_of=frozenset({known["Contoso"], known["Fabrikam"]}),
    )
    assert isinstance(alice, User) and alice.site_admin and alice.admin_of == {known["Contoso"]}
    assert carol == User(known["carol"], "carol")  # no flags, no organizations


def test_the_facts_are_read_again_from_a_stale_actor(contoso: Site) -> None:
    with contoso.core.db.reading() as s:
        before = resolve(s, "bob")
    contoso.core.orgs.change_role("Contoso", "bob", "admin")
    contoso.core.accounts.disable_account("bob")
    with contoso.core.db.reading() as s:
        after = resolve(s, before)  # a User resolved in an earlier operation
    assert isinstance(after, User) and isinstance(before, User)
    assert (before.active, after.active) == (True, False)
    assert ids(contoso)["Contoso"] in after.admin_of - before.admin_of
    assert not authz.is_site_admin(after)


def test_the_operator_is_itself_and_unknown_names_are_404(contoso: Site) -> None:
    with contoso.core.db.reading() as s:
        assert resolve(s, OPERATOR) is OPERATOR
        assert resolve(s, Operator("cron")) == Operator("cron")
        with pytest.raises(NotFound, match="No user named 'dave'") as info:
            resolve(s, "dave")
        assert info.value.status == 404
        with pytest.raises(NotFound, match="No user named 'Contoso'"):
            resolve(s, "Contoso")  # an organization never acts
        with pytest.raises(NotFound, match="No user named 'ghost'"):
            resolve(s, User(id=ids(contoso)["bob"], name="ghost"))  # found by its name, not trusted


def test_user_actor_of_an_account_and_its_party(contoso: Site) -> None:
    accounts = {a.name: a for a in contoso.core.accounts.users()}
    with contoso.core.db.reading() as s:
        alice = user_actor(s, accounts["alice"])
    assert alice == User(
        id=accounts["alice"].id,
        name="alice",
        site_admin=True,
        active=True,
        admin_of=frozenset({ids(contoso)["Contoso"]}),
        member_of=frozenset({ids(contoso)["Contoso"]}),
    )
    assert party(accounts["bob"]) == Party(accounts["bob"].id, "bob", is_org=False)
    with contoso.core.db.reading() as s:
        org = contoso.core.accounts.find_account(s, "contoso")
    assert party(org) == Party(ids(contoso)["Contoso"], "Contoso", is_org=True)


def test_the_audit_logs_a_users_id_and_nothing_for_the_operator(contoso: Site) -> None:
    with contoso.core.db.reading() as s:
        bob = resolve(s, "bob")
    assert actor_id(bob) == ids(contoso)["bob"]
    assert actor_id(OPERATOR) is None
