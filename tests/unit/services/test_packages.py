"""``services.packages``: push, its undo when a write fails, recovery after a crash, unlist and relist, and
every authorization rule as the service applies it (the rules themselves: ``tests/unit/test_authz.py``)."""

from __future__ import annotations

import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nugat import faults
from nugat.authz import OPERATOR
from nugat.clock import utcnow
from nugat.db.models import PendingUpload
from nugat.feed import layout
from nugat.services import NotFound, leaks
from nugat.services.packages import PushResult
from nugat.services.search import Query
from nugat.storage.base import StorageError, StorageFull
from support.memory import MemoryStorage, PowerCut
from support.server import postgres_database
from support.services import ADDRESS, Clock, Site, refused
from support.zips import MIB, nuspec, package, record_bomb, spoil, zeros_bomb, zip_bytes

ID = "Contoso.Utils"
NUPKG = layout.nupkg("contoso.utils", "1.0.0")
NUSPEC = layout.nuspec("contoso.utils", "1.0.0")


@pytest.fixture
def alice(site: Site) -> Site:
    """A site with users alice, bob and root (a site admin)."""
    site.users("alice", "bob")
    site.user("root", admin=True)
    return site


def nothing_stored_for(site: Site, package_id: str, version: str) -> None:
    """A refused or failed push of ``package_id`` ``version`` left no row, no blob and no note."""
    assert version not in site.versions(package_id)
    version_lower = version.lower()
    assert [b for b in site.blobs(package_id) if f"/{version_lower}/" in b] == []
    assert version_lower not in (site.flat_versions(package_id) or [])
    assert site.notes() == []


# Push -------------------------------------------------------------------------------------------------------


def test_push_stores_the_version_its_files_and_documents(alice: Site) -> None:
    grant = alice.key("alice", "push")
    upload = alice.upload(ID, "1.0.0")
    sent = upload.read_bytes()
    assert alice.core.packages.push(upload, grant, ADDRESS) == PushResult(ID, "1.0.0", True)
    assert alice.versions(ID) == {"1.0.0": True}
    assert alice.blobs(ID) == sorted([NUPKG, NUSPEC])
    assert alice.storage.get_bytes(NUPKG) == sent
    assert b"<id>Contoso.Utils</id>" in (alice.storage.get_bytes(NUSPEC) or b"")
    assert alice.flat_versions(ID) == ["1.0.0"]
    assert alice.catalog(ID)["1.0.0"]["listed"] is True
    assert alice.catalog(ID, "registration")["1.0.0"]["id"] == ID
    assert alice.notes() == []
    assert [o.name for o in alice.core.owners.of_package(ID)] == ["alice"]


def test_a_push_is_audited_and_marks_the_key_used(alice: Site, clock: Clock) -> None:
    grant = alice.key("alice", "push")
    alice.push(grant, ID)
    event = alice.events("package.push")[0]
    assert (event.actor, event.account, event.package_id, event.version) == ("alice", "alice", ID, "1.0.0")
    assert (event.key_id, event.address) == (grant.key_id, ADDRESS)
    assert alice.core.accounts.list_keys("alice")[0].last_used == clock.now


def test_later_versions_join_the_id_whatever_their_case(alice: Site) -> None:
    grant = alice.key("alice", "push")
    alice.push(grant, ID, "1.0.0")
    assert alice.push(grant, "CONTOSO.utils", "2.0.0-beta") == PushResult(
        "CONTOSO.utils", "2.0.0-beta", False
    )
    assert alice.versions(ID) == {"1.0.0": True, "2.0.0-beta": True}
    assert alice.flat_versions(ID) == ["1.0.0", "2.0.0-beta"]
    assert [o.name for o in alice.core.owners.of_package(ID)] == ["alice"]


def test_versions_are_stored_normalized(alice: Site) -> None:
    grant = alice.key("alice", "push")
    assert alice.push(grant, ID, "01.2").version == "1.2.0"
    assert alice.push(grant, ID, "1.3.0.0").version == "1.3.0"
    assert alice.push(grant, ID, "2.0.0-RC.1+build.7").version == "2.0.0-RC.1"
    assert alice.flat_versions(ID) == ["1.2.0", "1.3.0", "2.0.0-rc.1"]
    assert layout.nupkg("contoso.utils", "2.0.0-rc.1") in alice.blobs(ID)
    # SemVer 2.0.0 versions are left out of the hive that older clients read
    assert sorted(alice.catalog(ID)) == ["1.2.0", "1.3.0", "2.0.0-RC.1+build.7"]
    assert sorted(alice.catalog(ID, "registration")) == ["1.2.0", "1.3.0"]


def test_an_existing_version_is_409_and_left_as_it_was(alice: Site) -> None:
    grant = alice.key("alice", "push")
    alice.push(grant, ID, payload=b"the first\n")
    first = alice.storage.get_bytes(NUPKG)
    before = alice.documents(ID)
    with refused(409, r"Contoso.Utils 1.0.0 already exists and cannot be modified"):
        alice.push(grant, "contoso.utils", "1.0.0.0", payload=b"another\n")
    assert alice.storage.get_bytes(NUPKG) == first
    assert alice.documents(ID) == before
    assert alice.notes() == []
    assert len(alice.events("package.push")) == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not a zip at all", "zip"),
        (zip_bytes({"content/payload.txt": b"hello"}), "nuspec"),
        (package(ID, "1.0.0", authors=None), "authors"),
        (
            spoil(package(ID, files={"lib/a.dll": bytes(range(256)) * 64}), "lib/a.dll"),
            "lib/a.dll' is corrupt",
        ),
        (spoil(package(ID), "content/payload.txt", crc=True), "payload.txt' is corrupt .Bad CRC"),
    ],
)
def test_an_invalid_package_is_400_and_stores_nothing(alice: Site, data: bytes, reason: str) -> None:
    upload = alice.upload(ID)
    upload.write_bytes(data)
    with refused(400, f"(?i){reason}"):
        alice.core.packages.push(upload, alice.key("alice", "push"), ADDRESS)
    assert alice.storage.keys() == []
    assert alice.notes() == []
    assert alice.events("package.push") == []


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (record_bomb(20_000, nuspec(ID)), "too many entries"),
        (zeros_bomb("lib/zeros.bin", 8 * MIB, nuspec(ID)), "suspicious compression ratio"),
        (
            zip_bytes({"a.nuspec": nuspec(ID), "lib/a.dll": bytes(MIB)}, zipfile.ZIP_BZIP2),
            "compression method",
        ),
        (package(ID, files={"%2e%2e/evil.dll": b"MZ"}), "unsafe path"),
    ],
    ids=["entries", "ratio", "method", "path"],
)
def test_what_the_headers_refuse_is_never_inflated(
    alice: Site, monkeypatch: pytest.MonkeyPatch, data: bytes, reason: str
) -> None:
    """The whole content is read (for keys inside, and corrupt entries) only once the headers passed: the
    headers' checks are what bound that read (a package of a million entries, or a bomb)."""
    scanned: list[Path] = []
    monkeypatch.setattr(leaks, "scan_package", lambda path: scanned.append(path) or [])
    grant = alice.key("alice", "push")
    upload = alice.upload(ID)
    upload.write_bytes(data)
    with refused(400, reason):
        alice.core.packages.push(upload, grant, ADDRESS)
    assert scanned == []
    alice.push(grant, ID)
    assert len(scanned) == 1


PNG = b"\x89PNG\r\n\x1a\n-icon"  # an icon must start as a PNG or JPEG image does (issue 10)


def test_embedded_readme_icon_and_license_are_stored_beside_the_package(alice: Site) -> None:
    files = {"docs/README.md": b"# Utils\n", "images/icon.png": PNG, "LICENSE.txt": b"MIT\n"}
    extra = (
        "<readme>docs/README.md</readme><icon>images/icon.png</icon>"
        '<license type="file">LICENSE.txt</license>'
    )
    alice.push(alice.key("alice", "push"), ID, files=files, extra=extra)
    folder = f"{layout.FLAT}/contoso.utils/1.0.0"
    assert alice.storage.get_bytes(f"{folder}/readme") == b"# Utils\n"
    assert alice.storage.get_bytes(f"{folder}/icon") == PNG
    assert alice.storage.get_bytes(f"{folder}/license") == b"MIT\n"
    # Stored as what they are, for a CDN serving the bucket: never as a type a browser runs script in.
    types = {
        name: alice.storage.blobs[f"{folder}/{name}"].content_type for name in ("readme", "icon", "license")
    }
    assert types == {
        "readme": "text/plain; charset=utf-8",
        "icon": "image/png",
        "license": "text/plain; charset=utf-8",
    }
    assert alice.storage.blobs[f"{folder}/contoso.utils.nuspec"].content_type == "application/octet-stream"
    entry = alice.catalog(ID)["1.0.0"]
    assert entry["readmeUrl"].endswith(f"{folder}/readme")
    assert entry["iconUrl"].endswith(f"{folder}/icon")


@pytest.mark.parametrize(
    "icon", [b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", b"GIF89a", b""]
)
def test_an_icon_that_is_not_a_png_or_jpeg_image_is_400(alice: Site, icon: bytes) -> None:
    with refused(400, "The icon file 'icon.png' is not a PNG or JPEG image"):
        alice.push(alice.key("alice", "push"), ID, files={"icon.png": icon}, extra="<icon>icon.png</icon>")
    assert alice.storage.keys() == []


def test_a_missing_embedded_file_is_400(alice: Site) -> None:
    with refused(400, "readme"):
        alice.push(alice.key("alice", "push"), ID, extra="<readme>docs/README.md</readme>")
    assert alice.storage.keys() == []


@pytest.fixture(params=["sqlite", "postgres"])
def limited(
    request: pytest.FixtureRequest, make_site: Callable[..., Site], tmp_path: Path, storage: MemoryStorage
) -> Iterator[Site]:
    """A site allowing 2 pushes a key an hour (PostgreSQL counts a push and notes it in one statement)."""
    if request.param == "sqlite":
        yield make_site(push_limit_per_hour=2)
        return
    with postgres_database() as url:
        site = Site(tmp_path / "pg", storage, push_limit_per_hour=2, database_url=url)
        try:
            site.core.db.upgrade()
            yield site
        finally:
            site.close()


def test_pushes_per_key_per_hour_are_limited(limited: Site, clock: Clock) -> None:
    site = limited
    site.users("alice")
    grant, other = site.key("alice", "push"), site.key("alice", "push")
    site.push(grant, ID, "1.0.0")
    site.push(grant, ID, "1.0.1")
    with refused(429, f"API key {grant.key_id} has pushed 2 packages this hour") as info:
        site.push(grant, ID, "1.0.2")
    assert 0 < info.value.retry_after <= 3600  # type: ignore[attr-defined]
    nothing_stored_for(site, ID, "1.0.2")
    site.push(other, ID, "1.0.2")  # the limit is the key's, not the user's
    clock.advance(hours=1)
    site.push(grant, ID, "1.0.3")
    assert sorted(site.versions(ID)) == ["1.0.0", "1.0.1", "1.0.2", "1.0.3"]


# Who may push -----------------------------------------------------------------------------------------------


def test_a_key_without_a_push_scope_cannot_push(alice: Site) -> None:
    grant = alice.key("alice", "unlist")
    with refused(403, f"API key {grant.key_id} does not allow pushing packages"):
        alice.push(grant, ID)
    nothing_stored_for(alice, ID, "1.0.0")
    failed = alice.events("key.use_failed")
    assert [(e.key_id, e.package_id, e.version, e.detail["operation"]) for e in failed] == [
        (grant.key_id, ID, "1.0.0", "push")
    ]
    assert "does not allow pushing" in failed[0].detail["reason"]


def test_push_version_pushes_new_versions_of_owned_ids_only(alice: Site) -> None:
    alice.push(alice.key("alice", "push"), ID, "1.0.0")
    alice.push(alice.key("bob", "push"), "Bob.Lib", "1.0.0")
    versions_only = alice.key("alice", "push-version")
    with refused(403, "may only push new versions of existing packages; Contoso.New does not exist yet"):
        alice.push(versions_only, "Contoso.New")
    with refused(403, "alice is not an owner of Bob.Lib"):
        alice.push(versions_only, "Bob.Lib", "2.0.0")
    alice.push(versions_only, ID, "1.1.0")
    assert sorted(alice.versions(ID)) == ["1.0.0", "1.1.0"]
    assert alice.versions("Contoso.New") == {}
    assert sorted(alice.versions("Bob.Lib")) == ["1.0.0"]


@pytest.mark.parametrize(
    ("globs", "packages", "allowed", "refused_id"),
    [
        (("Contoso.*",), (), "contoso.utils", "Fabrikam.Utils"),
        (("*.Utils",), (), "Contoso.Utils", "Contoso.Utils.Extra"),
        ((), ("Contoso.Utils",), "CONTOSO.UTILS", "Contoso.Utils2"),
    ],
)
def test_a_key_pushes_only_the_ids_its_globs_or_packages_select(
    alice: Site, globs: tuple[str, ...], packages: tuple[str, ...], allowed: str, refused_id: str
) -> None:
    grant = alice.key("alice", "push", globs=globs, packages=packages)
    alice.push(grant, allowed)
    with refused(403, f"does not allow pushing {refused_id}: it matches no package or glob"):
        alice.push(grant, refused_id)
    assert alice.versions(refused_id) == {}


def test_only_owners_push_new_versions(alice: Site) -> None:
    alice.push(alice.key("alice", "push"), ID)
    with refused(403, "bob is not an owner of Contoso.Utils"):
        alice.push(alice.key("bob", "push"), ID, "2.0.0")
    nothing_stored_for(alice, ID, "2.0.0")


def test_an_org_key_stops_when_its_creator_leaves_the_org(alice: Site) -> None:
    alice.core.orgs.create("Contoso", "alice")
    alice.core.orgs.add_member("Contoso", "bob", "collaborator")
    grant = alice.key("bob", "push", owner="Contoso")
    alice.push(grant, ID)
    assert [o.name for o in alice.core.owners.of_package(ID)] == ["Contoso"]
    alice.core.orgs.remove_member("Contoso", "bob")
    with refused(403, f"API key {grant.key_id} acts for Contoso, and its creator no longer does"):
        alice.push(grant, ID, "2.0.0")
    alice.push(alice.key("alice", "push", owner="Contoso"), ID, "2.0.0")


def test_a_reserved_prefix_keeps_new_ids_for_its_holders(alice: Site) -> None:
    bob = alice.key("bob", "push")
    alice.push(bob, "Contoso.Old")  # pushed before the reservation: stays bob's
    alice.core.prefixes.reserve("Contoso.*", ["alice"])
    with refused(409, "The package id Contoso.New is in a reserved prefix owned by someone else"):
        alice.push(bob, "Contoso.New")
    nothing_stored_for(alice, "Contoso.New", "1.0.0")
    alice.push(bob, "Contoso.Old", "2.0.0")
    alice.push(alice.key("alice", "push"), "Contoso.New")
    assert [o.name for o in alice.core.owners.of_package("Contoso.New")] == ["alice"]


def test_an_id_that_looks_like_a_reserved_prefix_is_409(alice: Site) -> None:
    alice.core.prefixes.reserve("Contoso.*", ["alice"])
    for lookalike in ("C0ntoso.Lib", "Contoso-Lib", "ContosoLib"):
        with refused(409, f"{lookalike} looks like an id in the reserved prefix Contoso.*"):
            alice.push(alice.key("bob", "push"), lookalike)
    alice.push(alice.key("alice", "push"), "C0ntoso.Lib")  # the holder may


def test_an_id_that_looks_like_another_owners_package_is_409(alice: Site) -> None:
    alice.push(alice.key("alice", "push"), "Newtonsoft.Json")
    for lookalike in ("Newtons0ft.Json", "newtonsoft-json", "NewtonsoftJson"):
        with refused(409, f"{lookalike} is too similar to the existing package Newtonsoft.Json"):
            alice.push(alice.key("bob", "push"), lookalike)
    assert alice.push(alice.key("alice", "push"), "NewtonsoftJson").created_package  # its owner may


# Unlist and relist ------------------------------------------------------------------------------------------


def test_unlist_and_relist(alice: Site) -> None:
    grant = alice.key("alice", "push", "unlist")
    alice.push(grant, ID, "1.0.0")
    alice.push(grant, ID, "2.0.0")
    alice.unlist(grant, ID, "2.0.0")
    assert alice.versions(ID) == {"1.0.0": True, "2.0.0": False}
    assert alice.catalog(ID)["2.0.0"]["listed"] is False
    assert alice.flat_versions(ID) == ["1.0.0", "2.0.0"]  # restore by exact version still works
    _, hits = alice.core.search.search(Query(q="contoso"))
    assert [h.latest.version for h in hits] == ["1.0.0"]
    alice.unlist(grant, "contoso.utils", "2.0")  # again: idempotent, any casing or form
    alice.relist(grant, ID, "2.0.0")
    assert alice.versions(ID) == {"1.0.0": True, "2.0.0": True}
    assert alice.catalog(ID)["2.0.0"]["listed"] is True
    events = alice.events()
    assert [e.action for e in events if e.action.startswith("package.")] == [
        "package.push",
        "package.push",
        "package.unlist",
        "package.unlist",
        "package.relist",
    ]
    assert (events[-1].key_id, events[-1].version, events[-1].address) == (grant.key_id, "2.0.0", ADDRESS)


@pytest.mark.parametrize(
    ("package_id", "version"), [("No.Such", "1.0.0"), (ID, "9.9.9"), (ID, "not-a-version")]
)
def test_unlisting_what_does_not_exist_is_404(alice: Site, package_id: str, version: str) -> None:
    grant = alice.key("alice")
    alice.push(grant, ID)
    with pytest.raises(NotFound, match="does not exist"):
        alice.unlist(grant, package_id, version)


def test_a_key_without_the_unlist_scope_cannot_unlist(alice: Site) -> None:
    grant = alice.key("alice", "push")
    alice.push(grant, ID)
    with refused(403, f"API key {grant.key_id} does not allow unlisting packages"):
        alice.unlist(grant, ID)
    with refused(403, "does not allow unlisting packages"):
        alice.relist(grant, ID)
    assert alice.versions(ID) == {"1.0.0": True}
    assert [e.detail["operation"] for e in alice.events("key.use_failed")] == ["unlist", "relist"]


def test_unlisting_needs_a_matching_glob_and_an_owner(alice: Site) -> None:
    alice.push(alice.key("alice", "push"), ID)
    with refused(403, "does not allow unlisting Contoso.Utils: it matches no package or glob"):
        alice.unlist(alice.key("alice", "unlist", globs=("Fabrikam.*",)), ID)
    with refused(403, "bob is not an owner of Contoso.Utils"):
        alice.unlist(alice.key("bob", "unlist"), ID)
    assert alice.versions(ID) == {"1.0.0": True}
    alice.unlist(alice.key("alice", "unlist", globs=("Contoso.*",)), ID)
    assert alice.versions(ID) == {"1.0.0": False}


def test_signed_in_owners_and_org_members_unlist_from_the_pages(alice: Site) -> None:
    alice.user("carol")
    alice.core.orgs.create("Contoso", "alice")
    alice.core.orgs.add_member("Contoso", "carol", "collaborator")
    alice.push(alice.key("alice", "push", owner="Contoso"), ID)
    with refused(403, "You are not an owner of Contoso.Utils"):
        alice.core.packages.set_listed(ID, "1.0.0", False, "bob", ADDRESS)
    alice.core.packages.set_listed(ID, "1.0.0", False, "carol", ADDRESS)
    assert alice.versions(ID) == {"1.0.0": False}
    event = alice.events("package.unlist")[0]
    assert (event.actor, event.account, event.key_id) == ("carol", "Contoso", None)


def test_one_set_listed_for_keys_and_users_and_only_keys_are_audited_as_failed_uses(alice: Site) -> None:
    alice.push(alice.key("alice", "push"), ID)
    with refused(403, f"bob is not an owner of {ID}"):
        alice.unlist(alice.key("bob", "unlist"), ID)
    with refused(403, f"You are not an owner of {ID}"):
        alice.core.packages.set_listed(ID, "1.0.0", False, "bob", ADDRESS)
    with refused(403, f"You are not an owner of {ID}"):  # the operator owns nothing: it unlists no package
        alice.core.packages.set_listed(ID, "1.0.0", False, OPERATOR, ADDRESS)
    assert [e.detail.get("operation") for e in alice.events("key.use_failed")] == ["unlist"]
    alice.core.packages.set_listed(ID, "1.0.0", False, "alice", ADDRESS)
    alice.core.packages.set_listed(ID, "1.0.0", True, "alice", ADDRESS)
    assert alice.versions(ID) == {"1.0.0": True}
    assert [(e.action, e.actor, e.account) for e in alice.events() if e.action.startswith("package.")][
        -2:
    ] == [
        ("package.unlist", "alice", "alice"),
        ("package.relist", "alice", "alice"),
    ]


# A failed push is undone ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [
        (StorageError("disk gone"), 503, "The package storage is unavailable; nothing was stored"),
        (StorageFull("no space"), 507, "The package storage is full; nothing was stored"),
    ],
)
def test_a_failed_blob_write_leaves_no_version_no_blob_and_the_documents_as_before(
    alice: Site, error: StorageError, status: int, reason: str
) -> None:
    grant = alice.key("alice", "push")
    alice.push(grant, ID, "1.0.0")
    before = alice.documents(ID)
    nuspec = layout.nuspec("contoso.utils", "2.0.0")
    alice.storage.fail("put", error, when=nuspec)  # the .nupkg is stored, then the .nuspec fails
    with refused(status, reason):
        alice.push(grant, ID, "2.0.0")
    nothing_stored_for(alice, ID, "2.0.0")
    assert alice.blobs(ID) == sorted([NUPKG, NUSPEC])
    assert alice.documents(ID) == before
    alice.push(grant, ID, "2.0.0")  # nothing stands in the way of the retry
    assert sorted(alice.versions(ID)) == ["1.0.0", "2.0.0"]


@pytest.mark.parametrize("created", [False, True])
def test_a_failed_flush_of_the_blobs_leaves_no_version_no_blob_and_the_documents_as_before(
    alice: Site, created: bool
) -> None:
    """The blobs are flushed to disk while the documents are written: a flush that fails is found before
    the version commits, and the push is undone as a failed write is."""
    grant = alice.key("alice", "push")
    if not created:
        alice.push(grant, ID, "1.0.0")
    before = alice.documents(ID)
    alice.storage.fail("flush", StorageFull("no space"), when=layout.nupkg("contoso.utils", "2.0.0"))
    with refused(507, "The package storage is full; nothing was stored"):
        alice.push(grant, ID, "2.0.0")
    nothing_stored_for(alice, ID, "2.0.0")
    assert alice.documents(ID) == before
    assert alice.notes() == []
    alice.push(grant, ID, "2.0.0")
    assert "2.0.0" in alice.versions(ID)


def test_a_failed_document_build_leaves_no_version_no_blob_and_the_documents_as_before(alice: Site) -> None:
    grant = alice.key("alice", "push")
    alice.push(grant, ID, "1.0.0")
    before = alice.documents(ID)
    # The flat index is written first (with 2.0.0), then the registration index fails.
    alice.storage.fail("put", when=layout.registration_index("registration", "contoso.utils"))
    with refused(503, "storage is unavailable"):
        alice.push(grant, ID, "2.0.0")
    nothing_stored_for(alice, ID, "2.0.0")
    assert alice.documents(ID) == before


def test_a_failed_first_push_of_an_id_leaves_no_id(alice: Site) -> None:
    alice.storage.fail("put", when=layout.flat_index("contoso.utils"))
    with refused(503, "storage is unavailable"):
        alice.push(alice.key("alice", "push"), ID)
    assert alice.storage.keys() == []
    assert alice.notes() == []
    with pytest.raises(NotFound):
        alice.core.owners.of_package(ID)
    alice.push(alice.key("bob", "push"), ID)  # the id is free for anyone
    assert [o.name for o in alice.core.owners.of_package(ID)] == ["bob"]


def test_what_the_undo_cannot_remove_is_left_to_recovery(alice: Site) -> None:
    grant = alice.key("alice", "push")
    alice.storage.fail("put", when=NUSPEC)
    alice.storage.fail("delete", times=None)  # the storage breaks down for good
    with refused(503, "storage is unavailable"):
        alice.push(grant, ID)
    assert alice.versions(ID) == {}
    assert alice.blobs(ID) == [NUPKG]  # left behind, and noted
    assert alice.notes() == [NUPKG]
    alice.storage.heal()
    assert alice.restart().core.packages.recover() == (1, 1)
    assert alice.storage.keys() == []
    assert alice.notes() == []


# Recovery after a crash -------------------------------------------------------------------------------------


def test_recovery_removes_the_files_of_a_push_that_crashed_before_its_commit(alice: Site) -> None:
    grant = alice.key("alice", "push")
    alice.push(grant, ID, "1.0.0-beta")  # a sibling folder that merely starts alike: kept
    alice.push(grant, "Other.Lib")
    before, other = alice.documents(ID), alice.documents("Other.Lib")
    alice.storage.fail("put", PowerCut(), when=layout.flat_index("contoso.utils"))
    with pytest.raises(PowerCut):
        alice.push(grant, ID, "1.0.0")
    assert alice.notes() == [NUPKG]  # what a crash there leaves: the note, the blobs, no version
    assert NUPKG in alice.blobs(ID) and "1.0.0" not in alice.versions(ID)
    alice.storage.heal()
    restarted = alice.restart()
    assert restarted.core.packages.recover() == (2, 1)  # .nupkg and .nuspec removed; one id rebuilt
    assert restarted.notes() == []
    assert restarted.blobs(ID) == sorted(
        [layout.nupkg("contoso.utils", "1.0.0-beta"), layout.nuspec("contoso.utils", "1.0.0-beta")]
    )
    assert restarted.documents(ID) == before
    assert restarted.documents("Other.Lib") == other
    restarted.push(grant, ID, "1.0.0")


@pytest.fixture
def on_postgres(make_site: Callable[..., Site], tmp_path: Path, storage: MemoryStorage) -> Iterator[Site]:
    """A site on PostgreSQL (row and advisory locks: several processes push while one recovers)."""
    (tmp_path / "pg").mkdir()
    with postgres_database() as url:
        site = Site(tmp_path / "pg", storage, database_url=url)
        try:
            site.core.db.upgrade()
            site.users("alice")
            yield site
        finally:
            site.close()


def test_recovery_never_takes_the_files_of_a_live_push_of_the_same_version(
    on_postgres: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A note left by a push the database cut short (503), then the same version pushed again, on
    another host, while a third process starts and recovers: the live push's files stay, and it lands."""
    site = on_postgres
    grant = site.key("alice", "push")
    with site.core.db.session() as s:  # what the push cut short left: its note (and perhaps files)
        s.add(PendingUpload(key=NUPKG, created_at=utcnow()))
    written, go_on = threading.Event(), threading.Event()

    def pause(point: str) -> None:
        if point == "after-blob-write" and threading.current_thread().name == "pusher":
            written.set()
            assert go_on.wait(30)

    monkeypatch.setattr(faults, "pause", pause)
    pushed: list[object] = []
    pusher = threading.Thread(target=lambda: pushed.append(site.push(grant, ID)), name="pusher")
    pusher.start()
    assert written.wait(30)  # its files are stored, its transaction open
    other = Site(site.data_dir, site.storage, site.family, **site.settings)  # a process that starts
    recovered: list[tuple[int, int]] = []
    recovery = threading.Thread(target=lambda: recovered.append(other.core.packages.recover()))
    recovery.start()
    recovery.join(1.0)
    assert recovery.is_alive()  # it waits for the push of that version to end
    go_on.set()
    pusher.join(30)
    recovery.join(30)
    assert isinstance(pushed[0], PushResult) and recovered[0][0] == 0  # nothing removed
    assert site.storage.get_bytes(NUPKG)  # the pushed package is there to restore
    assert site.versions(ID) and site.notes() == []


def test_what_a_push_killed_long_ago_left_is_undone_while_serving(on_postgres: Site, clock: Clock) -> None:
    """A process killed between its files and its commit: its note stays, unlocked, and its files would
    be served to whoever asks for that version. Serving processes undo it once the note is old enough
    that no live push can hold it (a live push locks its note a moment after noting it)."""
    site = on_postgres
    with site.core.db.session() as s:
        s.add(PendingUpload(key=NUPKG, created_at=clock.now))
    site.storage.put_bytes(NUPKG, b"half pushed", "application/octet-stream")
    site.storage.put_bytes(NUSPEC, b"<package/>", "application/octet-stream")
    assert site.core.packages.undo_abandoned() == 0  # too young: perhaps a push about to take it
    assert site.notes() == [NUPKG]
    clock.advance(minutes=11)
    assert site.core.packages.undo_abandoned() == 2
    assert site.notes() == [] and site.storage.get_bytes(NUPKG) is None
    site.push(site.key("alice", "push"), ID)  # the version is free, and pushed whole
    assert site.storage.get_bytes(NUPKG)


def test_recovery_gives_up_the_storages_stale_multipart_uploads(
    alice: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed during a large upload to S3 leaves its parts behind, billed and invisible: a
    start gives up those begun long enough ago to be no live push's (hours: a push's upload takes minutes)."""
    asked: list[float] = []
    monkeypatch.setattr(
        alice.storage, "abort_stale_uploads", lambda older_than: asked.append(older_than) or 1
    )
    alice.core.packages.recover()
    assert asked == [6 * 3600]


def test_recovery_rewrites_documents_a_crash_left_half_written(alice: Site) -> None:
    grant = alice.key("alice", "push")
    alice.push(grant, ID, "1.0.0")
    before = alice.documents(ID)
    alice.storage.fail(
        "put", PowerCut(), when=layout.registration_index("registration-semver2", "contoso.utils")
    )
    with pytest.raises(PowerCut):
        alice.push(grant, ID, "2.0.0")
    assert alice.flat_versions(ID) == ["1.0.0", "2.0.0"]  # written before the crash, never committed
    alice.storage.heal()
    restarted = alice.restart()
    assert restarted.core.packages.recover() == (2, 1)
    assert restarted.documents(ID) == before
    assert restarted.versions(ID) == {"1.0.0": True}


def test_recovery_rebuilds_documents_of_committed_changes_they_missed(alice: Site) -> None:
    grant = alice.key("alice")
    alice.push(grant, ID)
    alice.storage.fail("put", when="/index.json", times=None)
    alice.unlist(grant, ID)  # committed; its documents could not be written
    assert alice.versions(ID) == {"1.0.0": False}
    assert alice.catalog(ID)["1.0.0"]["listed"] is True
    assert alice.core.materializer.stale() == ["contoso.utils"]
    alice.storage.heal()
    assert alice.restart().core.packages.recover() == (0, 1)
    assert alice.catalog(ID)["1.0.0"]["listed"] is False
    assert alice.core.materializer.stale() == []


def test_recovery_after_a_machine_crash_marks_every_document_stale(alice: Site) -> None:
    """Rebuilding every id before serving took minutes at 100,000 ids: the start marks them all stale
    instead, and ``services.catchup`` rebuilds them while the server serves (``test_catchup``)."""
    grant = alice.key("alice")
    for package_id in ("A.Lib", "B.Lib", "C.Lib"):
        alice.push(grant, package_id)
    for hive in layout.HIVES:
        for key in alice.storage.keys(f"v3/{hive}"):
            alice.storage.delete(key)  # unsynced documents the crash lost
    alice.storage.lost = True
    restarted = alice.restart()
    assert restarted.core.packages.recover() == (0, 3)
    assert restarted.storage.settled == 1 and not restarted.storage.writes_lost()
    assert restarted.core.materializer.any_stale()
    assert restarted.core.materializer.stale() == []  # none rebuilt before serving
    while restarted.core.catchup.step() is not None:
        pass
    assert sorted(restarted.catalog(p)["1.0.0"]["id"] for p in ("A.Lib", "B.Lib", "C.Lib")) == [
        "A.Lib",
        "B.Lib",
        "C.Lib",
    ]
    assert not restarted.core.materializer.any_stale()


def test_recovery_with_nothing_to_do(alice: Site) -> None:
    alice.push(alice.key("alice"), ID)
    keys = {k: b.info.token for k, b in alice.storage.blobs.items()}
    assert alice.core.packages.recover() == (0, 0)
    assert {k: b.info.token for k, b in alice.storage.blobs.items()} == keys  # nothing rewritten
