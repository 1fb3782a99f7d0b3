"""Atom feeds and entries of V2 packages (XML written with ElementTree; nothing here reads XML)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, SubElement, register_namespace, tostring

from nugat.clock import utcnow

ATOM = "http://www.w3.org/2005/Atom"
D = "http://schemas.microsoft.com/ado/2007/08/dataservices"
M = "http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"
UNLISTED_PUBLISHED = "1900-01-01T00:00:00"

register_namespace("", ATOM)
register_namespace("d", D)
register_namespace("m", M)


@dataclass(frozen=True)
class VersionRecord:
    """What an entry shows of one version: a plain record, read from the database by ``queries``."""

    version: str  # normalized
    version_lower: str
    full_version: str
    listed: bool
    published_at: datetime
    is_prerelease: bool
    is_semver2: bool
    sha512: str
    size: int
    downloads: int
    metadata_json: dict[str, Any]


@dataclass(frozen=True)
class V2Package:
    row: VersionRecord
    package_id: str  # the registration's casing
    is_latest: bool  # latest listed stable version
    is_absolute_latest: bool  # latest listed version, prerelease included
    total_downloads: int


def _dependencies(row: VersionRecord) -> str:
    parts = []
    for group in row.metadata_json.get("dependency_groups", []):
        framework = group.get("target_framework") or ""
        deps = group.get("dependencies", [])
        if not deps:
            parts.append(f"::{framework}")
        parts += [f"{d['id']}:{d.get('range') or ''}:{framework}" for d in deps]
    return "|".join(parts)


def _prop(props: Element, name: str, value: object, edm: str | None = None) -> None:
    el = SubElement(props, f"{{{D}}}{name}")
    if edm:
        el.set(f"{{{M}}}type", edm)
    if value is None:
        el.set(f"{{{M}}}null", "true")
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    else:
        el.text = str(value)


def _entry(parent: Element, base: str, p: V2Package) -> None:
    row, m = p.row, p.row.metadata_json
    key = f"Packages(Id='{p.package_id}',Version='{row.version}')"
    entry = SubElement(parent, f"{{{ATOM}}}entry")
    SubElement(entry, f"{{{ATOM}}}id").text = f"{base}/api/v2/{key}"
    category = SubElement(entry, f"{{{ATOM}}}category")
    category.set("term", "NuGetGallery.OData.V2FeedPackage")
    category.set("scheme", "http://schemas.microsoft.com/ado/2007/08/dataservices/scheme")
    for rel in ("edit", "self"):
        link = SubElement(entry, f"{{{ATOM}}}link")
        link.set("rel", rel)
        link.set("href", key)
    SubElement(entry, f"{{{ATOM}}}title", type="text").text = p.package_id
    SubElement(entry, f"{{{ATOM}}}summary", type="text").text = m.get("summary") or ""
    SubElement(entry, f"{{{ATOM}}}updated").text = row.published_at.isoformat() + "Z"
    author = SubElement(entry, f"{{{ATOM}}}author")
    SubElement(author, f"{{{ATOM}}}name").text = ", ".join(m.get("authors", []))
    content = SubElement(entry, f"{{{ATOM}}}content")
    content.set("type", "application/zip")
    content.set("src", f"{base}/api/v2/package/{p.package_id}/{row.version}")
    props = SubElement(entry, f"{{{M}}}properties")
    published = row.published_at.isoformat() if row.listed else UNLISTED_PUBLISHED
    for name, value, edm in (
        ("Id", p.package_id, None),
        ("Version", row.full_version, None),
        ("NormalizedVersion", row.version, None),
        ("Authors", ", ".join(m.get("authors", [])), None),
        ("Copyright", m.get("copyright"), None),
        ("Created", row.published_at.isoformat(), "Edm.DateTime"),
        ("Dependencies", _dependencies(row), None),
        ("Description", m.get("description", ""), None),
        ("DownloadCount", p.total_downloads, "Edm.Int32"),
        ("GalleryDetailsUrl", f"{base}/packages/{p.package_id}/{row.version}", None),
        ("IconUrl", m.get("icon_url"), None),
        ("IsLatestVersion", p.is_latest, "Edm.Boolean"),
        ("IsAbsoluteLatestVersion", p.is_absolute_latest, "Edm.Boolean"),
        ("IsPrerelease", row.is_prerelease, "Edm.Boolean"),
        ("Language", m.get("language"), None),
        ("LastUpdated", row.published_at.isoformat(), "Edm.DateTime"),
        ("Published", published, "Edm.DateTime"),
        ("PackageHash", row.sha512, None),
        ("PackageHashAlgorithm", "SHA512", None),
        ("PackageSize", row.size, "Edm.Int64"),
        ("ProjectUrl", m.get("project_url"), None),
        ("ReleaseNotes", m.get("release_notes"), None),
        ("RequireLicenseAcceptance", bool(m.get("require_license_acceptance")), "Edm.Boolean"),
        ("Summary", m.get("summary"), None),
        ("Tags", " ".join(m.get("tags", [])), None),
        ("Title", m.get("title"), None),
        ("VersionDownloadCount", row.downloads, "Edm.Int32"),
        ("MinClientVersion", m.get("min_client_version"), None),
        ("LicenseUrl", m.get("license_url"), None),
    ):
        _prop(props, name, value, edm)


def feed(base: str, title: str, packages: Sequence[V2Package], next_url: str | None = None) -> bytes:
    root = Element(f"{{{ATOM}}}feed")
    root.set("xml:base", f"{base}/api/v2")
    SubElement(root, f"{{{ATOM}}}id").text = f"{base}/api/v2/{title}"
    SubElement(root, f"{{{ATOM}}}title", type="text").text = title
    SubElement(root, f"{{{ATOM}}}updated").text = utcnow().isoformat() + "Z"
    link = SubElement(root, f"{{{ATOM}}}link")
    link.set("rel", "self")
    link.set("title", title)
    link.set("href", title)
    for p in packages:
        _entry(root, base, p)
    if next_url:
        nxt = SubElement(root, f"{{{ATOM}}}link")
        nxt.set("rel", "next")
        nxt.set("href", next_url)
    return _serialize(root)


def entry(base: str, package: V2Package) -> bytes:
    holder = Element("holder")
    _entry(holder, base, package)
    only = holder[0]
    only.set("xml:base", f"{base}/api/v2")
    return _serialize(only)


def _serialize(root: Element) -> bytes:
    body: bytes = tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


SERVICE_DOCUMENT = """<?xml version="1.0" encoding="utf-8"?>
<service xml:base="{base}/api/v2/" xmlns="http://www.w3.org/2007/app" xmlns:atom="http://www.w3.org/2005/Atom">
<workspace><atom:title>Default</atom:title>
<collection href="Packages"><atom:title>Packages</atom:title></collection></workspace></service>
"""

METADATA = b"""<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx">
<edmx:DataServices m:DataServiceVersion="2.0" m:MaxDataServiceVersion="2.0"
 xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">
<Schema Namespace="NuGetGallery.OData" xmlns="http://schemas.microsoft.com/ado/2006/04/edm">
<EntityType Name="V2FeedPackage" m:HasStream="true">
<Key><PropertyRef Name="Id"/><PropertyRef Name="Version"/></Key>
<Property Name="Id" Type="Edm.String" Nullable="false"/>
<Property Name="Version" Type="Edm.String" Nullable="false"/>
<Property Name="NormalizedVersion" Type="Edm.String"/>
<Property Name="Authors" Type="Edm.String"/>
<Property Name="Copyright" Type="Edm.String"/>
<Property Name="Created" Type="Edm.DateTime" Nullable="false"/>
<Property Name="Dependencies" Type="Edm.String"/>
<Property Name="Description" Type="Edm.String"/>
<Property Name="DownloadCount" Type="Edm.Int32" Nullable="false"/>
<Property Name="GalleryDetailsUrl" Type="Edm.String"/>
<Property Name="IconUrl" Type="Edm.String"/>
<Property Name="IsLatestVersion" Type="Edm.Boolean" Nullable="false"/>
<Property Name="IsAbsoluteLatestVersion" Type="Edm.Boolean" Nullable="false"/>
<Property Name="IsPrerelease" Type="Edm.Boolean" Nullable="false"/>
<Property Name="Language" Type="Edm.String"/>
<Property Name="LastUpdated" Type="Edm.DateTime" Nullable="false"/>
<Property Name="Published" Type="Edm.DateTime" Nullable="false"/>
<Property Name="PackageHash" Type="Edm.String"/>
<Property Name="PackageHashAlgorithm" Type="Edm.String"/>
<Property Name="PackageSize" Type="Edm.Int64" Nullable="false"/>
<Property Name="ProjectUrl" Type="Edm.String"/>
<Property Name="ReleaseNotes" Type="Edm.String"/>
<Property Name="RequireLicenseAcceptance" Type="Edm.Boolean" Nullable="false"/>
<Property Name="Summary" Type="Edm.String"/>
<Property Name="Tags" Type="Edm.String"/>
<Property Name="Title" Type="Edm.String"/>
<Property Name="VersionDownloadCount" Type="Edm.Int32" Nullable="false"/>
<Property Name="MinClientVersion" Type="Edm.String"/>
<Property Name="LicenseUrl" Type="Edm.String"/>
</EntityType></Schema>
<Schema Namespace="NuGetGallery" xmlns="http://schemas.microsoft.com/ado/2006/04/edm">
<EntityContainer Name="V2FeedContext" m:IsDefaultEntityContainer="true">
<EntitySet Name="Packages" EntityType="NuGetGallery.OData.V2FeedPackage"/>
<FunctionImport Name="Search" EntitySet="Packages"
 ReturnType="Collection(NuGetGallery.OData.V2FeedPackage)" m:HttpMethod="GET">
<Parameter Name="searchTerm" Type="Edm.String" FixedLength="false" Unicode="false"/>
<Parameter Name="targetFramework" Type="Edm.String" FixedLength="false" Unicode="false"/>
<Parameter Name="includePrerelease" Type="Edm.Boolean" Nullable="false"/>
</FunctionImport>
<FunctionImport Name="FindPackagesById" EntitySet="Packages"
 ReturnType="Collection(NuGetGallery.OData.V2FeedPackage)" m:HttpMethod="GET">
<Parameter Name="id" Type="Edm.String" FixedLength="false" Unicode="false"/>
</FunctionImport>
<FunctionImport Name="GetUpdates" EntitySet="Packages"
 ReturnType="Collection(NuGetGallery.OData.V2FeedPackage)" m:HttpMethod="GET">
<Parameter Name="packageIds" Type="Edm.String" FixedLength="false" Unicode="false"/>
<Parameter Name="versions" Type="Edm.String" FixedLength="false" Unicode="false"/>
<Parameter Name="includePrerelease" Type="Edm.Boolean" Nullable="false"/>
<Parameter Name="includeAllVersions" Type="Edm.Boolean" Nullable="false"/>
<Parameter Name="targetFrameworks" Type="Edm.String" FixedLength="false" Unicode="false"/>
<Parameter Name="versionConstraints" Type="Edm.String" FixedLength="false" Unicode="false"/>
<Parameter Name="semVerLevel" Type="Edm.String" FixedLength="false" Unicode="false"/>
</FunctionImport>
</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>
"""
