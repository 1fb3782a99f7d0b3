"""Who may push or unlist what: one function per decision, each returning the reason a user reads.

Missing, malformed, unknown, regenerated-away, revoked, disabled and expired keys never reach this module:
they are refused with 403 where the key is verified (``services.accounts.verify_key``), as on nuget.org.
Here a valid key is checked against the action, the package and its owners, and refused with 403 (or 409
for a reserved prefix, as nuget.org).
"""

from __future__ import annotations

from dataclasses import dataclass

from nugat.keys import KeyGrant, Scope
from nugat.prefixes import Reservation


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int = 200
    reason: str = ""


ALLOW = Decision(True)


def _deny(reason: str, status: int = 403) -> Decision:
    return Decision(False, status, reason)


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
    existing id of another owner that ``package_id`` is confusable with (``nugat.confusables``).
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
                f"The package id {package_id} is too similar to the existing package {looks_like}: "
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
    grant: KeyGrant, package_id: str, *, owner_ids: frozenset[int], actor_is_member: bool
) -> Decision:
    """May this key unlist or relist a version of ``package_id``?"""
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
    expired_unbound: bool,
) -> Decision:
    """May policy ``policy`` mint a key now? Checked after the token matched it, at every mint.

    ``creator_active``/``owner_active``: the accounts are neither disabled nor deleted.
    ``creator_administers_owner``: for an organization's policy, its creator is still an admin of it
    (rights are re-checked at each mint, not only when the policy was made). ``expired_unbound``: the
    policy was never used and its 7 days to first use have passed (nuget.org's rule).
    """
    if not creator_active:
        return _deny(f"The user {creator}, who made policy {policy!r}, is disabled")
    if not owner_active:
        return _deny(f"The {'organization' if owner_is_org else 'user'} {owner} is disabled")
    if owner_is_org and not creator_administers_owner:
        return _deny(
            f"{creator} is no longer an administrator of {owner}: policy {policy!r} cannot mint keys for it"
        )
    if expired_unbound:
        return _deny(
            f"Policy {policy!r} was not used within 7 days of being saved, so it expired; "
            "save it again to give it another 7 days",
            401,
        )
    return ALLOW


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


@dataclass(frozen=True)
class Reader:
    """Who reads: a verified key (``grant``), or a signed-in user (``grant`` None).

    ``acts_for``: the accounts whose private packages it may read: for a user, itself and its
    organizations; for a key, its owner and, when that owner is a user, the user's organizations.
    """

    acts_for: frozenset[int]
    grant: KeyGrant | None = None


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
    if reader.grant is not None and Scope.READ not in reader.grant.scopes:
        return _deny(
            f"API key {reader.grant.key_id} does not allow reading packages: "
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
    reads only the ids it covers there. A private id is readable by those acting for one of its owners,
    and by a key only if it also covers the id.
    """
    grant = reader.grant if reader is not None else None
    covered = grant is None or grant.covers(package_id)
    if private_owners:
        if reader is not None and reader.acts_for & private_owners and covered:
            return ALLOW
    elif public_site or (reader is not None and covered):
        return ALLOW
    return _deny("Not found", 404)
