"""Reserved prefixes and their look-alikes (``nugat.prefixes``): which new ids a reservation keeps out."""

from __future__ import annotations

import pytest

from nugat.prefixes import Reservation, resembles, reservation_of, word_ends

SQUATS = ["C0ntoso.Security", "Contoso-Security", "ContosoSecurity", "Contoso_Security", "C0NTOSO.Identity"]


@pytest.mark.parametrize("package_id", SQUATS)
def test_the_reported_squats_look_like_the_prefix(package_id: str) -> None:
    assert resembles("Contoso.*", package_id)


@pytest.mark.parametrize(
    ("prefix", "package_id", "resembling"),
    [
        # under the prefix itself
        ("Contoso.*", "Contoso.Security", True),
        ("Contoso.*", "contoso.security", True),
        # any separator or none where the reserved one stands, the skeleton's look-alike letters
        ("Contoso.*", "C0ntoso-Lib", True),
        ("Contoso.*", "CONTOSO_Lib", True),
        ("Contoso.*", "Contos0Security", True),
        ("Contoso.*", "CONTOSOSecurity", True),  # capitals, then a capitalized word
        ("Contoso.*", "Contoso365", True),  # a digit after the name starts a word
        ("Contoso.*", "ContosoSecurity.Tools", True),
        ("Contoso.*", "Contoso..Lib", True),
        ("Contoso-*", "Contoso.Lib", True),
        ("Modern.*", "Modem.Lib", True),  # rn looks like m
        ("Modern.*", "rnodernLib", True),
        ("Contoso.Azure.*", "ContosoAzure.Storage", True),
        ("Contoso.Azure.*", "Contoso.AzureStorage", True),
        # another word that merely starts with the same letters
        ("Contoso.*", "Contosoft", False),
        ("Contoso.*", "Contosoft.Lib", False),
        ("Contoso.*", "CONTOSOFT", False),
        ("Contoso.*", "Contos0ft", False),
        # one case throughout: no visible word end, so not told from Contosoft (a documented limit)
        ("Contoso.*", "contososecurity", False),
        ("Contoso.*", "CONTOSOSECURITY", False),
        # the bare name is not under Contoso.* (nor is its look-alike); nor is a name elsewhere in the id
        ("Contoso.*", "Contoso", False),
        ("Contoso.*", "C0ntoso", False),
        ("Contoso.*", "My.Contoso.Lib", False),
        ("Contoso.*", "MyContoso.Lib", False),
        # other names
        ("Contoso.*", "Contos.Security", False),
        ("Contoso.*", "Kontoso.Security", False),
        ("Contoso.*", "Contoso2", True),
        # a prefix without a separator before '*' reserves every continuation, and their look-alikes
        ("Contoso*", "Contosoft", True),
        ("Contoso*", "C0ntosoft", True),
        ("Contoso*", "Kontosoft", False),
        # an exact id: its look-alikes only
        ("Contoso", "C0ntoso", True),
        ("Contoso", "CONTOS0", True),
        ("Contoso", "Contoso.Lib", False),
        ("Contoso.Core", "Contoso-Core", True),
        ("Contoso.Core", "Contoso.Core.Extra", False),
    ],
)
def test_resembles(prefix: str, package_id: str, resembling: bool) -> None:
    assert resembles(prefix, package_id) is resembling


@pytest.mark.parametrize(
    ("package_id", "ends"),
    [
        ("ContosoSecurity", ["Contoso"]),
        ("CONTOSOSecurity", ["CONTOSO"]),
        ("Contoso.Security-Tools", ["Contoso", "Contoso.Security"]),
        ("Contoso365Mail", ["Contoso", "Contoso365"]),
        ("contososecurity", []),
        ("XMLParser", ["XML"]),
    ],
)
def test_word_ends(package_id: str, ends: list[str]) -> None:
    assert [package_id[:k] for k in word_ends(package_id)] == ends


RESERVED = [("Contoso.*", 2), ("Contoso.*", 3), ("Fabrikam.Core", 4)]


def test_reservation_of_an_id_under_a_prefix() -> None:
    assert reservation_of("Contoso.Lib", RESERVED) == Reservation("Contoso.*", frozenset({2, 3}), False)


def test_reservation_of_a_lookalike() -> None:
    assert reservation_of("C0ntoso-Lib", RESERVED) == Reservation("Contoso.*", frozenset({2, 3}), True)
    assert reservation_of("Fabrikam-Core", RESERVED) == Reservation("Fabrikam.Core", frozenset({4}), True)


def test_a_reservation_covering_the_id_wins_over_one_it_looks_like() -> None:
    # a site admin reserved both; the prefix the id is literally under decides
    reserved = [*RESERVED, ("C0ntoso.*", 5)]
    assert reservation_of("C0ntoso.Lib", reserved) == Reservation("C0ntoso.*", frozenset({5}), False)


def test_no_reservation() -> None:
    assert reservation_of("Contosoft", RESERVED) is None
    assert reservation_of("Other.Lib", []) is None
