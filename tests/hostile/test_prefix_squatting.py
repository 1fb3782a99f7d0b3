"""Squatting a reserved prefix with look-alike ids (issue 10, item 3), against a real server.

With ``Contoso.*`` reserved for the org Contoso, another user's ``C0ntoso.Security``, ``Contoso-Security``,
``ContosoSecurity``, ``Contoso_Security`` and ``C0NTOSO.Identity`` are refused with 409 and nothing is
stored; a look-alike pushed before the reservation does not stop Contoso's own ``Contoso.Security``.
The rule itself, edge by edge, is in ``tests/unit/test_prefixes.py``.
"""

from __future__ import annotations

import json

from hostile.harness import Feed, assert_refusal
from support.server import NugatServer, ensure_user, user_key
from support.zips import package

SQUATS = ["C0ntoso.Security", "Contoso-Security", "ContosoSecurity", "Contoso_Security", "C0NTOSO.Identity"]


def org_key(server: NugatServer, user: str, org: str) -> str:
    """A push key of ``user`` acting for the new organization ``org`` (``user`` its admin)."""
    ensure_user(server, user)
    server.cli("org", "create", org, "--admin", user, check=True)
    proc = server.cli(
        "key", "create", "--user", user, "--owner", org, "--name", "ci", "--scope", "push", "--glob", "*",
        "--json",
        check=True,
    )  # fmt: skip
    return str(json.loads(proc.stdout)["key"])


def test_lookalikes_of_a_reserved_prefix_are_refused(feed: Feed) -> None:
    server = feed.server
    contoso = org_key(server, "carol", "Contoso")
    mallory = user_key(server, "mallory", ["push"])
    # Before the reservation, mallory takes a look-alike of the id Contoso will want.
    assert feed.push(package("C0ntoso.Security"), key=mallory).status_code == 201
    server.cli("prefix", "reserve", "Contoso.*", "--owner", "Contoso", check=True)

    before = feed.snapshot()
    for squat in [*SQUATS[1:], "C0ntoso.Tools", "CONTOSOSecurity", "Contoso365"]:
        assert_refusal(
            feed.push(package(squat), key=mallory),
            409,
            rf"^The package id {squat} looks like an id in the reserved prefix Contoso\.\*, which belongs "
            "to someone else: choose a different id$",
        )
    assert_refusal(
        feed.push(package("Contoso.Tools"), key=mallory),
        409,
        r"^The package id Contoso\.Tools is in a reserved prefix owned by someone else$",
    )
    feed.assert_nothing_stored(before)

    # The owner of the reservation pushes under it, whatever look-alikes came before.
    for mine in ("Contoso.Security", "Contoso.Identity", "Contoso-Tools"):
        assert feed.push(package(mine), key=contoso).status_code == 201, mine
    owners = feed.rows(
        "SELECT r.package_id, a.name FROM package_registrations r JOIN package_owners o "
        "ON o.registration_id = r.id JOIN accounts a ON a.id = o.account_id WHERE r.id_lower LIKE 'c%'"
    )
    assert sorted(owners) == [
        ("C0ntoso.Security", "mallory"),
        ("Contoso-Tools", "Contoso"),
        ("Contoso.Identity", "Contoso"),
        ("Contoso.Security", "Contoso"),
    ]

    # Other words that start with the same letters, and the name elsewhere in an id, stay free.
    for free in ("Contosoft", "Contosoft.Lib", "My.Contoso.Lib"):
        assert feed.push(package(free), key=mallory).status_code == 201, free
