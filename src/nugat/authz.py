"""Who may do what: every permission of nugat, one function per decision, each returning its reason.

An actor is one of three kinds: a key (``keys.KeyGrant``, on the NuGet protocol), a signed-in ``User`` (its
account facts resolved once per operation by ``services.actors``), or the ``Operator`` (whoever runs the
command line on the server's machine, who may do what a site admin may). A rule takes the actor and the
plain facts the service gathered about the resource (owner ids, the organization, ...) and returns a
``Decision``; ``require`` turns a refusal into the service error the client reads. Pages call the same
functions to decide what to show. A new action is one more function here, with its facts as arguments.

Missing, malformed, unknown, regenerated-away, revoked, disabled and expired keys never reach this module:
they are refused with 403 where the key is verified (``services.accounts.verify_key``), as on nuget.org;
as a feed's password (reads), with 401 (``services.readers``), so that the client asks for credentials.
Here a valid key is checked against the action, the package and its owners, and refused with 403 (or 409
for a reserved prefix, as nuget.org).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from nugat.keys import KeyGrant, Scope
from nugat.prefixes import Reservation
from nugat.services import Conflict, Forbidden, NotFound, ServiceError


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int = 200
    reason: str = ""


ALLOW = Decision(True)


def _deny(reason: str, status: int = 403) -> Decision:
    return Decision(False, status, reason)


_ERRORS: dict[int, type[ServiceError]] = {403: Forbidden, 404: NotFound, 409: Conflict}


def require(decision: Decision, error: type[ServiceError] | None = None) -> None:
    """Raise the refusal as the service error carrying its status and reason (``error``: a subclass to
    raise instead of the one the status names, e.g. one that is audited as a failed use of a key)."""
    if not decision.allowed:
        raise (error or _ERRORS.get(decision.status, ServiceError))(decision.reason, decision.status)


# Actors ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operator:
    """The local operator: the command line, run by whoever runs the server. Named, never ``None``."""

    name: str = "the command line"


OPERATOR = Operator()


@dataclass(frozen=True)
class Party:
    """An account a rule is about: a user or an organization."""

    id: int
    name: str
    is_org: bool = False


@dataclass(frozen=True)
class User:
    """A signed-in user (or one named on the command line with ``--by``), with the facts rules need.

    A right through an organization counts only while the organization is active: ``administers`` and
    ``represents`` skip ``disabled_orgs``, so that while an organization is disabled no one manages its
    packages' owners, its members or its keys, nor unlists its packages, through it (as its keys are
    refused and its policies mint nothing). Seeing it is not acting: its page, its audit events and its
    private packages stay visible to its members (``can_see_org``, ``visible_accounts``, ``reads_for``).
    """

    id: int
    name: str
    site_admin: bool = False
    active: bool = True  # neither disabled nor deleted
    admin_of: frozenset[int] = frozenset()  # ids of the organizations it administers
    member_of: frozenset[int] = frozenset()  # ids of the organizations it belongs to, in any role
    disabled_orgs: frozenset[Party] = frozenset()  # those of its organizations that are disabled now


Actor = User | Operator
"""Who acts on the pages or the command line (a key acts on the protocol: ``KeyGrant``)."""


def is_site_admin(actor: Actor) -> bool:
    """The operator, or an enabled site admin: may manage every account, organization, package and prefix."""
    return isinstance(actor, Operator) or (actor.site_admin and actor.active)


def administers(actor: Actor, account_id: int) -> bool:
    """May ``actor`` act as ``account_id``'s manager: it is that account, an admin of it (while it is not
    disabled), or a site admin."""
    if is_site_admin(actor):
        return True
    assert isinstance(actor, User)
    return actor.id == account_id or (account_id in actor.admin_of and not _disabled(actor, account_id))


def represents(actor: Actor, account_id: int) -> bool:
    """Is ``actor`` that account, or a member (in any role) of that organization while it is not disabled?
    Never the operator."""
    return isinstance(actor, User) and (
        actor.id == account_id or (account_id in actor.member_of and not _disabled(actor, account_id))
    )


def _disabled(actor: User, account_id: int) -> bool:
    return any(org.id == account_id for org in actor.disabled_orgs)


def disabled_org_through(actor: Actor, account_ids: frozenset[int], *, admin: bool) -> Party | None:
    """The disabled organization among ``account_ids`` that ``actor`` administers (``admin``) or belongs
    to, if any: the right it would give is suspended. For the reason of a refusal."""
    if not isinstance(actor, User):
        return None
    held = actor.admin_of if admin else actor.member_of
    orgs = sorted(actor.disabled_orgs, key=lambda org: org.name.lower())
    return next((org for org in orgs if org.id in account_ids and org.id in held), None)


def _suspended(org: Party, what: str) -> Decision:
    return _deny(f"{org.name} is disabled: {what} until a site admin enables it again")


def owner_acted_for(actor: Actor, owner_ids: frozenset[int]) -> int | None:
    """The owner a user acts for on a package: itself if it owns it, else its first organization that does."""
    if isinstance(actor, User) and actor.id in owner_ids:
        return actor.id
    return next((o for o in sorted(owner_ids) if represents(actor, o)), None)


# Keys on the NuGet protocol ----------------------------------------------------------------------------


def can_push(
    grant: KeyGrant,
    package_id: str,
    *,
    exists: bool,
    owner_ids: frozenset[int],
    actor_is_member: bool,
    reservation: Reservation | None = None,
    looks_like: str | None = None,
    trusted_only: bool = False,
) -> Decision:
    """May this key push ``package_id``? ``exists``: the id has versions already; ``owner_ids``: its owners.

    ``actor_is_member`` says whether the key's creator still acts for the key's owner (always true for a
    user's own key; for an organization's key, whether the creator is still a member). ``looks_like``: an
    existing id of another owner that ``package_id`` is confusable with (``nugat.confusables``); ``""``
    when that id is private to accounts the key does not act for: it is refused all the same, unnamed.
    ``reservation``: the reserved prefix ``package_id`` is under or looks like (``nugat.prefixes``), if
    any; only new ids are refused, as on nuget.org. A holder of that reservation may create the id
    whatever look-alikes others pushed before the reservation: ``looks_like`` never refuses it.
    """
    if not actor_is_member:
        return _deny(f"API key {grant.key_id} acts for {grant.owner_name}, and its creator no longer does")
    if not grant.covers(package_id):
        return _deny(
            f"API key {grant.key_id} does not allow pushing {package_id}: it matches no package or glob"
        )
    if not exists:
        if Scope.PUSH not in grant.scopes:
            if Scope.PUSH_VERSION in grant.scopes:
                return _deny(
                    f"API key {grant.key_id} may only push new versions of existing packages; "
                    f"{package_id} does not exist yet"
                )
            return _deny(f"API key {grant.key_id} does not allow pushing packages")
        if reservation is not None:
            return _reserved(grant, package_id, reservation)
        if looks_like is not None:
            return _deny(
                f"The package id {package_id} is too similar to "
                f"{f'the existing package {looks_like}' if looks_like else 'an existing package'}: "
                "choose a different id",
                409,
            )
        return ALLOW
    if not ({Scope.PUSH, Scope.PUSH_VERSION} & grant.scopes):
        return _deny(f"API key {grant.key_id} does not allow pushing packages")
    if grant.owner_id not in owner_ids:
        return _deny(f"{grant.owner_name} is not an owner of {package_id}")
    if trusted_only and not grant.trusted:
        return _deny(
            f"{package_id} accepts only trusted publishing: push it from its CI workflow with a key "
            f"minted for the run; long-lived API keys such as {grant.key_id} are refused"
        )
    return ALLOW


def _reserved(grant: KeyGrant, package_id: str, reservation: Reservation) -> Decision:
    """A new id under (or looking like an id under) a reserved prefix: only the prefix's holders."""
    if grant.owner_id in reservation.holders:
        return ALLOW
    if reservation.lookalike:
        return _deny(
            f"The package id {package_id} looks like an id in the reserved prefix {reservation.prefix}, "
            "which belongs to someone else: choose a different id",
            409,
        )
    return _deny(f"The package id {package_id} is in a reserved prefix owned by someone else", 409)


def can_unlist(
    actor: KeyGrant | Actor, package_id: str, *, owner_ids: frozenset[int], actor_is_member: bool = True
) -> Decision:
    """May this key, or this user on the pages, unlist or relist a version of ``package_id``?

    A user may when it owns the package or belongs (in any role) to an organization that does; a key
    as ``can_push`` decides, with its ``unlist`` scope (``actor_is_member``: as for ``can_push``).
    """
    if not isinstance(actor, KeyGrant):
        if owner_acted_for(actor, owner_ids) is None:
            org = disabled_org_through(actor, owner_ids, admin=False)
            if org is not None:
                return _suspended(org, f"its members cannot unlist or relist {package_id} through it")
            return _deny(f"You are not an owner of {package_id}")
        return ALLOW
    grant = actor
    if not actor_is_member:
        return _deny(f"API key {grant.key_id} acts for {grant.owner_name}, and its creator no longer does")
    if Scope.UNLIST not in grant.scopes:
        return _deny(f"API key {grant.key_id} does not allow unlisting packages")
    if not grant.covers(package_id):
        return _deny(
            f"API key {grant.key_id} does not allow unlisting {package_id}: it matches no package or glob"
        )
    if grant.owner_id not in owner_ids:
        return _deny(f"{grant.owner_name} is not an owner of {package_id}")
    return ALLOW


# Package owners (``services.owners``) -------------------------------------------------------------------


def can_manage_owners(actor: Actor, package_id: str, *, owner_ids: frozenset[int]) -> Decision:
    """May ``actor`` invite, cancel invitations to, or remove owners of ``package_id``? An owner, an
    administrator of an owning organization (while it is not disabled), or a site admin."""
    if is_site_admin(actor) or any(administers(actor, o) for o in owner_ids):
        return ALLOW
    org = disabled_org_through(actor, owner_ids, admin=True)
    if org is not None:
        return _suspended(org, f"its administrators cannot manage the owners of {package_id}")
    return _deny(f"Only owners of {package_id} can manage its owners")


def invitation_holds(sender: User | None, package_id: str, *, owner_ids: frozenset[int]) -> Decision:
    """Does an invitation to co-own ``package_id`` still hold, sent by ``sender`` (None: no such user now)?

    Only while its sender may manage the package's owners (``can_manage_owners``) and is not disabled.
    409: that right is gone, and the invitation with it (it is dropped). 403: the right came through an
    organization that is disabled now: the invitation waits, and holds again once it is enabled.
    """
    if sender is not None and sender.active:
        if can_manage_owners(sender, package_id, owner_ids=owner_ids).allowed:
            return ALLOW
        org = disabled_org_through(sender, owner_ids, admin=True)
        unsuspended = replace(sender, disabled_orgs=frozenset())
        if org is not None and can_manage_owners(unsuspended, package_id, owner_ids=owner_ids).allowed:
            return _suspended(org, f"{sender.name} sent this invitation as one of its administrators, so it "
                                   "cannot be accepted")  # fmt: skip
    return _deny(
        f"The invitation to own {package_id} no longer holds: {sender.name if sender else 'its sender'}, "
        "who sent it, may no longer manage its owners. Ask a current owner to invite you again.",
        409,
    )


def can_add_owner_directly(actor: Actor) -> Decision:
    """May ``actor`` make an account a co-owner without an invitation? Site admins only."""
    if is_site_admin(actor):
        return ALLOW
    return _deny("Only site admins can add owners directly; owners send invitations")


def can_answer_invitation(actor: Actor, invitee: Party, *, accept: bool) -> Decision:
    """May ``actor`` accept (or reject) an invitation to ``invitee``: it is the invitee, or administers it
    (an organization while it is not disabled)."""
    if administers(actor, invitee.id):
        return ALLOW
    org = disabled_org_through(actor, frozenset({invitee.id}), admin=True)
    if org is not None:
        return _suspended(
            org, f"its administrators cannot {'accept' if accept else 'reject'} invitations for it"
        )
    return _deny(f"Only {invitee.name} can {'accept' if accept else 'reject'} this invitation")


# Organizations (``services.orgs``) ------------------------------------------------------------------------


def can_create_org(actor: Actor, *, first_admin_id: int) -> Decision:
    """May ``actor`` create an organization whose first administrator is ``first_admin_id``? Itself, or
    anyone for a site admin."""
    if is_site_admin(actor) or (isinstance(actor, User) and actor.id == first_admin_id):
        return ALLOW
    return _deny("You can only create an organization you administer yourself")


def can_see_org(actor: Actor, org: Party) -> Decision:
    """May ``actor`` see ``org``'s page? Its members (even while it is disabled: seeing is not acting) and
    site admins; to anyone else it does not exist."""
    if is_site_admin(actor) or (isinstance(actor, User) and org.id in actor.member_of):
        return ALLOW
    return _deny(f"No organization named {org.name!r}", 404)


def can_manage_members(actor: Actor, org: Party, *, leaving: bool = False) -> Decision:
    """May ``actor`` add, change or remove members of ``org`` (or its two-factor rule)? Its administrators
    and site admins (not while it is disabled); ``leaving``: the actor removes itself, which every member
    may, even then."""
    if leaving or administers(actor, org.id):
        return ALLOW
    disabled = disabled_org_through(actor, frozenset({org.id}), admin=True)
    if disabled is not None:
        return _suspended(disabled, "its administrators cannot manage its members or settings")
    return _deny(f"Only administrators of {org.name} can manage its members")


def can_see_org_keys(actor: Actor, org: Party) -> Decision:
    """May ``actor`` list the keys acting for ``org`` (never a secret)? Its administrators (not while it is
    disabled) and site admins."""
    if administers(actor, org.id):
        return ALLOW
    disabled = disabled_org_through(actor, frozenset({org.id}), admin=True)
    if disabled is not None:
        return _suspended(disabled, "its administrators cannot see or revoke its keys")
    return _deny(f"Only administrators of {org.name} can see its keys")


def can_revoke_org_key(actor: Actor, org: Party) -> Decision:
    """May ``actor`` revoke a key acting for ``org``, whoever made it? Its admins (``can_revoke_key``; not
    while it is disabled: its keys are refused meanwhile, and site admins may)."""
    if not is_site_admin(actor) and (
        disabled := disabled_org_through(actor, frozenset({org.id}), admin=True)
    ):
        return _suspended(disabled, "its administrators cannot see or revoke its keys")
    return can_revoke_key(
        actor=actor.name,
        owner=org.name,
        owner_is_org=True,
        made_it=False,
        is_owner=False,
        administers_owner=administers(actor, org.id),
        site_admin=is_site_admin(actor),
    )


def visible_accounts(actor: Actor) -> frozenset[int] | None:
    """Whose audit events may ``actor`` read, besides those it made? Its own account's and those of the
    organizations it administers; ``None``: every event (site admins and the operator)."""
    if is_site_admin(actor):
        return None
    assert isinstance(actor, User)
    return actor.admin_of | {actor.id}


# Site administration (``services.reservations``, ``services.leaks``, ``services.accounts``) -------------


def can_reserve_prefixes(actor: Actor) -> Decision:
    """May ``actor`` reserve or release id prefixes? Site admins only."""
    if is_site_admin(actor):
        return ALLOW
    return _deny("Only site admins can reserve or release id prefixes")


def can_revoke_leaked_keys(actor: Actor) -> Decision:
    """May ``actor`` revoke every key found in a pasted text, whoever holds them? Site admins only."""
    if is_site_admin(actor):
        return ALLOW
    return _deny("Only site admins can revoke leaked keys")


def can_hold_keys(
    *,
    user: str,
    email: str | None,
    email_confirmed: bool,
    two_factor: bool,
    site_requires_2fa: bool,
    owner: str,
    owner_is_org: bool,
    owner_requires_2fa: bool,
) -> Decision:
    """May user ``user`` be given an API key acting for ``owner`` now: create or regenerate one, save a
    trusted publishing policy that mints them, or have such a policy mint one (checked at every mint)?

    Not before it confirmed its email address; not without two-factor sign-in (``two_factor``) where the
    site (``NUGAT_REQUIRE_2FA``) or the key's organization (``owner_requires_2fa``) requires it.
    """
    if not email_confirmed:
        return _deny(
            f"Confirm your email address ({email}) before creating API keys or pushing: open the "
            "link mailed to you (your account page sends it again)"
        )
    if not two_factor:
        if site_requires_2fa:
            return _deny(
                "This site requires two-factor sign-in to create or regenerate API keys: turn it on "
                "in your account settings"
            )
        if owner_is_org and owner_requires_2fa:
            return _deny(
                f"{owner} requires two-factor sign-in of its members to create or regenerate API "
                "keys for it: turn it on in your account settings"
            )
    return ALLOW


def can_create_key_for(user: User, owner: Party) -> Decision:
    """May ``user`` create (or edit) a key acting for ``owner``? Its own, or an organization it belongs to."""
    if owner.id == user.id or (owner.is_org and owner.id in user.member_of):
        return ALLOW
    return _deny(f"{user.name} cannot create keys for {owner.name}: not a member of that organization", 400)


# Trusted publishing (``services.trusted``) ------------------------------------------------------------


def can_manage_policy(*, actor: str, owner: str, is_owner: bool, administers_owner: bool) -> Decision:
    """May ``actor`` create (or change) a trusted publishing policy acting for ``owner``?

    ``is_owner``: the actor is that account; ``administers_owner``: it is an admin of that organization.
    A policy mints keys in its creator's name, so only those who could make such keys by hand may.
    """
    if is_owner or administers_owner:
        return ALLOW
    return _deny(
        f"{actor} cannot make trusted publishing policies for {owner}: only {owner} itself "
        "or an administrator of the organization can"
    )


def can_mint(
    *,
    policy: str,
    creator: str,
    creator_active: bool,
    owner: str,
    owner_active: bool,
    owner_is_org: bool,
    creator_administers_owner: bool,
    creator_holds_keys: Decision,
    expired_unbound: bool,
) -> Decision:
    """May policy ``policy`` mint a key now? Checked after the token matched it, at every mint.

    ``creator_active``/``owner_active``: the accounts are neither disabled nor deleted.
    ``creator_administers_owner``: for an organization's policy, its creator is still an admin of it
    (rights are re-checked at each mint, not only when the policy was made). ``creator_holds_keys``:
    ``can_hold_keys`` for the creator and the owner, now (its email confirmed, two-factor sign-in where
    the site or the organization requires it): a minted key is one more key in the creator's name.
    ``expired_unbound``: the policy was never used and its 7 days to first use have passed (nuget.org's
    rule).
    """
    if not creator_active:
        return _deny(f"The user {creator}, who made policy {policy!r}, is disabled")
    if not owner_active:
        return _deny(f"The {'organization' if owner_is_org else 'user'} {owner} is disabled")
    if owner_is_org and not creator_administers_owner:
        return _deny(
            f"{creator} is no longer an administrator of {owner}: policy {policy!r} cannot mint keys for it"
        )
    if not creator_holds_keys.allowed:
        why = creator_holds_keys.reason
        return _deny(f"{creator}, who made policy {policy!r}, may not be given API keys now: {why}")
    if expired_unbound:
        return _deny(
            f"Policy {policy!r} was not used within 7 days of being saved, so it expired; "
            "save it again to give it another 7 days",
            401,
        )
    return ALLOW


def can_change_policy(actor: Actor, policy_id: int, *, owner_id: int) -> Decision:
    """May ``actor`` see, edit or delete policy ``policy_id``? Whoever administers its owner now: the
    owner itself (a user's policy is made by that user), a current administrator of the organization
    (those who may see and revoke its keys, and make its policies), a site admin. Not its creator as
    such: one who left the organization, or is only a collaborator of it now, no longer sees the org's
    minted keys and CI runs, nor changes or deletes the policy. To anyone else it does not exist."""
    if administers(actor, owner_id):
        return ALLOW
    return unseen_policy(policy_id)


def unseen_policy(policy_id: int) -> Decision:
    """The refusal for a policy one may not see, told as for one that does not exist."""
    return _deny(f"You have no trusted publishing policy {policy_id}", 404)


def can_set_trusted_only(*, actor: str, package_id: str, owns_package: bool, site_admin: bool) -> Decision:
    """May ``actor`` switch "trusted publishing only" on or off for ``package_id``?

    ``owns_package``: the actor owns it, or administers an organization that does.
    """
    if owns_package or site_admin:
        return ALLOW
    return _deny(f"{actor} is not an owner of {package_id}")


# A key's life and accounts (``services.accounts``, ``services.orgs``) --------------------------------------


def can_change_scopes(*, key_id: str, current: frozenset[str], asked: frozenset[str]) -> Decision:
    """May an edit give key ``key_id`` the scopes ``asked``? Only its own: as on nuget.org, an edit changes
    which packages a key covers, never what it may do (other actions need a new key)."""
    if asked == current:
        return ALLOW
    return _deny(
        f"A key's scopes cannot change (API key {key_id} may {', '.join(sorted(current))}): "
        "create a new key for other actions",
        400,
    )


def can_change_key(name: str, what: str, *, revoked_reason: str | None, expired: bool = False) -> Decision:
    """May key ``name`` be ``what`` ("edited", "regenerated") now? Never once revoked (it is dead for good:
    only deleted), and an expired key is regenerated before it is edited (the pages ask that)."""
    if revoked_reason is not None:
        return _deny(f"API key {name!r} was revoked ({revoked_reason}): it cannot be {what}; delete it", 409)
    if expired and what == "edited":
        return _deny(f"API key {name!r} has expired: regenerate it to renew it first", 409)
    return ALLOW


def can_revoke_key(
    *,
    actor: str,
    owner: str,
    owner_is_org: bool,
    made_it: bool,
    is_owner: bool,
    administers_owner: bool,
    site_admin: bool,
) -> Decision:
    """May ``actor`` revoke a key acting for ``owner``? Its creator (``made_it``), the owner itself, an
    administrator of the owning organization, or a site admin (the command line is one)."""
    if made_it or is_owner or administers_owner or site_admin:
        return ALLOW
    if owner_is_org:
        return _deny(f"Only administrators of {owner} can revoke its keys")
    return _deny(f"Only {owner} can revoke its keys")


def can_manage_users(actor: Actor, what: str = "manage users") -> Decision:
    """``can_manage_accounts`` for an actor: may it see the users, disable, enable or delete them?"""
    return can_manage_accounts(actor=actor.name, site_admin=is_site_admin(actor), what=what)


def can_manage_accounts(*, actor: str, site_admin: bool, what: str) -> Decision:
    """May ``actor`` disable, enable or delete accounts (``what``: the action, for the reason)? Site admins
    only (and the command line, run by whoever runs the server)."""
    if site_admin:
        return ALLOW
    return _deny(f"Only site admins can {what}")


def can_disable(*, actor: str | None, target: str, is_self: bool, last_site_admin: bool) -> Decision:
    """May ``target`` be disabled (or deleted) now? Never by itself, never the last enabled site admin."""
    if is_self:
        return _deny("You cannot disable or delete your own account here")
    if last_site_admin:
        return _deny(f"{target} is the last site admin: make another user a site admin first", 409)
    return ALLOW


# Reads (``readgate``, ``services.readers``, search and the package pages) --------------------------------


Reader = KeyGrant | User | Operator
"""Who reads: a key (a feed's password), a signed-in user (the pages), or the operator."""


def reads_for(reader: Reader) -> frozenset[int] | None:
    """The accounts whose private packages ``reader`` may read (None: every account, for the operator): a
    user's own and its organizations'; a key's owner's and, for a key acting for a user, that user's
    organizations' (``KeyGrant.owner_member_of``)."""
    if isinstance(reader, Operator):
        return None
    if isinstance(reader, User):
        return frozenset({reader.id}) | reader.member_of
    return frozenset({reader.owner_id}) | reader.owner_member_of


def can_read_feed(reader: Reader | None, *, public_site: bool) -> Decision:
    """May this reader use the feed at all? ``public_site``: ``NUGAT_READ_ACCESS=public``.

    401 asks the NuGet client for the source's credentials (the user name is not checked; the password
    is an API key with the Read scope). A key without that scope is refused even on a public site: its
    holder set it as a feed's password, and a silent anonymous read would hide the mistake.
    """
    if reader is None:
        if public_site:
            return ALLOW
        return _deny(
            "This feed needs credentials: add the source with any user name and an API key with the "
            "Read scope as the password",
            401,
        )
    if isinstance(reader, KeyGrant) and Scope.READ not in reader.scopes:
        return _deny(
            f"API key {reader.key_id} does not allow reading packages: "
            "create a key with the Read scope for the feed's password"
        )
    return ALLOW


def can_read(
    reader: Reader | None, package_id: str, *, public_site: bool, private_owners: frozenset[int]
) -> Decision:
    """May this reader (already let in by ``can_read_feed``) see ``package_id``? 404 when not: to whom
    may not read it, an id is as absent as one never pushed.

    ``private_owners``: the owners of the id when an owner is a private organization, else empty. A
    public id is readable by everyone on a public site and by every user on a ``users`` site, but a key
    reads only the ids it covers there. A private id is readable by those acting for one of its owners
    (``reads_for``), and by a key only if it also covers the id.
    """
    if reader is None:
        allowed = public_site and not private_owners
    else:
        accounts = reads_for(reader)
        covered = not isinstance(reader, KeyGrant) or reader.covers(package_id)
        if accounts is None:
            allowed = True
        elif private_owners:
            allowed = bool(accounts & private_owners) and covered
        else:
            allowed = public_site or covered
    return ALLOW if allowed else _deny("Not found", 404)
