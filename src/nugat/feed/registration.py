"""RegistrationsBaseUrl: registration index, pages and leaves of one package id, per hive.

Pages hold 64 versions. As nuget.org does, an id with fewer than 128 versions gets its pages inlined
in the index; above that the index only links to pages, which the client fetches when their version
bounds intersect the range it wants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote

from nugat.clock import isoformat
from nugat.feed import layout
from nugat.versions import version_key


class VersionRecord(Protocol):
    """What the documents need of a version: a ``PackageVersion``, or a row of its table."""

    @property
    def version(self) -> str: ...
    @property
    def version_lower(self) -> str: ...
    @property
    def full_version(self) -> str: ...
    @property
    def is_semver2(self) -> bool: ...
    @property
    def listed(self) -> bool: ...
    @property
    def published_at(self) -> datetime: ...
    @property
    def metadata_json(self) -> dict[str, Any]: ...


PAGE_SIZE = 64
INLINE_BELOW = 128
UNLISTED_PUBLISHED = "1900-01-01T00:00:00Z"

CONTEXT = {
    "@vocab": "http://schema.nuget.org/schema#",
    "catalog": "http://schema.nuget.org/catalog#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "items": {"@id": "catalog:item", "@container": "@set"},
    "commitTimeStamp": {"@id": "catalog:commitTimeStamp", "@type": "xsd:dateTime"},
    "commitId": {"@id": "catalog:commitId"},
    "count": {"@id": "catalog:count"},
    "parent": {"@id": "catalog:parent", "@type": "@id"},
    "tags": {"@id": "tag", "@container": "@set"},
    "packageTargetFrameworks": {"@id": "packageTargetFramework", "@container": "@set"},
    "dependencyGroups": {"@id": "dependencyGroup", "@container": "@set"},
    "dependencies": {"@id": "dependency", "@container": "@set"},
    "packageContent": {"@type": "@id"},
    "published": {"@type": "xsd:dateTime"},
    "registration": {"@type": "@id"},
}


def _catalog_entry(hive: str, v: VersionRecord, reg_id: str, verified: bool, urls: _Urls) -> dict[str, Any]:
    m = v.metadata_json
    get = m.get
    lower = v.version_lower
    leaf = lower.join(urls.leaf)
    license_expression = get("license_expression") or ""
    entry: dict[str, Any] = {
        "@id": leaf + "#catalogEntry",
        "@type": "PackageDetails",
        "id": reg_id,
        "version": v.full_version,
        "authors": ", ".join(get("authors", [])),
        "description": get("description", ""),
        "listed": v.listed,
        "published": isoformat(v.published_at) if v.listed else UNLISTED_PUBLISHED,
        "packageContent": lower.join(urls.nupkg),
        "verified": verified,
        "requireLicenseAcceptance": bool(get("require_license_acceptance")),
        "tags": get("tags", []),
        "title": get("title") or "",
        "summary": get("summary") or "",
        "language": get("language") or "",
        "projectUrl": get("project_url") or "",
        "licenseExpression": license_expression,
        "minClientVersion": get("min_client_version") or "",
        "dependencyGroups": [
            _dependency_group(hive, leaf, i, group) for i, group in enumerate(get("dependency_groups", ()))
        ],
        **file_urls(m, lower.join(urls.file)),
    }
    if get("readme_file"):
        entry["readmeUrl"] = lower.join(urls.file) + "readme"
    return entry


def file_urls(meta: Mapping[str, Any], files: str) -> dict[str, str]:
    """A version's ``iconUrl`` and ``licenseUrl`` (registration leaves and search results alike): its
    embedded icon and license files (``files``: the URL of its folder in the flat container, ending in
    ``/``), a license expression at licenses.nuget.org (escaped, as nuget.org writes it), else the URLs
    its nuspec gives."""
    expression = meta.get("license_expression") or ""
    if meta.get("license_file"):
        license_url = files + "license"
    elif expression:
        license_url = "https://licenses.nuget.org/" + quote(expression, safe="()+")
    else:
        license_url = meta.get("license_url") or ""
    icon_url = files + "icon" if meta.get("icon_file") else meta.get("icon_url") or ""
    return {"iconUrl": icon_url, "licenseUrl": license_url}


def _dependency_group(hive: str, leaf: str, index: int, group: dict[str, Any]) -> dict[str, Any]:
    group_id = f"{leaf}#dependencygroup/{index}"
    out: dict[str, Any] = {
        "@id": group_id,
        "@type": "PackageDependencyGroup",
        "dependencies": [
            {
                "@id": f"{group_id}/{dep['id'].lower()}",
                "@type": "PackageDependency",
                "id": dep["id"],
                "range": dep.get("range") or "(, )",
                "registration": layout.absolute(layout.registration_index(hive, dep["id"].lower())),
            }
            for dep in group.get("dependencies", [])
        ],
    }
    if group.get("target_framework"):
        out["targetFramework"] = group["target_framework"]
    return out


class _Urls(NamedTuple):
    """An id's URLs in one hive, split where a version goes (``version.join(urls.leaf)``): built once for
    the id rather than once for each of its versions."""

    registration: str  # the index
    leaf: list[str]
    nupkg: list[str]
    file: list[str]  # a package file's URL, but for the file's name

    @classmethod
    def of(cls, hive: str, id_lower: str) -> _Urls:
        def split(key: str) -> list[str]:
            return layout.absolute(key).split(_VERSION)

        return cls(
            layout.absolute(layout.registration_index(hive, id_lower)),
            split(layout.registration_leaf(hive, id_lower, _VERSION)),
            split(layout.nupkg(id_lower, _VERSION)),
            split(f"{layout.FLAT}/{id_lower}/{_VERSION}/"),
        )


_VERSION = "\0"  # where a version goes in a URL (never in an id or a version)


def _leaves(
    hive: str, chunk: Sequence[VersionRecord], reg_id: str, commit: dict[str, str], verified: bool
) -> list[dict[str, Any]]:
    """The leaves of a page, with their catalog entries."""
    urls = _Urls.of(hive, reg_id.lower())
    commit_id, stamp = commit["commitId"], commit["commitTimeStamp"]
    return [
        {
            "@id": v.version_lower.join(urls.leaf),
            "@type": "Package",
            "commitId": commit_id,
            "commitTimeStamp": stamp,
            "catalogEntry": _catalog_entry(hive, v, reg_id, verified, urls),
            "packageContent": v.version_lower.join(urls.nupkg),
            "registration": urls.registration,
        }
        for v in chunk
    ]


class Bounds(Protocol):
    """What a page's place in the index needs of a version: its normalized text, in both cases."""

    @property
    def version(self) -> str: ...
    @property
    def version_lower(self) -> str: ...


def in_hive(hive: str, versions: Sequence[Any]) -> list[Any]:
    """The versions a hive shows (the SemVer 1 hive leaves SemVer 2.0.0 ones out), in version order."""
    include_semver2 = layout.HIVES[hive]
    return sorted(
        (v for v in versions if include_semver2 or not v.is_semver2), key=lambda v: version_key(v.version)
    )


def pages_of(chosen: Sequence[Any]) -> list[Sequence[Any]]:
    """The versions of each page (PAGE_SIZE each, in version order)."""
    return [chosen[start : start + PAGE_SIZE] for start in range(0, len(chosen), PAGE_SIZE)]


def page_key(hive: str, id_lower: str, chunk: Sequence[Bounds]) -> str:
    return layout.registration_page(hive, id_lower, chunk[0].version_lower, chunk[-1].version_lower)


def _page(
    hive: str, id_lower: str, chunk: Sequence[Bounds], commit: dict[str, str], inline: bool
) -> dict[str, Any]:
    index_url = layout.absolute(layout.registration_index(hive, id_lower))
    lower, upper = chunk[0].version_lower, chunk[-1].version_lower
    return {
        "@id": f"{index_url}#page/{lower}/{upper}"
        if inline
        else layout.absolute(page_key(hive, id_lower, chunk)),
        "@type": "catalog:CatalogPage",
        **commit,
        "count": len(chunk),
        "lower": chunk[0].version,
        "upper": chunk[-1].version,
        "parent": index_url,
    }


def page_document(
    hive: str, reg_id: str, chunk: Sequence[VersionRecord], commit: dict[str, str], *, verified: bool
) -> dict[str, Any]:
    """A stored page (of an id with INLINE_BELOW versions or more in the hive), with its items."""
    page = _page(hive, reg_id.lower(), chunk, commit, inline=False)
    return {**page, "items": _leaves(hive, chunk, reg_id, commit, verified), "@context": CONTEXT}


def index_document(
    hive: str, id_lower: str, pages: list[dict[str, Any]], commit: dict[str, str]
) -> dict[str, Any]:
    return {
        "@id": layout.absolute(layout.registration_index(hive, id_lower)),
        "@type": ["catalog:CatalogRoot", "PackageRegistration", "catalog:Permalink"],
        **commit,
        "count": len(pages),
        "items": pages,
        "@context": CONTEXT,
    }


def paged_index(
    hive: str, id_lower: str, chunks: Sequence[Sequence[Bounds]], commit: dict[str, str]
) -> dict[str, Any]:
    """The index of an id with INLINE_BELOW versions or more: links to its pages, with their bounds (it
    needs only the versions' texts, not their details)."""
    pages = []
    for chunk in chunks:
        page = _page(hive, id_lower, chunk, commit, inline=False)
        del page["parent"]
        pages.append(page)
    return index_document(hive, id_lower, pages, commit)


def build(
    hive: str,
    reg_id: str,
    versions: Sequence[VersionRecord],
    commit: dict[str, str],
    *,
    verified: bool = False,
) -> dict[str, dict[str, Any]]:
    """The stored documents of one id in one hive (index, and pages from INLINE_BELOW versions on), keyed
    by storage key; empty when the hive has no versions.

    ``verified``: the id is under a prefix reserved by one of its owners (``services.reservations``).
    """
    chosen = in_hive(hive, versions)
    if not chosen:
        return {}
    id_lower = reg_id.lower()
    chunks = pages_of(chosen)
    if len(chosen) >= INLINE_BELOW:
        docs = {
            page_key(hive, id_lower, chunk): page_document(hive, reg_id, chunk, commit, verified=verified)
            for chunk in chunks
        }
        docs[layout.registration_index(hive, id_lower)] = paged_index(hive, id_lower, chunks, commit)
        return docs
    pages = [
        {
            **_page(hive, id_lower, chunk, commit, inline=True),
            "items": _leaves(hive, chunk, reg_id, commit, verified),
        }
        for chunk in chunks
    ]
    return {layout.registration_index(hive, id_lower): index_document(hive, id_lower, pages, commit)}


def leaf(hive: str, reg_id: str, v: VersionRecord) -> dict[str, Any]:
    """A version's registration leaf. Not stored: clients restoring never read leaves (the index and
    pages inline every catalog entry), so they are answered from the database when asked for."""
    id_lower = reg_id.lower()
    leaf_key = layout.registration_leaf(hive, id_lower, v.version_lower)
    return {
        "@id": layout.absolute(leaf_key),
        "@type": ["Package", "http://schema.nuget.org/catalog#Permalink"],
        "catalogEntry": layout.absolute(leaf_key) + "#catalogEntry",
        "listed": v.listed,
        "packageContent": layout.absolute(layout.nupkg(id_lower, v.version_lower)),
        "published": isoformat(v.published_at) if v.listed else UNLISTED_PUBLISHED,
        "registration": layout.absolute(layout.registration_index(hive, id_lower)),
        "@context": {
            "@vocab": "http://schema.nuget.org/schema#",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
        },
    }
