"""``services.owners``: co-ownership by invitation (invite, accept, reject, cancel), direct changes by site
admins, removal (never the last owner), who manages a package's owners, and the documents that follow."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update

from nugat.authz import OPERATOR
from nugat.clock import utcnow
from nugat.db.models import Account, Membership
from nugat.services import NotFound
from nugat.services.actors import resolve
from nugat.services.owners import Owner
from support.services import ADDRESS, Site, refused

LIB = "Alice.Lib"


@pytest.fixture
def lib(site: Site) -> Site:
    """Alice.Lib, pushed by alice; users bob and carol; root, a site admin."""
    site.users("alice", "bob", "carol")
    site.user("root", admin=True)
    site.push(site.key("alice"), LIB)
    return site


def owners(site: Site, package_id: str = LIB) -> list[str]:
    return [o.name for o in site.core.owners.of_package(package_id)]


def test_the_pusher_of_a_new_id_owns_it(lib: Site) -> None:
    assert lib.core.owners.of_package("alice.lib") == [Owner("alice", "user")]
    with pytest.raises(NotFound, match=r"No package 'No\.Such'"):
        lib.core.owners.of_package("No.Such")


def test_an_accepted_invitation_makes_a_co_owner(lib: Site) -> None:
    bob = lib.key("bob")
    lib.core.owners.invite(LIB, "bob", by="alice", address=ADDRESS)
    invite = lib.core.owners.invitations_to("bob")[0]
    assert (invite.package_id, invite.new_owner, invite.requested_by) == (LIB, "bob", "alice")
    assert [i.new_owner for i in lib.core.owners.invitations_for_package(LIB)] == ["bob"]
    with refused(403, "bob is not an owner of Alice.Lib"):
        lib.push(bob, LIB, "2.0.0")  # invited is not yet an owner
    with refused(403, "Only bob can accept this invitation"):
        lib.core.owners.accept(LIB, "bob", by="alice")
    lib.core.owners.accept(LIB, "bob", by="bob")
    assert owners(lib) == ["alice", "bob"]
    assert lib.core.owners.invitations_to("bob") == []
    lib.push(bob, LIB, "2.0.0")
    assert [(e.action, e.actor, e.account) for e in lib.events() if e.action.startswith("owner.")] == [
        ("owner.invite", "alice", "bob"),
        ("owner.add", "bob", "bob"),
    ]


def test_an_invitation_rejected_or_cancelled_leaves_no_owner(lib: Site) -> None:
    lib.core.owners.invite(LIB, "bob", by="alice")
    with refused(409, "bob is already invited to own Alice.Lib"):
        lib.core.owners.invite(LIB, "bob", by="alice")
    with refused(403, "Only bob can reject this invitation"):
        lib.core.owners.reject(LIB, "bob", by="carol")
    lib.core.owners.reject(LIB, "bob", by="bob")
    lib.core.owners.invite(LIB, "bob", by="alice")
    with refused(403, "Only owners of Alice.Lib can manage its owners"):
        lib.core.owners.cancel(LIB, "bob", by="bob")
    lib.core.owners.cancel(LIB, "bob", by="alice")
    with pytest.raises(NotFound, match=r"bob has no pending invitation to own Alice\.Lib"):
        lib.core.owners.accept(LIB, "bob", by="bob")
    assert owners(lib) == ["alice"]
    assert [e.action for e in lib.events() if e.action.startswith("owner.")] == [
        "owner.invite",
        "owner.reject",
        "owner.invite",
        "owner.cancel",
    ]


def test_who_manages_the_owners_of_a_package(lib: Site) -> None:
    lib.core.orgs.create("Contoso", "carol")
    lib.core.orgs.add_member("Contoso", "bob", "collaborator")
    lib.core.owners.add(LIB, "Contoso")
    # an org admin manages the owners of the org's packages; a collaborator does not
    lib.core.owners.invite(LIB, "root", by="carol")
    with refused(403, "Only owners of Alice.Lib can manage its owners"):
        lib.core.owners.cancel(LIB, "root", by="bob")
    lib.core.owners.cancel(LIB, "root", by="root")  # a site admin manages every package
    with refused(403, "Only owners of Alice.Lib"):
        lib.core.owners.remove(LIB, "alice", by="bob")
    with pytest.raises(NotFound):
        lib.core.owners.invite("No.Such", "bob", by="alice")


def test_an_org_invitation_is_answered_by_an_admin_of_the_org(lib: Site) -> None:
    lib.core.orgs.create("Contoso", "carol")
    lib.core.orgs.add_member("Contoso", "bob", "collaborator")
    lib.core.owners.invite(LIB, "Contoso", by="alice")
    assert lib.core.owners.invitations_to("bob") == []
    assert [i.new_owner for i in lib.core.owners.invitations_to("carol")] == ["Contoso"]
    with refused(403, "Only Contoso can accept this invitation"):
        lib.core.owners.accept(LIB, "Contoso", by="bob")
    lib.core.owners.accept(LIB, "Contoso", by="carol")
    assert lib.core.owners.of_package(LIB) == [Owner("alice", "user"), Owner("Contoso", "org")]
    lib.push(lib.key("bob", owner="Contoso"), LIB, "2.0.0")  # every member's org key may push


def test_only_site_admins_and_the_command_line_add_owners_directly(lib: Site) -> None:
    lib.core.owners.invite(LIB, "bob", by="alice")
    with refused(403, "Only site admins can add owners directly; owners send invitations"):
        lib.core.owners.add(LIB, "bob", by="alice")
    lib.core.owners.add(LIB, "bob", by="root")
    assert lib.core.owners.invitations_for_package(LIB) == []  # the invitation is settled
    lib.core.owners.add(LIB, "carol")
    assert owners(lib) == ["alice", "bob", "carol"]
    with refused(409, "bob already owns Alice.Lib"):
        lib.core.owners.add(LIB, "BOB")
    with refused(409, "carol already owns Alice.Lib"):
        lib.core.owners.invite(LIB, "carol", by="alice")


def test_an_owner_is_removed_but_never_the_last(lib: Site) -> None:
    lib.core.owners.add(LIB, "bob")
    bob = lib.key("bob")
    lib.core.owners.remove(LIB, "alice", by="bob")
    assert owners(lib) == ["bob"]
    with pytest.raises(NotFound, match=r"alice does not own Alice\.Lib"):
        lib.core.owners.remove(LIB, "alice")
    with refused(409, "bob is the last owner of Alice.Lib and cannot be removed"):
        lib.core.owners.remove(LIB, "bob", by="root")
    with refused(403, "alice is not an owner of Alice.Lib"):
        lib.push(lib.key("alice"), LIB, "2.0.0")  # a removed owner's keys stop at once
    lib.push(bob, LIB, "2.0.0")


def test_owner_changes_rewrite_the_documents(lib: Site) -> None:
    lib.core.prefixes.reserve("Alice.*", ["bob"])  # verified only when a holder owns the package
    assert lib.catalog(LIB)["1.0.0"]["verified"] is False
    lib.core.owners.invite(LIB, "bob", by="alice")
    lib.core.owners.accept(LIB, "bob", by="bob")
    assert lib.catalog(LIB)["1.0.0"]["verified"] is True
    lib.core.owners.remove(LIB, "bob", by="alice")
    assert lib.catalog(LIB)["1.0.0"]["verified"] is False
    lib.core.owners.add(LIB, "bob")
    assert lib.catalog(LIB)["1.0.0"]["verified"] is True


def test_an_owner_change_lands_even_when_the_documents_cannot_be_written(lib: Site) -> None:
    lib.core.prefixes.reserve("Alice.*", ["bob"])
    lib.storage.fail("put", times=None)
    lib.core.owners.add(LIB, "bob")
    assert owners(lib) == ["alice", "bob"]
    assert lib.core.materializer.stale() == ["alice.lib"]
    lib.storage.heal()
    assert lib.core.packages.recover() == (0, 1)
    assert lib.catalog(LIB)["1.0.0"]["verified"] is True


def test_the_operator_acts_by_name_never_as_none(lib: Site) -> None:
    """The command line is ``authz.OPERATOR``: it may do what a site admin may, and is audited as nobody."""
    lib.core.owners.add(LIB, "carol", by=OPERATOR)
    lib.core.owners.remove(LIB, "carol")  # the default actor of a service is the operator
    assert owners(lib) == ["alice"]
    assert [(e.action, e.actor) for e in lib.events() if e.action.startswith("owner.")] == [
        ("owner.add", None),
        ("owner.remove", None),
    ]


def test_a_resolved_actor_is_read_again_in_the_operation(lib: Site) -> None:
    """A ``User`` handed to a service is re-read: rights it lost since it was resolved no longer count."""
    with lib.core.db.reading() as s:
        root = resolve(s, "root")
    lib.core.owners.add(LIB, "bob", by=root)
    assert owners(lib) == ["alice", "bob"]
    with lib.core.db.session() as s:
        s.execute(update(Account).where(Account.name_lower == "root").values(is_admin=False))
    with refused(403, "Only site admins can add owners directly; owners send invitations"):
        lib.core.owners.add(LIB, "carol", by=root)


def test_a_disabled_site_admin_named_on_the_command_line_is_no_site_admin(lib: Site) -> None:
    lib.user("root2", admin=True)
    lib.core.accounts.disable_account("root2")
    with refused(403, "Only site admins can add owners directly; owners send invitations"):
        lib.core.owners.add(LIB, "bob", by="root2")
    with refused(403, f"Only owners of {LIB} can manage its owners"):
        lib.core.owners.remove(LIB, "alice", by="root2")


# An invitation holds only while its sender may manage the package's owners ------------------------------


@pytest.fixture
def contoso(lib: Site) -> Site:
    """Contoso.Two, owned by the organization Contoso (carol and bob its admins); dave a user."""
    lib.user("dave")
    lib.core.orgs.create("Contoso", "carol")
    lib.core.orgs.add_member("Contoso", "bob", "admin")
    lib.push(lib.key("carol", owner="Contoso"), "Contoso.Two")
    return lib


def pending(site: Site, package_id: str) -> list[tuple[str, str]]:
    return [(i.new_owner, i.requested_by) for i in site.core.owners.invitations_for_package(package_id)]


def test_an_invitation_from_an_admin_removed_from_the_owning_org_is_dropped(contoso: Site) -> None:
    contoso.core.owners.invite("Contoso.Two", "bob", by="bob")
    contoso.core.owners.invite("Contoso.Two", "dave", by="bob")
    contoso.core.owners.invite("Contoso.Two", "alice", by="carol")
    contoso.core.orgs.remove_member("Contoso", "bob", by="carol", address=ADDRESS)
    assert pending(contoso, "Contoso.Two") == [("alice", "carol")]  # carol still may
    assert contoso.core.owners.invitations_to("bob") == []
    with pytest.raises(NotFound, match=r"bob has no pending invitation to own Contoso\.Two"):
        contoso.core.owners.accept("Contoso.Two", "bob", by="bob")
    with pytest.raises(NotFound):
        contoso.core.owners.accept("Contoso.Two", "dave", by="dave")
    assert owners(contoso, "Contoso.Two") == ["Contoso"]
    with refused(403, "bob is not an owner of Contoso.Two"):
        contoso.push(contoso.key("bob"), "Contoso.Two", "2.0.0")
    dropped = contoso.events("owner.cancel")
    assert sorted(e.account for e in dropped) == ["bob", "dave"]
    assert {e.detail["reason"] for e in dropped} == {"bob is no longer a member of Contoso"}
    contoso.core.owners.accept("Contoso.Two", "alice", by="alice")


def test_an_invitation_from_an_admin_who_left_or_was_demoted_is_dropped(contoso: Site) -> None:
    contoso.core.owners.invite("Contoso.Two", "bob", by="bob")
    contoso.core.orgs.change_role("Contoso", "bob", "collaborator", by="carol")
    assert pending(contoso, "Contoso.Two") == []
    contoso.core.orgs.change_role("Contoso", "bob", "admin", by="carol")
    contoso.core.owners.invite("Contoso.Two", "dave", by="bob")
    contoso.core.orgs.remove_member("Contoso", "bob", by="bob")  # leaving on its own
    assert pending(contoso, "Contoso.Two") == []


def test_an_invitation_from_a_disabled_user_is_dropped(contoso: Site) -> None:
    contoso.core.owners.invite(LIB, "carol", by="alice")
    contoso.core.owners.invite("Contoso.Two", "dave", by="bob")
    contoso.core.accounts.disable_account("bob")
    contoso.core.accounts.disable_account("alice")
    assert pending(contoso, LIB) == pending(contoso, "Contoso.Two") == []
    contoso.core.accounts.enable_account("alice")  # enabling does not bring it back
    assert pending(contoso, LIB) == []
    with pytest.raises(NotFound):
        contoso.core.owners.accept(LIB, "carol", by="carol")
    assert owners(contoso) == ["alice"]


def test_an_invitation_from_an_owner_removed_since_is_dropped(contoso: Site) -> None:
    contoso.core.owners.add(LIB, "bob")
    contoso.core.owners.invite(LIB, "carol", by="bob")
    contoso.core.owners.invite(LIB, "dave", by="alice")
    contoso.core.owners.remove(LIB, "bob", by="alice")
    assert pending(contoso, LIB) == [("dave", "alice")]
    # an owning organization removed: its admins' invitations go, a site admin's stay
    contoso.core.owners.add(LIB, "Contoso")
    contoso.core.owners.invite(LIB, "bob", by="carol")
    contoso.core.owners.invite(LIB, "carol", by="root")
    contoso.core.owners.remove(LIB, "Contoso", by="alice")
    assert pending(contoso, LIB) == [("dave", "alice"), ("carol", "root")]
    contoso.core.owners.accept(LIB, "dave", by="dave")
    assert owners(contoso) == ["alice", "dave"]


def test_accepting_checks_the_sender_again_and_drops_a_dead_invitation(contoso: Site) -> None:
    """A right lost by a way that drops nothing (a change written straight to the database, a site admin
    no longer one) is still caught when the invitation is accepted."""
    contoso.core.owners.invite("Contoso.Two", "bob", by="bob")
    contoso.core.owners.invite(LIB, "dave", by="root")
    with contoso.core.db.session() as s:
        s.execute(delete(Membership).where(Membership.member_id == resolve(s, "bob").id))
        s.execute(update(Account).where(Account.name_lower == "root").values(is_admin=False))
    with refused(409, "bob, who sent it, may no longer manage its owners"):
        contoso.core.owners.accept("Contoso.Two", "bob", by="bob", address=ADDRESS)
    with refused(409, "The invitation to own Alice.Lib no longer holds: root, who sent it"):
        contoso.core.owners.accept(LIB, "dave", by="dave")
    assert owners(contoso, "Contoso.Two") == ["Contoso"] and owners(contoso) == ["alice"]
    assert pending(contoso, "Contoso.Two") == pending(contoso, LIB) == []  # dropped
    with refused(403, "bob is not an owner of Contoso.Two"):
        contoso.push(contoso.key("bob"), "Contoso.Two", "2.0.0")
    with refused(403, "Only bob can accept this invitation"):  # nobody else learns the invitation died
        contoso.core.owners.invite("Contoso.Two", "bob", by="carol")
        with contoso.core.db.session() as s:
            s.execute(update(Account).where(Account.name_lower == "carol").values(disabled_at=utcnow()))
        contoso.core.owners.accept("Contoso.Two", "bob", by="dave")
    assert pending(contoso, "Contoso.Two") == [("bob", "carol")]


# No right through a disabled organization ---------------------------------------------------------------


def test_no_one_manages_owners_through_a_disabled_org_until_it_is_enabled(contoso: Site) -> None:
    """The audit's repro: Contoso disabled, its admin bob invited dave, who accepted and pushed.
    Now its admins neither invite, cancel nor remove owners of its packages; site admins and owners in
    their own name still do; enabling it gives the right back."""
    owners_ = contoso.core.owners
    owners_.add("Contoso.Two", "alice")
    owners_.invite("Contoso.Two", "carol", by="alice")
    contoso.core.accounts.disable_account("Contoso")
    suspended = "Contoso is disabled: its administrators cannot manage the owners of Contoso.Two"
    with refused(403, suspended):
        owners_.invite("Contoso.Two", "dave", by="bob")
    with refused(403, suspended):
        owners_.cancel("Contoso.Two", "carol", by="bob")
    with refused(403, suspended):
        owners_.remove("Contoso.Two", "alice", by="carol")
    access = owners_.access("Contoso.Two", "bob")  # the pages ask the same
    assert access is not None and access[1].reason.startswith(suspended)
    assert pending(contoso, "Contoso.Two") == [("carol", "alice")]
    assert owners(contoso, "Contoso.Two") == ["alice", "Contoso"]
    with refused(403, "dave is not an owner of Contoso.Two"):
        contoso.push(contoso.key("dave"), "Contoso.Two", "2.0.0")
    owners_.invite("Contoso.Two", "root", by="alice")  # an owner in its own name
    owners_.cancel("Contoso.Two", "root", by="root")  # a site admin

    contoso.core.accounts.enable_account("Contoso")
    owners_.invite("Contoso.Two", "dave", by="bob")
    owners_.remove("Contoso.Two", "alice", by="carol")
    assert owners(contoso, "Contoso.Two") == ["Contoso"]


def test_an_invitation_sent_through_a_disabled_org_waits_for_it(contoso: Site) -> None:
    contoso.core.owners.invite("Contoso.Two", "dave", by="bob")
    contoso.core.accounts.disable_account("Contoso")
    assert pending(contoso, "Contoso.Two") == [("dave", "bob")]  # kept: the right comes back with the org
    with refused(403, "Contoso is disabled: bob sent this invitation as one of its administrators"):
        contoso.core.owners.accept("Contoso.Two", "dave", by="dave")
    assert pending(contoso, "Contoso.Two") == [("dave", "bob")]
    assert owners(contoso, "Contoso.Two") == ["Contoso"]
    with refused(403, "dave is not an owner of Contoso.Two"):
        contoso.push(contoso.key("dave"), "Contoso.Two", "2.0.0")

    contoso.core.accounts.enable_account("Contoso")
    contoso.core.owners.accept("Contoso.Two", "dave", by="dave")
    contoso.push(contoso.key("dave"), "Contoso.Two", "2.0.0")
    assert owners(contoso, "Contoso.Two") == ["Contoso", "dave"]


def test_a_disabled_org_answers_no_invitation_until_it_is_enabled(contoso: Site) -> None:
    contoso.core.owners.invite(LIB, "Contoso", by="alice")
    contoso.core.accounts.disable_account("Contoso")
    with refused(403, "Contoso is disabled: its administrators cannot accept invitations for it"):
        contoso.core.owners.accept(LIB, "Contoso", by="carol")
    with refused(403, "Contoso is disabled: its administrators cannot reject invitations for it"):
        contoso.core.owners.reject(LIB, "Contoso", by="carol")
    assert pending(contoso, LIB) == [("Contoso", "alice")]
    contoso.core.accounts.enable_account("Contoso")
    contoso.core.owners.accept(LIB, "Contoso", by="carol")
    assert owners(contoso) == ["alice", "Contoso"]


def test_members_of_a_disabled_org_unlist_none_of_its_packages_on_the_pages(contoso: Site) -> None:
    """``services.packages.set_listed`` for a signed-in user: ``authz.can_unlist``, through the org."""
    listed = contoso.core.packages.set_listed
    contoso.core.accounts.disable_account("Contoso")
    for change in (False, True):
        with refused(403, "Contoso is disabled: its members cannot unlist or relist Contoso.Two"):
            listed("Contoso.Two", "1.0.0", change, "bob", ADDRESS)
    contoso.core.accounts.enable_account("Contoso")
    listed("Contoso.Two", "1.0.0", False, "bob", ADDRESS)
    listed("Contoso.Two", "1.0.0", True, "bob", ADDRESS)


def test_answering_an_invitation_tells_no_one_about_the_package_or_its_invitations(lib: Site) -> None:
    """Who may answer for the invited account is decided before the package is looked at: a stranger
    posting to another's invitation is refused the same whether that invitation, or the package, exists;
    and to whoever may answer, an id without an invitation for them (a private organization's among them)
    reads as an id never pushed, named as they typed it, never in its own casing."""
    lib.core.orgs.create("Contoso", "alice")
    lib.push(lib.key("alice", owner="Contoso"), "Contoso.Secret")
    lib.core.orgs.set_private("Contoso", True)
    lib.core.owners.invite(LIB, "bob", by="alice")
    for package_id in (LIB, "contoso.secret", "No.Such"):  # invited, not invited, no such package
        with refused(403, "Only bob can accept this invitation"):
            lib.core.owners.accept(package_id, "bob", by="carol")
        with refused(403, "Only bob can reject this invitation"):
            lib.core.owners.reject(package_id, "bob", by="carol")
    for package_id in ("contoso.secret", "no.such"):
        for answer in (lib.core.owners.accept, lib.core.owners.reject):
            with pytest.raises(NotFound) as found:
                answer(package_id, "carol", by="carol")
            assert found.value.message == f"carol has no pending invitation to own {package_id}"
    assert [i.new_owner for i in lib.core.owners.invitations_for_package(LIB)] == ["bob"]
    lib.core.owners.accept("alice.lib", "bob", by="bob")
    assert owners(lib) == ["alice", "bob"]
