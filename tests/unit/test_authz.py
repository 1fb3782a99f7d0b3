"""One test per rule of ``nugat.authz``, for each kind of actor: who may do what, and the reason refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import pytest

from nugat.authz import (
    ALLOW,
    OPERATOR,
    Actor,
    Decision,
    Party,
    User,
    can_add_owner_directly,
    can_answer_invitation,
    can_change_key,
    can_change_policy,
    can_change_scopes,
    can_create_key_for,
    can_create_org,
    can_disable,
    can_hold_keys,
    can_manage_accounts,
    can_manage_members,
    can_manage_owners,
    can_manage_policy,
    can_manage_users,
    can_mint,
    can_push,
    can_reserve_prefixes,
    can_revoke_key,
    can_revoke_leaked_keys,
    can_revoke_org_key,
    can_see_org,
    can_see_org_keys,
    can_set_trusted_only,
    can_unlist,
    invitation_holds,
    is_site_admin,
    owner_acted_for,
    require,
    visible_accounts,
)
from nugat.keys import KeyGrant
from nugat.prefixes import Reservation
from nugat.services import Conflict, Forbidden, NotFound, ServiceError
from nugat.services.packages import Refused

ALICE, CONTOSO, BOB = 1, 2, 3


def grant(
    *scopes: str,
    globs: tuple[str, ...] = ("*",),
    packages: tuple[str, ...] = (),
    owner_id: int = ALICE,
    owner_name: str = "alice",
) -> KeyGrant:
    return KeyGrant(
        key_id="k1",
        user_id=ALICE,
        owner_id=owner_id,
        owner_name=owner_name,
        scopes=frozenset(scopes),
        globs=globs,
        packages=packages,
        expires_at=datetime(2100, 1, 1),
    )


def push(
    key: KeyGrant,
    package_id: str = "Contoso.Lib",
    *,
    exists: bool = False,
    owners: frozenset[int] = frozenset(),
    member: bool = True,
    reserved: bool = False,
    reservation: Reservation | None = None,
    looks_like: str | None = None,
) -> tuple[bool, int, str]:
    if reserved:  # held by someone else
        reservation = Reservation("Contoso.*", frozenset({BOB}), lookalike=False)
    d = can_push(
        key,
        package_id,
        exists=exists,
        owner_ids=owners,
        actor_is_member=member,
        reservation=reservation,
        looks_like=looks_like,
    )
    return d.allowed, d.status, d.reason


def unlist(
    key: KeyGrant, package_id: str = "Contoso.Lib", *, owners: frozenset[int], member: bool = True
) -> tuple[bool, int, str]:
    d = can_unlist(key, package_id, owner_ids=owners, actor_is_member=member)
    return d.allowed, d.status, d.reason


# can_push: new package ids ----------------------------------------------------------------------------


def test_push_key_creates_a_new_id() -> None:
    assert push(grant("push")) == (True, 200, "")


def test_push_version_key_cannot_create_an_id() -> None:
    allowed, status, reason = push(grant("push-version"))
    assert (allowed, status) == (False, 403)
    assert "only push new versions" in reason and "Contoso.Lib does not exist yet" in reason


def test_key_without_push_scopes_cannot_create_an_id() -> None:
    assert push(grant("unlist")) == (False, 403, "API key k1 does not allow pushing packages")


def test_new_id_under_a_prefix_reserved_by_others_is_409() -> None:
    allowed, status, reason = push(grant("push"), reserved=True)
    assert (allowed, status) == (False, 409)
    assert "reserved prefix" in reason and "Contoso.Lib" in reason


def test_new_id_looking_like_a_prefix_reserved_by_others_is_409() -> None:
    theirs = Reservation("Contoso.*", frozenset({BOB, CONTOSO}), lookalike=True)
    assert push(grant("push"), "C0ntoso.Lib", reservation=theirs) == (
        False,
        409,
        "The package id C0ntoso.Lib looks like an id in the reserved prefix Contoso.*, which belongs to "
        "someone else: choose a different id",
    )


@pytest.mark.parametrize("lookalike", [False, True])
def test_holder_of_a_reservation_creates_ids_under_it(lookalike: bool) -> None:
    mine = Reservation("Contoso.*", frozenset({BOB, CONTOSO}), lookalike=lookalike)
    key = grant("push", owner_id=CONTOSO, owner_name="Contoso")
    assert push(key, reservation=mine) == (True, 200, "")


def test_lookalikes_pushed_before_a_reservation_never_block_its_holder() -> None:
    mine = Reservation("Contoso.*", frozenset({CONTOSO}), lookalike=False)
    key = grant("push", owner_id=CONTOSO, owner_name="Contoso")
    assert push(key, "Contoso.Security", reservation=mine, looks_like="C0ntoso.Security")[0]
    # without the reservation, the look-alike rule applies to everyone
    assert push(key, "Contoso.Security", looks_like="C0ntoso.Security")[1] == 409


def test_new_id_confusable_with_another_owners_id_is_409() -> None:
    allowed, status, reason = push(grant("push"), "C0ntoso.Lib", looks_like="Contoso.Lib")
    assert (allowed, status) == (False, 409)
    assert "too similar" in reason and "Contoso.Lib" in reason


def test_scope_is_checked_before_the_reservation() -> None:
    # a key that could not create the id anyway is told about its scope, not about the prefix
    assert push(grant("push-version"), reserved=True)[1] == 403


# can_push: existing ids -------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["push", "push-version"])
def test_owner_pushes_a_new_version(scope: str) -> None:
    assert push(grant(scope), exists=True, owners=frozenset({ALICE})) == (True, 200, "")


def test_owner_among_several_pushes() -> None:
    assert push(grant("push"), exists=True, owners=frozenset({BOB, ALICE}))[0]


def test_non_owner_cannot_push_a_version() -> None:
    assert push(grant("push"), exists=True, owners=frozenset({BOB})) == (
        False,
        403,
        "alice is not an owner of Contoso.Lib",
    )


def test_unlist_only_key_cannot_push_a_version() -> None:
    assert push(grant("unlist"), exists=True, owners=frozenset({ALICE})) == (
        False,
        403,
        "API key k1 does not allow pushing packages",
    )


def test_existing_ids_ignore_reservations_and_lookalikes() -> None:
    # their owners keep pushing versions after someone reserves the prefix
    result = push(grant("push"), exists=True, owners=frozenset({ALICE}), reserved=True, looks_like="X")
    assert result == (True, 200, "")


# can_push: keys of organizations ----------------------------------------------------------------------


def test_org_key_pushes_the_orgs_package() -> None:
    org_key = grant("push", owner_id=CONTOSO, owner_name="Contoso")
    assert push(org_key, exists=True, owners=frozenset({CONTOSO}))[0]


def test_org_key_cannot_push_its_creators_own_package() -> None:
    org_key = grant("push", owner_id=CONTOSO, owner_name="Contoso")
    assert push(org_key, exists=True, owners=frozenset({ALICE})) == (
        False,
        403,
        "Contoso is not an owner of Contoso.Lib",
    )


def test_key_of_a_creator_who_left_the_org_is_refused_first() -> None:
    org_key = grant("push", owner_id=CONTOSO, owner_name="Contoso")
    for exists in (False, True):
        allowed, status, reason = push(org_key, exists=exists, owners=frozenset({CONTOSO}), member=False)
        assert (allowed, status) == (False, 403)
        assert reason == "API key k1 acts for Contoso, and its creator no longer does"


# can_push: package selection --------------------------------------------------------------------------


def test_glob_selects_ids() -> None:
    key = grant("push", globs=("Contoso.*",))
    assert push(key, "contoso.lib")[0]  # ids ignore case
    allowed, status, reason = push(key, "Other.Lib")
    assert (allowed, status) == (False, 403)
    assert reason == "API key k1 does not allow pushing Other.Lib: it matches no package or glob"
    assert not push(key, "Contoso")[0]


def test_package_list_selects_exact_ids() -> None:
    key = grant("push", globs=(), packages=("Contoso.Lib",))
    assert push(key, "CONTOSO.LIB")[0]
    assert not push(key, "Contoso.Lib.Extra")[0]


def test_selection_is_checked_before_ownership() -> None:
    key = grant("push", globs=("Other.*",))
    reason = push(key, exists=True, owners=frozenset({BOB}))[2]
    assert "matches no package or glob" in reason


# can_unlist ---------------------------------------------------------------------------------------------


def test_owner_with_unlist_scope_unlists() -> None:
    assert unlist(grant("unlist"), owners=frozenset({ALICE})) == (True, 200, "")


@pytest.mark.parametrize("scope", ["push", "push-version"])
def test_unlist_needs_the_unlist_scope(scope: str) -> None:
    assert unlist(grant(scope), owners=frozenset({ALICE})) == (
        False,
        403,
        "API key k1 does not allow unlisting packages",
    )


def test_unlist_needs_the_package_selected() -> None:
    assert unlist(grant("unlist", globs=("Other.*",)), owners=frozenset({ALICE})) == (
        False,
        403,
        "API key k1 does not allow unlisting Contoso.Lib: it matches no package or glob",
    )


def test_non_owner_cannot_unlist() -> None:
    assert unlist(grant("unlist"), owners=frozenset({BOB})) == (
        False,
        403,
        "alice is not an owner of Contoso.Lib",
    )


def test_org_key_unlists_the_orgs_package_while_its_creator_is_a_member() -> None:
    org_key = grant("unlist", owner_id=CONTOSO, owner_name="Contoso")
    assert unlist(org_key, owners=frozenset({CONTOSO}))[0]
    assert unlist(org_key, owners=frozenset({CONTOSO}), member=False) == (
        False,
        403,
        "API key k1 acts for Contoso, and its creator no longer does",
    )


# Trusted publishing -------------------------------------------------------------------------------------


def test_a_trusted_only_package_refuses_long_lived_keys() -> None:
    decision = can_push(
        grant("push"),
        "Contoso.Lib",
        exists=True,
        owner_ids=frozenset({ALICE}),
        actor_is_member=True,
        trusted_only=True,
    )
    assert (decision.allowed, decision.status) == (False, 403)
    assert "accepts only trusted publishing" in decision.reason


def test_a_trusted_only_package_accepts_minted_keys() -> None:
    minted = replace(
        grant("push"), policy_id=7, origin="trusted publishing: GitHub Actions contoso/lib run 1"
    )
    decision = can_push(
        minted,
        "Contoso.Lib",
        exists=True,
        owner_ids=frozenset({ALICE}),
        actor_is_member=True,
        trusted_only=True,
    )
    assert decision.allowed
    assert minted.credential.startswith("trusted publishing: ")
    assert grant("push").credential == "API key k1"


def test_a_trusted_only_package_still_needs_an_owner() -> None:
    minted = replace(grant("push"), policy_id=7)
    decision = can_push(
        minted,
        "Contoso.Lib",
        exists=True,
        owner_ids=frozenset({BOB}),
        actor_is_member=True,
        trusted_only=True,
    )
    assert "is not an owner" in decision.reason


def test_policies_are_made_by_the_owner_or_an_admin_of_the_org() -> None:
    assert can_manage_policy(actor="alice", owner="alice", is_owner=True, administers_owner=False).allowed
    assert can_manage_policy(actor="alice", owner="Contoso", is_owner=False, administers_owner=True).allowed
    refused = can_manage_policy(actor="bob", owner="Contoso", is_owner=False, administers_owner=False)
    assert (refused.allowed, refused.status) == (False, 403)
    assert "only Contoso itself or an administrator" in refused.reason


def mint(**changes: object) -> Decision:
    facts: dict[str, object] = {
        "policy": "release",
        "creator": "alice",
        "creator_active": True,
        "owner": "Contoso",
        "owner_active": True,
        "owner_is_org": True,
        "creator_administers_owner": True,
        "creator_holds_keys": ALLOW,
        "expired_unbound": False,
    }
    facts.update(changes)
    return can_mint(**facts)  # type: ignore[arg-type]


def test_a_policy_mints_when_everything_holds() -> None:
    assert mint().allowed


def test_a_disabled_creator_or_owner_stops_minting() -> None:
    assert "alice, who made policy 'release', is disabled" in mint(creator_active=False).reason
    assert "organization Contoso is disabled" in mint(owner_active=False).reason


def test_a_creator_no_longer_admin_of_the_org_stops_minting() -> None:
    refused = mint(creator_administers_owner=False)
    assert (refused.allowed, refused.status) == (False, 403)
    assert "no longer an administrator of Contoso" in refused.reason
    assert mint(owner_is_org=False, owner="alice", creator_administers_owner=False).allowed


def test_a_creator_who_may_not_hold_keys_stops_minting() -> None:
    """Audit 1b/1c: the rules for keys made by hand hold at every mint (two-factor, a confirmed email)."""
    why = hold(two_factor=False, site_requires_2fa=False)
    refused = mint(creator_holds_keys=why)
    assert (refused.allowed, refused.status) == (False, 403)
    assert refused.reason == (
        "alice, who made policy 'release', may not be given API keys now: Contoso requires two-factor "
        "sign-in of its members to create or regenerate API keys for it: turn it on in your account settings"
    )


def hold(**changes: object) -> Decision:
    facts: dict[str, object] = {
        "user": "alice",
        "email": "alice@example.test",
        "email_confirmed": True,
        "two_factor": True,
        "site_requires_2fa": True,
        "owner": "Contoso",
        "owner_is_org": True,
        "owner_requires_2fa": True,
    }
    facts.update(changes)
    return can_hold_keys(**facts)  # type: ignore[arg-type]


def test_keys_need_a_confirmed_email_and_two_factor_where_required() -> None:
    assert hold().allowed
    assert hold(two_factor=False, site_requires_2fa=False, owner_requires_2fa=False).allowed
    assert hold(two_factor=False, site_requires_2fa=False, owner_is_org=False, owner="alice").allowed
    assert "This site requires two-factor sign-in" in hold(two_factor=False).reason
    org = hold(two_factor=False, site_requires_2fa=False)
    assert (org.status, org.reason.split(":")[0]) == (
        403,
        "Contoso requires two-factor sign-in of its members to create or regenerate API keys for it",
    )
    unconfirmed = hold(email_confirmed=False)
    assert unconfirmed.reason.startswith("Confirm your email address (alice@example.test) before creating")


def test_an_unused_policy_expires_after_its_seven_days() -> None:
    refused = mint(expired_unbound=True)
    assert (refused.allowed, refused.status) == (False, 401)
    assert "not used within 7 days" in refused.reason


def test_trusted_only_is_switched_by_owners_and_site_admins() -> None:
    assert can_set_trusted_only(actor="alice", package_id="P", owns_package=True, site_admin=False).allowed
    assert can_set_trusted_only(actor="root", package_id="P", owns_package=False, site_admin=True).allowed
    assert not can_set_trusted_only(actor="bob", package_id="P", owns_package=False, site_admin=False).allowed


# A key's life and accounts --------------------------------------------------------------------------------


def test_an_edit_keeps_a_keys_scopes() -> None:
    same = frozenset({"push", "unlist"})
    assert can_change_scopes(key_id="k1", current=same, asked=same) == Decision(True)
    for asked in ({"push"}, {"push", "unlist", "push-version"}, {"unlist"}):
        refused = can_change_scopes(key_id="k1", current=same, asked=frozenset(asked))
        assert (refused.allowed, refused.status) == (False, 400)
        assert refused.reason == (
            "A key's scopes cannot change (API key k1 may push, unlist): create a new key for other actions"
        )


@pytest.mark.parametrize("who", ["made_it", "is_owner", "administers_owner", "site_admin"])
def test_a_key_is_revoked_by_its_creator_owner_org_admins_or_site_admins(who: str) -> None:
    rights = dict.fromkeys(("made_it", "is_owner", "administers_owner", "site_admin"), False)
    rights[who] = True
    assert can_revoke_key(actor="x", owner="Contoso", owner_is_org=True, **rights).allowed


def test_anyone_else_may_not_revoke_a_key() -> None:
    none = dict.fromkeys(("made_it", "is_owner", "administers_owner", "site_admin"), False)
    org = can_revoke_key(actor="carol", owner="Contoso", owner_is_org=True, **none)
    assert (org.status, org.reason) == (403, "Only administrators of Contoso can revoke its keys")
    user = can_revoke_key(actor="carol", owner="bob", owner_is_org=False, **none)
    assert (user.status, user.reason) == (403, "Only bob can revoke its keys")


def test_only_site_admins_manage_accounts() -> None:
    assert can_manage_accounts(actor="root", site_admin=True, what="disable accounts").allowed
    refused = can_manage_accounts(actor="bob", site_admin=False, what="disable accounts")
    assert (refused.status, refused.reason) == (403, "Only site admins can disable accounts")


def test_nobody_disables_itself_or_the_last_site_admin() -> None:
    assert can_disable(actor="root", target="bob", is_self=False, last_site_admin=False).allowed
    itself = can_disable(actor="root", target="root", is_self=True, last_site_admin=False)
    assert (itself.status, itself.reason) == (403, "You cannot disable or delete your own account here")
    last = can_disable(actor=None, target="root", is_self=False, last_site_admin=True)
    assert (last.status, last.reason) == (
        409,
        "root is the last site admin: make another user a site admin first",
    )


# Actors on the pages and the command line: a user, the operator -------------------------------------------
# ALICE owns packages herself and administers CONTOSO; CAROL is a collaborator of CONTOSO; BOB is a stranger.

CAROL, ROOT = 4, 5
OWNER = User(ALICE, "alice", admin_of=frozenset({CONTOSO}), member_of=frozenset({CONTOSO}))
COLLABORATOR = User(CAROL, "carol", member_of=frozenset({CONTOSO}))
STRANGER = User(BOB, "bob")
SITE_ADMIN = User(ROOT, "root", site_admin=True)
DISABLED_ADMIN = User(ROOT, "root", site_admin=True, active=False)
ORG = Party(CONTOSO, "Contoso", is_org=True)
EVERYONE: dict[str, Actor] = {
    "operator": OPERATOR,
    "site admin": SITE_ADMIN,
    "disabled site admin": DISABLED_ADMIN,
    "owner": OWNER,
    "collaborator": COLLABORATOR,
    "stranger": STRANGER,
}


def allowed(rule: Callable[[Actor], Decision]) -> set[str]:
    """The actor kinds ``rule`` allows, refusals checked to carry a reason."""
    decisions = {name: rule(actor) for name, actor in EVERYONE.items()}
    assert all(d.reason for d in decisions.values() if not d.allowed)
    return {name for name, d in decisions.items() if d.allowed}


def test_the_operator_and_enabled_site_admins_are_site_admins() -> None:
    assert allowed(lambda a: Decision(is_site_admin(a), 403, "no")) == {"operator", "site admin"}


def test_owners_are_managed_by_owners_org_admins_and_site_admins() -> None:
    for owned_by in (frozenset({ALICE}), frozenset({CONTOSO})):
        assert allowed(lambda a, owners=owned_by: can_manage_owners(a, "Contoso.Lib", owner_ids=owners)) == {
            "operator",
            "site admin",
            "owner",
        }
    refused = can_manage_owners(COLLABORATOR, "Contoso.Lib", owner_ids=frozenset({CONTOSO}))
    assert (refused.status, refused.reason) == (403, "Only owners of Contoso.Lib can manage its owners")


def test_only_site_admins_add_owners_without_an_invitation() -> None:
    assert allowed(can_add_owner_directly) == {"operator", "site admin"}
    assert can_add_owner_directly(OWNER).reason == (
        "Only site admins can add owners directly; owners send invitations"
    )


def test_an_invitation_is_answered_by_the_invitee_or_its_admins() -> None:
    assert allowed(lambda a: can_answer_invitation(a, ORG, accept=True)) == {
        "operator",
        "site admin",
        "owner",
    }
    assert allowed(lambda a: can_answer_invitation(a, Party(BOB, "bob"), accept=False)) == {
        "operator",
        "site admin",
        "stranger",
    }
    assert (
        can_answer_invitation(COLLABORATOR, ORG, accept=True).reason
        == "Only Contoso can accept this invitation"
    )
    assert (
        can_answer_invitation(STRANGER, ORG, accept=False).reason == "Only Contoso can reject this invitation"
    )


def test_users_unlist_what_they_or_their_orgs_own() -> None:
    assert allowed(lambda a: can_unlist(a, "Contoso.Lib", owner_ids=frozenset({CONTOSO}))) == {
        "owner",
        "collaborator",
    }
    refused = can_unlist(STRANGER, "Contoso.Lib", owner_ids=frozenset({CONTOSO}))
    assert (refused.status, refused.reason) == (403, "You are not an owner of Contoso.Lib")
    assert owner_acted_for(OWNER, frozenset({ALICE, CONTOSO})) == ALICE  # itself first
    assert owner_acted_for(COLLABORATOR, frozenset({ALICE, CONTOSO})) == CONTOSO
    assert owner_acted_for(OPERATOR, frozenset({ALICE})) is None


def test_an_org_is_created_with_oneself_as_its_admin_unless_a_site_admin() -> None:
    assert allowed(lambda a: can_create_org(a, first_admin_id=ALICE)) == {"operator", "site admin", "owner"}
    assert can_create_org(STRANGER, first_admin_id=ALICE).reason == (
        "You can only create an organization you administer yourself"
    )


def test_an_org_page_exists_for_its_members_and_site_admins_only() -> None:
    assert allowed(lambda a: can_see_org(a, ORG)) == {"operator", "site admin", "owner", "collaborator"}
    refused = can_see_org(STRANGER, Party(CONTOSO, "contoso", is_org=True))
    assert (refused.status, refused.reason) == (404, "No organization named 'contoso'")


def test_members_are_managed_by_org_admins_and_site_admins_and_anyone_may_leave() -> None:
    assert allowed(lambda a: can_manage_members(a, ORG)) == {"operator", "site admin", "owner"}
    assert allowed(lambda a: can_manage_members(a, ORG, leaving=True)) == set(EVERYONE)
    refused = can_manage_members(COLLABORATOR, ORG)
    assert (refused.status, refused.reason) == (403, "Only administrators of Contoso can manage its members")


def test_an_orgs_keys_are_seen_and_revoked_by_its_admins_and_site_admins() -> None:
    assert allowed(lambda a: can_see_org_keys(a, ORG)) == {"operator", "site admin", "owner"}
    assert can_see_org_keys(COLLABORATOR, ORG).reason == "Only administrators of Contoso can see its keys"
    assert allowed(lambda a: can_revoke_org_key(a, ORG)) == {"operator", "site admin", "owner"}
    assert (
        can_revoke_org_key(COLLABORATOR, ORG).reason == "Only administrators of Contoso can revoke its keys"
    )


def test_no_right_counts_through_a_disabled_org() -> None:
    """CONTOSO disabled: its admin and collaborator act through it no more (reasons naming it); alice still
    acts in her own name; seeing it is not acting; site admins and the operator are not concerned."""
    off = frozenset({ORG})
    admin, collaborator = replace(OWNER, disabled_orgs=off), replace(COLLABORATOR, disabled_orgs=off)
    org_lib, both = frozenset({CONTOSO}), frozenset({ALICE, CONTOSO})
    suspended = "Contoso is disabled: its administrators cannot"
    until = "until a site admin enables it again"
    checks = [
        (can_manage_owners(admin, "Contoso.Lib", owner_ids=org_lib), "manage the owners of Contoso.Lib"),
        (can_answer_invitation(admin, ORG, accept=True), "accept invitations for it"),
        (can_answer_invitation(admin, ORG, accept=False), "reject invitations for it"),
        (can_manage_members(admin, ORG), "manage its members or settings"),
        (can_see_org_keys(admin, ORG), "see or revoke its keys"),
        (can_revoke_org_key(admin, ORG), "see or revoke its keys"),
    ]
    for decision, what in checks:
        assert (decision.status, decision.reason) == (403, f"{suspended} {what} {until}")
    refused = can_unlist(collaborator, "Contoso.Lib", owner_ids=org_lib)
    assert (
        refused.reason
        == f"Contoso is disabled: its members cannot unlist or relist Contoso.Lib through it {until}"
    )
    assert not can_change_policy(admin, 7, owner_id=CONTOSO).allowed
    assert owner_acted_for(collaborator, org_lib) is None and owner_acted_for(admin, both) == ALICE
    assert can_manage_owners(admin, "Both.Lib", owner_ids=both).allowed  # alice owns it herself
    assert can_unlist(admin, "Both.Lib", owner_ids=both).allowed
    assert can_manage_members(collaborator, ORG, leaving=True).allowed
    assert can_see_org(admin, ORG).allowed and can_see_org(collaborator, ORG).allowed
    assert visible_accounts(admin) == {ALICE, CONTOSO}
    stranger = can_manage_owners(STRANGER, "Contoso.Lib", owner_ids=org_lib)
    assert stranger.reason == "Only owners of Contoso.Lib can manage its owners"  # told nothing of it
    for other in (OPERATOR, SITE_ADMIN):
        assert can_manage_owners(other, "Contoso.Lib", owner_ids=org_lib).allowed
        assert can_manage_members(other, ORG).allowed


def test_an_invitation_holds_while_its_sender_may_send_it_and_waits_for_a_disabled_org() -> None:
    org_lib = frozenset({CONTOSO})
    assert invitation_holds(OWNER, "Contoso.Lib", owner_ids=org_lib) == ALLOW
    waiting = invitation_holds(
        replace(OWNER, disabled_orgs=frozenset({ORG})), "Contoso.Lib", owner_ids=org_lib
    )
    assert (waiting.status, waiting.reason) == (
        403,
        "Contoso is disabled: alice sent this invitation as one of its administrators, so it cannot be "
        "accepted until a site admin enables it again",
    )
    dead = "no longer holds: {}, who sent it, may no longer manage its owners"
    for sender, name in (
        (COLLABORATOR, "carol"),
        (replace(OWNER, active=False), "alice"),
        (None, "its sender"),
    ):
        refused = invitation_holds(sender, "Contoso.Lib", owner_ids=org_lib)
        assert refused.status == 409 and dead.format(name) in refused.reason


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (can_reserve_prefixes, "Only site admins can reserve or release id prefixes"),
        (can_revoke_leaked_keys, "Only site admins can revoke leaked keys"),
        (can_manage_users, "Only site admins can manage users"),
        (lambda a: can_manage_users(a, "disable accounts"), "Only site admins can disable accounts"),
    ],
)
def test_site_administration_is_for_site_admins(rule: Callable[[Actor], Decision], reason: str) -> None:
    assert allowed(rule) == {"operator", "site admin"}
    assert (rule(OWNER).status, rule(OWNER).reason) == (403, reason)


def test_audit_events_are_seen_by_their_accounts_admins() -> None:
    assert visible_accounts(OPERATOR) is None and visible_accounts(SITE_ADMIN) is None
    assert visible_accounts(OWNER) == {ALICE, CONTOSO}
    assert visible_accounts(COLLABORATOR) == {CAROL}


def test_keys_are_made_for_oneself_or_an_org_one_belongs_to() -> None:
    assert can_create_key_for(OWNER, Party(ALICE, "alice")).allowed
    assert can_create_key_for(COLLABORATOR, ORG).allowed
    refused = can_create_key_for(STRANGER, Party(CONTOSO, "contoso", is_org=True))
    assert (refused.status, refused.reason) == (
        400,
        "bob cannot create keys for contoso: not a member of that organization",
    )
    assert not can_create_key_for(OWNER, Party(BOB, "bob")).allowed  # another user: never


def test_a_policy_is_changed_by_its_owners_admins_or_site_admins_not_a_creator_gone() -> None:
    """Audit 2: carol made the org's policy, then became a collaborator (or left): no longer hers."""

    def rule(actor: Actor) -> Decision:
        return can_change_policy(actor, 7, owner_id=CONTOSO)

    assert allowed(rule) == {"operator", "site admin", "owner"}
    assert can_change_policy(COLLABORATOR, 7, owner_id=CAROL).allowed  # carol's own policy
    refused = rule(STRANGER)
    assert (refused.status, refused.reason) == (404, "You have no trusted publishing policy 7")


def test_a_dead_key_cannot_change() -> None:
    assert can_change_key("ci", "edited", revoked_reason=None).allowed
    revoked = can_change_key("ci", "regenerated", revoked_reason="leaked")
    assert (revoked.status, revoked.reason) == (
        409,
        "API key 'ci' was revoked (leaked): it cannot be regenerated; delete it",
    )
    expired = can_change_key("ci", "edited", revoked_reason=None, expired=True)
    assert (expired.status, expired.reason) == (
        409,
        "API key 'ci' has expired: regenerate it to renew it first",
    )
    assert can_change_key("ci", "regenerated", revoked_reason=None, expired=True).allowed


def test_require_raises_the_refusal_with_its_status_and_reason() -> None:
    require(Decision(True))
    for status, error in ((403, Forbidden), (404, NotFound), (409, Conflict), (400, ServiceError)):
        with pytest.raises(error) as raised:
            require(Decision(False, status, "why"))
        assert (raised.value.status, raised.value.message) == (status, "why")
    with pytest.raises(Refused) as audited:  # a key's refusal, which the push service audits
        require(Decision(False, 409, "why"), Refused)
    assert audited.value.status == 409
