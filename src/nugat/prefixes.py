"""Reserved package id prefixes, as nuget.org's ID prefix reservation (pure; no database, no web).

A reservation reads ``Contoso.*`` (every id starting with ``Contoso.``) or ``Contoso`` (that id only);
``Contoso.`` is taken as ``Contoso.*``. Matching ignores case, as package ids do.

A reservation also keeps out its look-alikes (``resembles``): ids that a reader would take for ids under
it, by the skeleton of ``nugat.confusables``, with any separator or none between the reserved name and
the rest. With ``Contoso.*`` reserved, ``C0ntoso.Security``, ``Contoso-Security``, ``Contoso_Security``,
``ContosoSecurity`` and ``CONTOSOSecurity`` look like Contoso's; ``Contosoft`` is another word and
does not. Where the reserved name ends is read from the id itself: at a separator, at a capital letter
starting a new word (``ContosoSecurity``, ``CONTOSOSecurity``) or at a digit after a letter
(``Contoso365``). An id written in one case throughout (``contososecurity``) has no visible word end,
so it cannot be told from ``contosoft``, and is not taken for a look-alike. A reservation without a
separator before its ``*`` (``Contoso*``) covers every continuation, so every look-alike of its start.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from nugat.confusables import skeleton

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,98}\*?$")
SEPARATORS = ".-_"


class InvalidPrefix(ValueError):
    """The text is not a prefix one can reserve; the message says why."""


@dataclass(frozen=True)
class Reservation:
    """What the reservations say about one new id: who holds it, under which prefix, and whether the id
    is under it (``lookalike`` False) or only looks like an id that would be (True)."""

    prefix: str
    holders: frozenset[int]
    lookalike: bool


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


def word_ends(package_id: str) -> Iterator[int]:
    """The positions where a word of the id ends: before a separator, before a capital that starts a
    word (``ContosoSecurity``, ``CONTOSOSecurity``), and before a digit that follows a letter."""
    for k in range(1, len(package_id)):
        before, here = package_id[k - 1], package_id[k]
        after = package_id[k + 1 : k + 2]
        if (
            here in SEPARATORS
            or (here.isupper() and (before.islower() or before.isdigit()))
            or (here.isupper() and before.isupper() and after.islower())
            or (here.isdigit() and before.isalpha())
        ):
            yield k


def resembles(prefix: str, package_id: str) -> bool:
    """Whether ``package_id`` is under ``prefix`` or looks like an id that would be (module docstring)."""
    if prefix_covers(prefix, package_id):
        return True
    if not prefix.endswith("*"):
        return skeleton(package_id) == skeleton(prefix)
    stem = prefix[:-1]
    name = stem.rstrip(SEPARATORS)
    wanted = skeleton(name)
    if not wanted:
        return False
    # Without a separator before the '*', any continuation is reserved: every start of the id counts.
    ends: Iterable[int] = range(1, len(package_id) + 1) if name == stem else word_ends(package_id)
    return any(skeleton(package_id[:k]) == wanted for k in ends)


def reservation_of(package_id: str, reservations: Iterable[tuple[str, int]]) -> Reservation | None:
    """The reservation deciding who may create ``package_id``: those covering it, if any (their holders
    may create it, as today); else those it looks like; else None (anyone may)."""
    found = sorted(reservations)
    covering = [(p, a) for p, a in found if prefix_covers(p, package_id)]
    if covering:
        return Reservation(covering[0][0], frozenset(a for _, a in covering), lookalike=False)
    resembled = [(p, a) for p, a in found if resembles(p, package_id)]
    if resembled:
        return Reservation(resembled[0][0], frozenset(a for _, a in resembled), lookalike=True)
    return None
