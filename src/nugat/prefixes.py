"""Reserved package id prefixes, as nuget.org's ID prefix reservation (pure; no database, no web).

A reservation reads ``Contoso.*`` (every id starting with ``Contoso.``) or ``Contoso`` (that id only);
``Contoso.`` is taken as ``Contoso.*``. Matching ignores case, as package ids do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,98}\*?$")


class InvalidPrefix(ValueError):
    """The text is not a prefix one can reserve; the message says why."""


def normalize_prefix(text: str) -> str:
    prefix = text.strip()
    if prefix.endswith("."):
        prefix += "*"
    if not _PREFIX_RE.match(prefix):
        raise InvalidPrefix(
            f"invalid prefix {text!r}: letters, digits, '.', '-' and '_', optionally ending in '*' "
            "(as Contoso.*)"
        )
    return prefix


def prefix_covers(prefix: str, package_id: str) -> bool:
    lowered = package_id.lower()
    if prefix.endswith("*"):
        return lowered.startswith(prefix[:-1].lower())
    return lowered == prefix.lower()


def reserving_owners(package_id: str, reservations: Iterable[tuple[str, int]]) -> frozenset[int]:
    """The accounts holding a reservation (prefix, account id) that covers ``package_id``."""
    return frozenset(account for prefix, account in reservations if prefix_covers(prefix, package_id))
