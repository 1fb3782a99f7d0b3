"""Registration and flat-container documents built from version rows."""

from __future__ import annotations

from datetime import datetime

from nugat.db.models import PackageVersion
from nugat.feed import BASE, flatcontainer, registration
from nugat.versions import parse_version

COMMIT = {"commitId": "c", "commitTimeStamp": "2026-01-01T00:00:00Z"}


def row(version: str, *, listed: bool = True, deps: list[dict[str, object]] | None = None) -> PackageVersion:
    v = parse_version(version)
    return PackageVersion(
        package_id="Contoso.Core",
        version=v.normalized,
        version_lower=v.normalized.lower(),
        full_version=v.full,
        original_version=version,
        is_prerelease=v.is_prerelease,
        is_semver2=v.is_semver2,
        listed=listed,
        published_at=datetime(2026, 1, 2, 3, 4, 5),
        size=1,
        sha512="x",
        downloads=0,
        search_text="",
        metadata_json={
            "authors": ["Ann", "Bob"],
            "description": "d",
            "tags": ["a"],
            "dependency_groups": deps or [],
        },
    )


def test_small_registration_is_one_inlined_page_in_version_order() -> None:
    docs = registration.build(
        "registration-semver2", "Contoso.Core", [row("2.0.0"), row("1.0.0"), row("1.5.0-beta")], COMMIT
    )
    index = docs["v3/registration-semver2/contoso.core/index.json"]
    assert index["@type"] == ["catalog:CatalogRoot", "PackageRegistration", "catalog:Permalink"]
    assert index["count"] == 1
    page = index["items"][0]
    assert (page["lower"], page["upper"], page["count"]) == ("1.0.0", "2.0.0", 3)
    assert [leaf["catalogEntry"]["version"] for leaf in page["items"]] == ["1.0.0", "1.5.0-beta", "2.0.0"]
    entry = page["items"][0]["catalogEntry"]
    assert entry["authors"] == "Ann, Bob"
    assert entry["packageContent"] == f"{BASE}/v3/flatcontainer/contoso.core/1.0.0/contoso.core.1.0.0.nupkg"
    assert sorted(docs) == ["v3/registration-semver2/contoso.core/index.json"]  # leaves are not stored


def test_large_registration_is_paged_by_64_and_not_inlined() -> None:
    versions = [row(f"1.0.{i}") for i in range(130)]
    docs = registration.build("registration", "Contoso.Core", versions, COMMIT)
    index = docs["v3/registration/contoso.core/index.json"]
    assert [p["count"] for p in index["items"]] == [64, 64, 2]
    assert all("items" not in p for p in index["items"])
    first = index["items"][0]
    page_key = first["@id"].removeprefix(BASE + "/")
    assert page_key == "v3/registration/contoso.core/page/1.0.0/1.0.63.json"
    page = docs[page_key]
    assert len(page["items"]) == 64
    assert page["parent"] == index["@id"]


def test_127_versions_are_still_inlined_in_two_pages() -> None:
    docs = registration.build("registration", "Contoso.Core", [row(f"1.0.{i}") for i in range(127)], COMMIT)
    index = docs["v3/registration/contoso.core/index.json"]
    assert [len(p["items"]) for p in index["items"]] == [64, 63]


def test_semver1_hive_leaves_out_semver2_versions() -> None:
    versions = [row("1.0.0"), row("2.0.0-beta.1"), row("2.0.0+build")]
    semver1 = registration.build("registration", "Contoso.Core", versions, COMMIT)
    page = semver1["v3/registration/contoso.core/index.json"]["items"][0]
    assert [leaf["catalogEntry"]["version"] for leaf in page["items"]] == ["1.0.0"]
    all_versions = registration.build("registration-semver2", "Contoso.Core", versions, COMMIT)
    page = all_versions["v3/registration-semver2/contoso.core/index.json"]["items"][0]
    assert [leaf["catalogEntry"]["version"] for leaf in page["items"]] == [
        "1.0.0",
        "2.0.0-beta.1",
        "2.0.0+build",
    ]
    assert registration.build("registration", "Contoso.Core", [row("2.0.0-beta.1")], COMMIT) == {}


def test_unlisted_versions_are_marked_and_dependency_ranges_are_strings() -> None:
    deps = [{"target_framework": "net8.0", "dependencies": [{"id": "Other.Lib", "range": "[1.0.0, )"}]}]
    version = row("1.0.0", listed=False, deps=deps)
    docs = registration.build("registration", "Contoso.Core", [version], COMMIT)
    leaf = docs["v3/registration/contoso.core/index.json"]["items"][0]["items"][0]
    assert leaf["catalogEntry"]["listed"] is False
    assert leaf["catalogEntry"]["published"] == registration.UNLISTED_PUBLISHED
    group = leaf["catalogEntry"]["dependencyGroups"][0]
    assert group["targetFramework"] == "net8.0"
    assert group["dependencies"][0]["range"] == "[1.0.0, )"
    assert group["dependencies"][0]["registration"] == f"{BASE}/v3/registration/other.lib/index.json"
    alone = registration.leaf("registration", "Contoso.Core", version)
    assert alone["listed"] is False and alone["published"] == registration.UNLISTED_PUBLISHED
    assert alone["@id"] == leaf["@id"] == f"{BASE}/v3/registration/contoso.core/1.0.0.json"
    assert alone["registration"] == f"{BASE}/v3/registration/contoso.core/index.json"


def test_flat_container_lists_every_version_lowercase_in_order() -> None:
    versions = [row("1.0.0-RC"), row("1.0.0", listed=False), row("0.9.0")]
    assert flatcontainer.version_list(versions) == {"versions": ["0.9.0", "1.0.0-rc", "1.0.0"]}
