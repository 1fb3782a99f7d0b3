"""Who may push or unlist what: one function per decision, each returning the reason a user reads.

Missing, malformed, unknown, revoked and expired keys never reach this module: they are refused with 401
where the key is verified (``services.accounts.verify_key``). Here a valid key is checked against the
action, the package and its owners, and refused with 403 (or 409 for a reserved prefix, as nuget.org).
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
