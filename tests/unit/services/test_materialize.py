"""``services.materialize``: the stored read documents of an id follow the committed state (both hives, the
flat index, pages from 128 versions on), are removed when unwanted, and are rebuilt when they lag."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete, event, func, select

from nugat.clock import utcnow
from nugat.db.models import PackageRegistration, PackageVersion
from nugat.feed import BASE, layout, registration
from nugat.services import ServiceError, bounds, materialize
from nugat.storage.base import StorageError
from nugat.storage.filesystem import FileSystemStorage
from nugat.versions import parse_version
from support.services import Site, without_commit

ID = "Contoso.Utils"


@pytest.fixture
def alice(site: Site) -> Site:
    site.users("alice")
    return site


def add_versions(site: Site, package_id: str, count: int) -> None:
    """``count`` more versions 1.0.<n> of a pushed id, inserted as a push would (a push of each would take
    seconds: every one rewrites the id's documents)."""
    with site.core.db.session() as s:
        reg = s.scalar(select(PackageRegistration).where(PackageRegistration.id_lower == package_id.lower()))
        assert reg is not None
        start = s.scalar(select(func.count()).where(PackageVersion.registration_id == reg.id)) or 0
        for n in range(start, start + count):
            s.add(
                PackageVersion(
                    registration_id=reg.id,
                    package_id=reg.package_id,
                    version=f"1.0.{n}",
                    version_lower=f"1.0.{n}",
                    full_version=f"1.0.{n}",
                    original_version=f"1.0.{n}",
                    is_prerelease=False,
                    is_semver2=False,
                    listed=True,
                    published_at=utcnow(),
                    size=1,
                    sha512="",
                    downloads=0,
                    search_text="",
                    metadata_json={"authors": ["a"], "description": "d"},
                )
            )
        reg.revision += 1


def keep_versions(site: Site, package_id: str, count: int) -> None:
    """Delete all but the ``count`` lowest versions of an id (nugat itself never deletes a version)."""
    with site.core.db.session() as s:
        reg = s.scalar(select(PackageRegistration).where(PackageRegistration.id_lower == package_id.lower()))
        assert reg is not None
        rows = s.scalars(select(PackageVersion).where(PackageVersion.registration_id == reg.id)).all()
        gone = [v.id for v in sorted(rows, key=lambda v: parse_version(v.version))[count:]]
        s.execute(delete(PackageVersion).where(PackageVersion.id.in_(gone)))
        reg.revision += 1


def test_an_id_has_a_flat_index_and_an_index_in_each_hive(alice: Site) -> None:
    grant = alice.key("alice")
    alice.push(grant, ID, "1.0.0")
    alice.push(grant, ID, "2.0.0-beta.1")  # SemVer 2.0.0: a dotted pre-release label
    alice.push(grant, ID, "1.5.0")
    assert set(alice.documents(ID)) == {
        layout.flat_index("contoso.utils"),
        layout.registration_index("registration", "contoso.utils"),
        layout.registration_index("registration-semver2", "contoso.utils"),
    }
    assert alice.flat_versions(ID) == ["1.0.0", "1.5.0", "2.0.0-beta.1"]
    assert list(alice.catalog(ID, "registration")) == ["1.0.0", "1.5.0"]
    assert list(alice.catalog(ID)) == ["1.0.0", "1.5.0", "2.0.0-beta.1"]
    index = alice.document(layout.registration_index("registration", "contoso.utils"))
    assert index["@id"] == f"{BASE}/{layout.registration_index('registration', 'contoso.utils')}"
    assert (index["count"], index["items"][0]["lower"], index["items"][0]["upper"]) == (1, "1.0.0", "1.5.0")


def test_the_semver1_hive_of_an_id_without_semver2_versions_is_what_its_own_build_gives(alice: Site) -> None:
    """Such an id's SemVer 1 documents are derived from the SemVer 2 ones (built once): every URL in
    them must still name their own hive, dependencies' registrations included."""
    grant = alice.key("alice")
    deps = (
        '<dependencies><group targetFramework="net8.0"><dependency id="Other.Lib" version="1.0.0"/></group>'
        "</dependencies>"
    )
    for version in ("1.0.0", "1.1.0"):
        alice.push(grant, ID, version, extra=deps)
    with alice.core.db.reading() as s:
        rows = s.scalars(select(PackageVersion).where(PackageVersion.package_id == ID)).all()
        own = registration.build("registration", ID, rows, {"commitId": "c", "commitTimeStamp": "t"})
    stored = {k: v for k, v in alice.documents(ID).items() if k.startswith("v3/registration/")}
    assert stored == {k: without_commit(v) for k, v in own.items()}
    assert "registration-semver2" not in json.dumps(stored)
    assert "registration-semver2/other.lib" in json.dumps(alice.documents(ID))


def test_documents_carry_the_public_url_when_one_is_set(make_site: Callable[..., Site]) -> None:
    site = make_site(public_url="https://nuget.example.test")
    site.users("alice")
    site.push(site.key("alice"), ID)
    key = layout.registration_index("registration", "contoso.utils")
    raw = site.storage.peek(key) or b""
    assert BASE.encode() not in raw
    assert site.document(key)["@id"] == f"https://nuget.example.test/{key}"
    assert site.catalog(ID)["1.0.0"]["packageContent"] == (
        f"https://nuget.example.test/{layout.nupkg('contoso.utils', '1.0.0')}"
    )


def test_an_id_with_128_versions_gets_pages_and_loses_them_below(alice: Site) -> None:
    grant = alice.key("alice")
    alice.push(grant, ID, "1.0.0")
    add_versions(alice, ID, 126)  # 127 versions: still inline
    alice.core.materializer.build("contoso.utils")
    assert [k for k in alice.documents(ID) if "/page/" in k] == []
    alice.push(grant, ID, "2.0.0")  # the 128th
    index = alice.document(layout.registration_index("registration", "contoso.utils"))
    assert index["count"] == 2
    assert [(p["count"], p["lower"], p["upper"], "items" in p) for p in index["items"]] == [
        (64, "1.0.0", "1.0.63", False),
        (64, "1.0.64", "2.0.0", False),
    ]
    pages = [k for k in alice.documents(ID) if "/page/" in k]
    assert len(pages) == 4  # two per hive
    assert len(alice.catalog(ID)) == 128
    keep_versions(alice, ID, 100)
    alice.core.materializer.build("contoso.utils")
    assert [k for k in alice.documents(ID) if "/page/" in k] == []
    assert len(alice.catalog(ID)) == 100
    assert len(alice.flat_versions(ID) or []) == 100


def test_the_documents_of_an_id_without_a_registration_are_removed(alice: Site) -> None:
    for key in (layout.flat_index("ghost.lib"), layout.registration_index("registration", "ghost.lib")):
        alice.storage.put_bytes(key, b"{}", "application/json")
    alice.storage.put_bytes(
        layout.registration_page("registration", "ghost.lib", "1.0.0", "2.0.0"), b"{}", "j"
    )
    alice.push(alice.key("alice"), "Ghost.Lib.Other")
    alice.core.materializer.build("ghost.lib")
    assert alice.documents("Ghost.Lib") == {}
    assert alice.flat_versions("Ghost.Lib.Other") == ["1.0.0"]  # a sibling that merely starts alike


def test_a_build_writes_only_its_own_id(alice: Site) -> None:
    grant = alice.key("alice")
    alice.push(grant, "A.Lib")
    tokens = {k: b.info.token for k, b in alice.storage.blobs.items()}
    alice.push(grant, "B.Lib")
    alice.unlist(grant, "B.Lib")
    assert {k: alice.storage.blobs[k].info.token for k in tokens} == tokens


def test_a_build_that_fails_leaves_the_id_stale_until_one_succeeds(alice: Site) -> None:
    grant = alice.key("alice")
    alice.push(grant, ID)
    assert alice.core.materializer.stale() == []
    alice.storage.fail("put", times=None)
    alice.unlist(grant, ID)  # committed; the documents could not follow
    with pytest.raises(StorageError):
        alice.core.materializer.build("contoso.utils")
    assert alice.core.materializer.stale() == ["contoso.utils"]
    alice.storage.heal()
    alice.core.materializer.build("contoso.utils")
    assert alice.core.materializer.stale() == []
    assert alice.catalog(ID)["1.0.0"]["listed"] is False


def test_rebuild_all_rewrites_every_id(alice: Site) -> None:
    grant = alice.key("alice")
    for package_id in ("A.Lib", "B.Lib"):
        alice.push(grant, package_id)
    before = {p: alice.documents(p) for p in ("A.Lib", "B.Lib")}
    for key in alice.storage.keys("v3/registration-semver2"):
        alice.storage.delete(key)
    assert alice.core.materializer.rebuild_all() == 2
    assert {p: alice.documents(p) for p in ("A.Lib", "B.Lib")} == before


def test_a_rebuild_into_a_folder_tree_looks_for_leftovers_only_in_folders_it_did_not_make(
    alice: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Into an empty tree every id's folders are new: their documents are written as a build writes them
    and nothing is listed; a folder that was there is still listed, and what it holds unwanted removed."""
    grant = alice.key("alice")
    for package_id in ("A.Lib", "B.Lib"):
        alice.push(grant, package_id)
    docs = FileSystemStorage(tmp_path / "docs")
    leftover = layout.registration_page("registration", "b.lib", "0.1.0", "0.2.0")
    docs.put_many([(leftover, b"{}", "j")], durable=False)
    listed: list[str] = []
    real_list = docs.list_keys
    monkeypatch.setattr(docs, "list_keys", lambda prefix: (listed.append(prefix), real_list(prefix))[1])
    materialize.Materializer(alice.core.db, docs).rebuild_all()
    assert listed == ["v3/registration/b.lib"]
    assert docs.get_bytes(leftover) is None
    for package_id in ("A.Lib", "B.Lib"):
        stored = alice.documents(package_id)  # as the pushes wrote them, without their commit
        written = [k for hive in layout.HIVES for k in docs.list_keys(f"v3/{hive}/{package_id.lower()}")]
        assert sorted(written) == sorted(k for k in stored if "/flatcontainer/" not in k)
        for key, doc in stored.items():
            assert without_commit(json.loads(docs.get_bytes(key) or b"")) == without_commit(doc)


def test_leaves_are_answered_from_the_database(alice: Site) -> None:
    grant = alice.key("alice")
    alice.push(grant, ID, "1.0.0")
    alice.push(grant, ID, "2.0.0-beta.1")
    alice.unlist(grant, ID, "1.0.0")
    leaf = alice.core.materializer.leaf("registration", "contoso.utils", "1.0.0")
    assert leaf is not None
    assert (leaf["listed"], leaf["published"]) == (False, "1900-01-01T00:00:00Z")
    assert leaf["packageContent"] == f"{BASE}/{layout.nupkg('contoso.utils', '1.0.0')}"
    assert alice.core.materializer.leaf("registration", "contoso.utils", "9.0.0") is None
    assert alice.core.materializer.leaf("registration", "no.such", "1.0.0") is None
    # a SemVer 2.0.0 version has a leaf only in the hive that includes it
    assert alice.core.materializer.leaf("registration", "contoso.utils", "2.0.0-beta.1") is None
    assert alice.core.materializer.leaf("registration-semver2", "contoso.utils", "2.0.0-beta.1") is not None
    assert alice.storage.keys("v3/registration/contoso.utils") == [
        layout.registration_index("registration", "contoso.utils")
    ]  # leaves are never stored


def tokens(site: Site, package_id: str) -> dict[str, str]:
    return {key: site.storage.blobs[key].info.token for key in site.documents(package_id)}


def test_a_push_rewrites_only_the_page_it_lands_in_the_indexes_and_the_flat_index(alice: Site) -> None:
    grant = alice.key("alice")
    alice.push(grant, ID, "1.0.0")
    add_versions(alice, ID, 199)  # 200 versions: pages of 64, 64, 64 and 8 in each hive
    alice.core.materializer.build("contoso.utils")
    before = tokens(alice, ID)
    alice.push(grant, ID, "2.0.0")
    after = tokens(alice, ID)
    rewritten = sorted(k for k in after if before.get(k) != after[k])
    assert rewritten == sorted(
        [
            layout.flat_index("contoso.utils"),
            *(layout.registration_index(hive, "contoso.utils") for hive in layout.HIVES),
            *(layout.registration_page(hive, "contoso.utils", "1.0.192", "2.0.0") for hive in layout.HIVES),
        ]
    )
    assert set(before) - set(after) == {
        layout.registration_page(hive, "contoso.utils", "1.0.192", "1.0.199") for hive in layout.HIVES
    }
    # A SemVer 2.0.0 version changes the SemVer 2 hive only.
    before = tokens(alice, ID)
    alice.push(grant, ID, "3.0.0-rc.1")
    after = tokens(alice, ID)
    assert sorted(k for k in after if before.get(k) != after[k]) == sorted(
        [
            layout.flat_index("contoso.utils"),
            layout.registration_index("registration-semver2", "contoso.utils"),
            layout.registration_page("registration-semver2", "contoso.utils", "1.0.192", "3.0.0-rc.1"),
        ]
    )


@pytest.mark.parametrize(
    "pushed",
    [
        ["2.0.0", "2.0.1"],  # at the end: the last page
        ["1.0.64-beta"],  # in the middle: the pages from there on move their bounds
        ["0.1.0"],  # before all: every page moves
        [f"5.0.{n}" for n in range(60)],  # a new page
        ["4.0.0-rc.1", "4.0.0+build.5"],  # SemVer 2.0.0 versions
        # A version after a SemVer 2.0.0 one: its place differs between the hives.
        ["1.0.30-rc.1", "1.0.90-beta"],
        ["1.0.10-rc.1", "1.0.63-beta"],  # on the first page in the SemVer 1 hive, the second in the other
        ["1.0.100-rc.1", "1.0.50-beta", "1.0.120-rc.2", "1.0.127-beta"],
    ],
)
def test_documents_after_pushes_are_those_a_full_build_writes(alice: Site, pushed: list[str]) -> None:
    grant = alice.key("alice")
    alice.push(grant, ID, "1.0.0")
    add_versions(alice, ID, 149)
    alice.core.materializer.build("contoso.utils")
    for version in pushed:
        alice.push(grant, ID, version)
    incremental = {k: without_commit(v) for k, v in alice.documents(ID).items()}
    alice.core.materializer.build("contoso.utils")
    assert incremental == {k: without_commit(v) for k, v in alice.documents(ID).items()}
    assert len(alice.catalog(ID)) == 150 + len(pushed)


RICH = (
    "<title>Utils</title><tags>json parser</tags><projectUrl>https://example.test/p</projectUrl>"
    '<license type="expression">MIT</license><requireLicenseAcceptance>true</requireLicenseAcceptance>'
    "<summary>S</summary><language>en</language><releaseNotes>R</releaseNotes>"
    '<dependencies><group targetFramework="net8.0"><dependency id="Other.Lib" version="[1.0.0, )" />'
    '</group><group targetFramework="netstandard2.0" /></dependencies>'
)


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0-rc.1", "3.0.0+build.7"])
def test_a_new_ids_documents_from_its_push_are_those_a_full_build_writes(alice: Site, version: str) -> None:
    """A push that creates an id writes its documents from the values it inserted, reading nothing back."""
    alice.core.prefixes.reserve("Contoso.*", ["alice"])  # verified: the owner holds the prefix
    alice.push(alice.key("alice"), ID, version, extra=RICH)
    pushed = {k: without_commit(v) for k, v in alice.documents(ID).items()}
    alice.core.materializer.build("contoso.utils")
    assert pushed == {k: without_commit(v) for k, v in alice.documents(ID).items()}
    assert all(entry["verified"] for entry in alice.catalog(ID, "registration-semver2").values())


def full_bound_reads(site: Site) -> list[object]:
    """Each time ``site`` reads every version's bounds of an id (not only those added since it kept them)."""
    reads: list[object] = []

    def seen(_conn: object, statement: object, *_args: object) -> None:
        if statement is bounds._ALL:
            reads.append(statement)

    event.listen(site.core.db.engine, "before_execute", seen)
    return reads


def test_a_push_to_a_large_id_reads_only_the_versions_added_since_the_bounds_it_kept(alice: Site) -> None:
    grant = alice.key("alice")
    alice.push(grant, ID, "1.0.0")
    add_versions(alice, ID, 199)
    alice.core.materializer.build("contoso.utils")
    other = Site(alice.data_dir, alice.storage, alice.family)  # another process on the same feed
    reads, other_reads = full_bound_reads(alice), full_bound_reads(other)
    alice.push(grant, ID, "2.0.0")
    alice.push(grant, ID, "1.0.150-beta")  # in the middle
    assert len(reads) == 1
    other.push(grant, ID, "2.0.1")  # it kept none: it reads them all
    alice.push(grant, ID, "2.0.2")  # reads 2.0.1 and its own
    assert (len(reads), len(other_reads)) == (1, 1)
    # A push that fails is not kept: the next one reads what did commit.
    alice.storage.fail("flush", when=layout.nupkg("contoso.utils", "2.0.3"))
    with pytest.raises(ServiceError):
        alice.push(grant, ID, "2.0.3")
    alice.push(grant, ID, "2.0.4")
    assert len(reads) == 1
    incremental = {k: without_commit(v) for k, v in alice.documents(ID).items()}
    alice.core.materializer.build("contoso.utils")
    assert incremental == {k: without_commit(v) for k, v in alice.documents(ID).items()}
    assert alice.document(layout.flat_index("contoso.utils"))["versions"][-4:] == [
        "2.0.0",
        "2.0.1",
        "2.0.2",
        "2.0.4",
    ]


def test_kept_bounds_that_no_longer_match_the_database_are_read_again(alice: Site) -> None:
    grant = alice.key("alice")
    alice.push(grant, ID, "1.0.0")
    add_versions(alice, ID, 199)
    alice.core.materializer.build("contoso.utils")
    alice.push(grant, ID, "2.0.0")
    reads = full_bound_reads(alice)
    with alice.core.db.session() as s:  # what nugat never does: a version gone, the documents said current
        s.execute(delete(PackageVersion).where(PackageVersion.version == "1.0.7"))
    alice.push(grant, ID, "2.0.1")
    assert len(reads) == 1
    assert "1.0.7" not in alice.document(layout.flat_index("contoso.utils"))["versions"]


def test_kept_bounds_are_bounded() -> None:
    kept = bounds.KeptBounds(limit=10)
    found = [bounds.Sorted([bounds.Bound(f"1.0.{n}", f"1.0.{n}", False, n)] * 4, [], 0, 0) for n in range(4)]
    for reg_id, sorted_ in enumerate(found):
        kept.keep(reg_id, sorted_)
    assert list(kept._kept) == [2, 3]  # 8 of 10: the oldest dropped
    kept.keep(9, bounds.Sorted([found[0].bounds[0]] * 11, [], 0, 0))  # more than the limit: not kept
    assert list(kept._kept) == [2, 3]


def test_a_rebuild_leaves_documents_stored_as_it_would_write_them_but_for_their_commit(alice: Site) -> None:
    """It reads each document first: one that differs only by the commit an earlier build wrote stays as
    it is (a tenth of a rewrite's cost); one that differs otherwise, however little, is rewritten."""
    alice.push(alice.key("alice"), ID)
    index, semver1 = (layout.registration_index(hive, "contoso.utils") for hive in layout.HIVES)
    flat = layout.flat_index("contoso.utils")
    stored = {key: alice.storage.peek(key) or b"" for key in (index, semver1, flat)}
    torn = stored[semver1].replace(b'"listed":true', b'"listed":fals', 1)  # as long, one byte off
    alice.storage.put_bytes(semver1, torn, "application/json")
    alice.core.materializer.rebuild_all()
    assert alice.storage.peek(index) == stored[index]
    assert alice.storage.peek(flat) == stored[flat]
    rewritten = alice.storage.peek(semver1) or b""
    assert rewritten != stored[semver1] and without_commit(json.loads(rewritten)) == without_commit(
        json.loads(stored[semver1])
    )


@pytest.mark.parametrize(
    ("stored", "same"),
    [
        (b'{"a":1,"commitId":"' + b"0" * 36 + b'","commitTimeStamp":"2025-01-01T00:00:00Z","b":2}', True),
        (b'{"a":1,"commitId":"' + b"0" * 36 + b'","commitTimeStamp":"2025-01-01T00:00:00Z","b":3}', False),
        (b'{"a":1,"commitId":"' + b"0" * 35 + b'x","commitTimeStamp":"2025-01-01T00:00:00Z","b":2}', False),
        (b'{"a":1,"commitId":"' + b"0" * 36 + b'","commitTimeStamp":"2025-01-01T00:00:0xZ","b":2}', False),
        (b'{"a":1,"b":2}', False),
    ],
)
def test_a_document_unchanged_but_for_its_commit_is_one_whose_only_other_bytes_are_the_same(
    stored: bytes, same: bool
) -> None:
    new = b'{"a":1,"commitId":"' + b"1" * 36 + b'","commitTimeStamp":"2026-11-30T01:02:03Z","b":2}'
    assert materialize.unchanged_but_commit(stored, new) is same
    assert materialize.unchanged_but_commit(b'{"versions":["1.0.0"]}', b'{"versions":["1.0.0"]}')
    assert not materialize.unchanged_but_commit(b'{"versions":["1.0.1"]}', b'{"versions":["1.0.0"]}')
