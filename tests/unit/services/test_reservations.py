"""``services.reservations``: site admins reserve and release id prefixes; a reservation changes who may
create ids under it (``test_packages.py``) and which packages are verified, whose documents are rewritten."""

from __future__ import annotations

import pytest

from nugat.services import NotFound
from nugat.services.reservations import PrefixView
from nugat.services.search import Query
from support.services import ADDRESS, Site, refused


@pytest.fixture
def site_with_users(site: Site) -> Site:
    site.users("alice", "bob")
    site.user("root", admin=True)
    return site


def verified(site: Site, package_id: str) -> tuple[bool, bool]:
    """Whether the id is verified in its registration documents, and in search."""
    _, hits = site.core.search.search(Query(q=package_id))
    in_search = next(h.verified for h in hits if h.registration.package_id == package_id)
    return site.catalog(package_id)["1.0.0"]["verified"], in_search


@pytest.mark.parametrize(
    ("given", "stored"), [("Contoso.", "Contoso.*"), (" Contoso.* ", "Contoso.*"), ("Fab", "Fab")]
)
def test_a_reservation_is_stored_normalized(site_with_users: Site, given: str, stored: str) -> None:
    assert site_with_users.core.prefixes.reserve(given, ["alice"]) == stored
    assert site_with_users.core.prefixes.all() == [PrefixView(stored, ["alice"])]


def test_only_site_admins_and_the_command_line_reserve_and_release(site_with_users: Site) -> None:
    prefixes = site_with_users.core.prefixes
    with refused(403, "Only site admins can reserve or release id prefixes"):
        prefixes.reserve("Contoso.*", ["alice"], by="alice")
    prefixes.reserve("Contoso.*", ["alice"], by="root", address=ADDRESS)
    prefixes.reserve("Fabrikam.*", ["bob"])
    with refused(403, "Only site admins"):
        prefixes.release("Contoso.*", by="alice")
    assert prefixes.all() == [PrefixView("Contoso.*", ["alice"]), PrefixView("Fabrikam.*", ["bob"])]
    events = site_with_users.events("prefix.reserve")
    assert [(e.actor, e.account, e.detail) for e in events] == [
        ("root", "alice", {"prefix": "Contoso.*"}),
        (None, "bob", {"prefix": "Fabrikam.*"}),
    ]


def test_reservations_that_make_no_sense(site_with_users: Site) -> None:
    prefixes = site_with_users.core.prefixes
    with refused(400, "invalid prefix"):
        prefixes.reserve("*", ["alice"])
    with refused(400, "Name at least one owner for the prefix"):
        prefixes.reserve("Contoso.*", [])
    with pytest.raises(NotFound, match="No account named 'nobody'"):
        prefixes.reserve("Contoso.*", ["nobody"])
    assert prefixes.all() == []


def test_several_holders_and_releases(site_with_users: Site) -> None:
    prefixes = site_with_users.core.prefixes
    site_with_users.core.orgs.create("Contoso", "alice")
    prefixes.reserve("Contoso.*", ["Contoso"])
    # adds bob (Contoso already holds it), under the spelling the prefix has
    assert prefixes.reserve("contoso.", ["bob", "Contoso"]) == "Contoso.*"
    with refused(409, "Contoso.* is already reserved for bob"):
        prefixes.reserve("Contoso.*", ["bob"])
    assert prefixes.all() == [PrefixView("Contoso.*", ["bob", "Contoso"])]
    prefixes.release("Contoso.*", "bob")
    with pytest.raises(NotFound, match=r"Contoso.\* is not reserved for bob"):
        prefixes.release("Contoso.*", "bob")
    prefixes.release("Contoso.*")
    with pytest.raises(NotFound, match=r"Contoso.\* is not reserved$"):
        prefixes.release("Contoso.*")
    assert prefixes.all() == []


def test_a_reservation_verifies_the_covered_ids_its_holders_own(site_with_users: Site) -> None:
    alice = site_with_users.key("alice")
    for package_id in ("Contoso.Core", "Contoso", "Other.Lib"):
        site_with_users.push(alice, package_id)
    site_with_users.push(site_with_users.key("bob"), "Contoso.Bob")
    untouched = {k: b.info.token for k, b in site_with_users.storage.blobs.items() if "other.lib" in k}
    site_with_users.core.prefixes.reserve("Contoso.*", ["alice"])
    assert verified(site_with_users, "Contoso.Core") == (True, True)
    assert verified(site_with_users, "Contoso") == (False, False)  # Contoso.* does not cover Contoso
    assert verified(site_with_users, "Contoso.Bob") == (False, False)  # not owned by a holder
    assert {k: site_with_users.storage.blobs[k].info.token for k in untouched} == untouched
    site_with_users.core.prefixes.release("Contoso.*", "alice")
    assert verified(site_with_users, "Contoso.Core") == (False, False)


def test_a_reservation_or_release_moves_the_search_generation_even_covering_no_id(
    site_with_users: Site,
) -> None:
    """Search keeps the reservations it read while the generation stays: every change must move it."""
    db = site_with_users.core.db
    before = db.generation()
    site_with_users.core.prefixes.reserve("Nothing.Yet.*", ["alice"])
    reserved = db.generation()
    assert reserved != before
    site_with_users.core.prefixes.release("Nothing.Yet.*")
    assert db.generation() != reserved


def test_a_reservation_lands_even_when_the_documents_cannot_be_written(site_with_users: Site) -> None:
    site_with_users.push(site_with_users.key("alice"), "Contoso.Core")
    site_with_users.storage.fail("put", times=None)
    site_with_users.core.prefixes.reserve("Contoso.*", ["alice"])
    assert site_with_users.core.prefixes.all() == [PrefixView("Contoso.*", ["alice"])]
    assert site_with_users.core.materializer.stale() == ["contoso.core"]
    site_with_users.storage.heal()
    site_with_users.core.packages.recover()
    assert verified(site_with_users, "Contoso.Core") == (True, True)


def test_deleting_a_holder_leaves_no_package_verified_by_its_reservation(site_with_users: Site) -> None:
    """The audit's repro: erin held Erin.*, Contoso co-owned Erin.Lib; after ``nugat user delete erin``
    search said verified: false, its registration kept saying true (the reservation went with the account,
    the documents were not rebuilt). Deleting marks what it owned stale; the server rebuilds it. An heir
    that holds a reservation covering a transferred id makes it verified the same way."""
    core = site_with_users.core
    site_with_users.users("erin", "frank")
    core.orgs.create("Contoso", "alice")
    core.prefixes.reserve("Erin.*", ["erin"])
    site_with_users.push(site_with_users.key("erin"), "Erin.Lib")
    core.owners.add("Erin.Lib", "Contoso")
    site_with_users.push(site_with_users.key("erin"), "Frank.Lib")  # before frank's reservation
    core.prefixes.reserve("Frank.*", ["frank"])
    assert verified(site_with_users, "Erin.Lib") == (True, True)
    assert verified(site_with_users, "Frank.Lib") == (False, False)
    core.accounts.delete_user("erin", transfer_to="frank")
    assert sorted(core.materializer.stale()) == ["erin.lib", "frank.lib"]
    core.materializer.build_stale()
    assert verified(site_with_users, "Erin.Lib") == (False, False)
    assert verified(site_with_users, "Frank.Lib") == (True, True)
