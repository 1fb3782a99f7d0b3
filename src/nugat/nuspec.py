"""Reading and validating .nupkg files: zip safety checks and the nuspec metadata."""

from __future__ import annotations

import codecs
import errno
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import unquote, urlsplit
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as DefusedET
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from nugat.versions import NuGetVersion, parse_range, parse_version

__all__ = [
    "CONTENT_CHUNK",
    "Dependency",
    "DependencyGroup",
    "InvalidPackage",
    "PackageMetadata",
    "PackageType",
    "ReadLimits",
    "check_icon",
    "image_type",
    "read_contents",
    "read_entry",
    "read_package",
    "validate_id",
]

MAX_ID_LENGTH = 100
MAX_VERSION_LENGTH = 64
MAX_ICON_BYTES = 1 << 20  # nuget.org's limit, which `nuget pack` enforces too (NU5047)
# The only icon formats nuget.org accepts, known by their first bytes (never by the file's name): an
# image type a browser could run script in (SVG, HTML) can then never be served as a package's icon.
_IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))
_ID = re.compile(r"\w+([.-]\w+)*", re.ASCII)
_DRIVE = re.compile(r"[A-Za-z]:")
_TAG_SEPARATORS = re.compile(r"[\s,]+")
_XML_ENCODING = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_RATIO_MIN_SIZE = 1 << 20
CONTENT_CHUNK = 1 << 20  # of an entry's content, inflated (``read_contents``)
_EOCD = b"PK\x05\x06"
_READABLE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    ValueError,
    zlib.error,
    struct.error,
    NotImplementedError,
)


class InvalidPackage(ValueError):
    """The upload is not an acceptable package; ``str(e)`` is meant for the user."""


@dataclass(frozen=True)
class ReadLimits:
    max_entries: int = 10_000
    max_nuspec_bytes: int = 1 << 20
    max_total_uncompressed: int = 4 << 30
    max_ratio: int = 200


@dataclass(frozen=True)
class Dependency:
    id: str
    range: str | None


@dataclass(frozen=True)
class DependencyGroup:
    target_framework: str | None
    dependencies: tuple[Dependency, ...]


@dataclass(frozen=True)
class PackageType:
    name: str
    version: str | None


@dataclass(frozen=True)
class PackageMetadata:
    id: str
    version: NuGetVersion
    authors: tuple[str, ...]
    description: str
    title: str | None
    summary: str | None
    tags: tuple[str, ...]
    project_url: str | None
    icon_url: str | None
    icon_file: str | None
    readme_file: str | None
    license_url: str | None
    license_expression: str | None
    license_file: str | None
    require_license_acceptance: bool
    release_notes: str | None
    copyright: str | None
    language: str | None
    min_client_version: str | None
    development_dependency: bool
    repository_url: str | None
    repository_type: str | None
    dependency_groups: tuple[DependencyGroup, ...]
    package_types: tuple[PackageType, ...]
    nuspec: bytes
    nuspec_name: str
    # The normalized range strings drop build metadata, which still makes a range SemVer 2.0.0.
    _semver2_ranges: bool = field(default=False, repr=False, compare=False, kw_only=True)

    @property
    def is_semver2(self) -> bool:
        return (
            self.version.is_semver2
            or self._semver2_ranges
            or any(
                d.range is not None and parse_range(d.range).is_semver2
                for g in self.dependency_groups
                for d in g.dependencies
            )
        )


def _quote(text: str) -> str:
    return repr(text if len(text) <= 120 else text[:120] + "...")


def validate_id(package_id: str) -> None:
    if not package_id:
        raise InvalidPackage("The package id is empty")
    prefix = f"Invalid package id {_quote(package_id)}"
    if len(package_id) > MAX_ID_LENGTH:
        raise InvalidPackage(f"{prefix}: it is longer than {MAX_ID_LENGTH} characters")
    odd = next((c for c in package_id if not c.isascii()), None)
    if odd is not None:
        raise InvalidPackage(f"{prefix}: it contains the non-ASCII character {odd!r} (U+{ord(odd):04X})")
    if not _ID.fullmatch(package_id):
        raise InvalidPackage(
            f"{prefix}: only ASCII letters, digits and '_' are allowed, "
            "separated by single '.' or '-' characters that are not at the start or end"
        )


def _is_unsafe(name: str) -> bool:
    """A name that could land outside the folder it is extracted to: as it is, or percent-decoded, as NuGet
    clients decode an entry's name before extracting it (``%2e%2e%2f`` is ``../`` to them)."""
    return _is_unsafe_path(name) or _is_unsafe_path(unquote(name))


def _is_unsafe_path(name: str) -> bool:
    path = name.replace("\\", "/")
    return (
        not path
        or "\x00" in path
        or path.startswith("/")
        or bool(_DRIVE.match(path))
        or ".." in path.split("/")
    )


def _is_root_nuspec(name: str) -> bool:
    return "/" not in name.replace("\\", "/") and name.lower().endswith(".nuspec")


def _check_entry_count(f: BinaryIO, max_entries: int) -> None:
    """Count the central directory records the way zipfile walks them, before zipfile builds an object
    for every one of them: a small file can hold millions of records, and the declared count can lie.
    Anything malformed is left for zipfile to report."""
    size = f.seek(0, os.SEEK_END)
    start = max(0, size - 22 - 0xFFFF)
    f.seek(start)
    tail = f.read()
    # Same search as zipfile._EndRecData: a comment-less record at the very end, else the last signature.
    at_end = tail[-22:-18] == _EOCD and tail[-2:] == b"\0\0"
    pos = len(tail) - 22 if at_end else tail.rfind(_EOCD)
    if pos < 0 or len(tail) < pos + 22:
        return
    eocd = start + pos
    cd_size = int.from_bytes(tail[pos + 12 : pos + 16], "little")
    cd_start = eocd - cd_size
    if eocd >= 76:
        f.seek(eocd - 76)
        zip64 = f.read(76)
        if zip64[56:60] == b"PK\x06\x07" and zip64[:4] == b"PK\x06\x06":
            cd_size = int.from_bytes(zip64[40:48], "little")
            cd_start = eocd - 76 - cd_size
    if cd_start < 0:
        return
    f.seek(cd_start)
    count = total = 0
    while total < cd_size:
        header = f.read(46)
        if len(header) < 46 or header[:4] != b"PK\x01\x02":
            return
        count += 1
        if count > max_entries:
            raise InvalidPackage(f"The package has too many entries (more than {max_entries})")
        skip = sum(struct.unpack_from("<3H", header, 28))
        f.seek(skip, os.SEEK_CUR)
        total += 46 + skip


@contextmanager
def _open_zip(path: str | os.PathLike[str], max_entries: int) -> Iterator[zipfile.ZipFile]:
    """Open read-only; zip-level errors raised while the block runs become InvalidPackage."""
    with open(path, "rb") as f:
        try:
            _check_entry_count(f, max_entries)
            with zipfile.ZipFile(f) as zf:
                yield zf
        except InvalidPackage:
            raise
        except _ZIP_ERRORS as e:
            raise InvalidPackage(f"The file is not a valid zip archive ({e})") from e
        except OSError as e:
            if e.errno != errno.EINVAL:  # a seek to a negative offset a lying header points at
                raise
            raise InvalidPackage("The file is not a valid zip archive (an entry points outside it)") from e


def _find_entry(infos: list[zipfile.ZipInfo], name: str, what: str) -> zipfile.ZipInfo:
    """Exact match first, else a unique case-insensitive one (NuGet paths are case-insensitive)."""
    key = name.replace("\\", "/")
    files = [i for i in infos if not i.filename.endswith("/")]
    exact = [i for i in files if i.filename.replace("\\", "/") == key]
    if len(exact) == 1:
        return exact[0]
    folded = [i for i in files if i.filename.replace("\\", "/").lower() == key.lower()]
    if not folded:
        raise InvalidPackage(f"The package has no {what} {_quote(name)}")
    if len(folded) > 1:
        raise InvalidPackage(f"The package has more than one {what} matching {_quote(name)}")
    return folded[0]


def _read_bounded(zf: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int, what: str) -> bytes:
    """Never inflate more than max_bytes + 1 bytes, whatever the headers claim."""
    if info.flag_bits & 0x1:
        raise InvalidPackage(f"{what} is encrypted, which is not allowed")
    if info.compress_type not in _READABLE_METHODS:
        raise InvalidPackage(f"{what} uses an unsupported compression method ({info.compress_type})")
    too_big = InvalidPackage(f"{what} is larger than {max_bytes} bytes")
    if info.file_size > max_bytes:
        raise too_big
    with zf.open(info) as stream:
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise too_big
    return data


def image_type(data: bytes) -> str | None:
    """``image/png`` or ``image/jpeg`` when ``data`` starts as such an image does, else None."""
    return next((kind for signature, kind in _IMAGE_SIGNATURES if data.startswith(signature)), None)


def check_icon(name: str, data: bytes) -> str:
    """The media type of an embedded icon; InvalidPackage unless it is a PNG or JPEG image."""
    kind = image_type(data)
    if kind is None:
        raise InvalidPackage(
            f"The icon file {_quote(name)} is not a PNG or JPEG image: only those are accepted, "
            "as on nuget.org (SVG and other formats are not)"
        )
    return kind


def read_entry(path: str | os.PathLike[str], name: str, max_bytes: int) -> bytes:
    with _open_zip(path, ReadLimits.max_entries) as zf:
        info = _find_entry(zf.infolist(), name, "entry")
        return _read_bounded(zf, info, max_bytes, f"Entry {_quote(info.filename)}")


def read_package(path: str | os.PathLike[str], limits: ReadLimits = ReadLimits()) -> PackageMetadata:
    with _open_zip(path, limits.max_entries) as zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise InvalidPackage(f"The package has too many entries (more than {limits.max_entries})")
        total = 0
        for info in infos:
            quoted = _quote(info.orig_filename)
            if _is_unsafe(info.orig_filename):
                raise InvalidPackage(f"Entry {quoted} has an unsafe path")
            if info.flag_bits & 0x1:
                raise InvalidPackage(f"Entry {quoted} is encrypted, which is not allowed")
            if info.compress_type not in _READABLE_METHODS:
                raise InvalidPackage(
                    f"Entry {quoted} uses an unsupported compression method ({info.compress_type}): "
                    "NuGet clients read only stored and deflated entries"
                )
            if info.file_size > _RATIO_MIN_SIZE and info.file_size > limits.max_ratio * info.compress_size:
                raise InvalidPackage(f"Entry {quoted} has a suspicious compression ratio (zip bomb?)")
            total += info.file_size
        if total > limits.max_total_uncompressed:
            limit = limits.max_total_uncompressed
            raise InvalidPackage(f"The package is too large when uncompressed (more than {limit} bytes)")
        nuspecs = [i for i in infos if _is_root_nuspec(i.filename)]
        if not nuspecs:
            raise InvalidPackage("The package has no .nuspec file at its root")
        if len(nuspecs) > 1:
            names = ", ".join(_quote(i.filename) for i in nuspecs)
            raise InvalidPackage(f"The package has more than one .nuspec file at its root: {names}")
        data = _read_bounded(zf, nuspecs[0], limits.max_nuspec_bytes, "The nuspec")
    return _parse_nuspec(data, nuspecs[0].filename, infos)


def read_contents(
    path: str | os.PathLike[str], budget: int
) -> Generator[tuple[zipfile.ZipInfo, bytes], None, None]:
    """The entries of a package ``read_package`` has accepted, with their content: ``(entry, b"")`` for
    each entry, then ``(entry, chunk)`` for each chunk of its content, inflated, until ``budget`` bytes in
    all have been read. An entry read to its end has had its CRC checked: a corrupt one raises
    InvalidPackage (NuGet clients could not extract it)."""
    with _open_zip(path, ReadLimits.max_entries) as zf:
        for info in zf.infolist():
            yield info, b""
            if info.is_dir() or budget <= 0:
                continue
            try:
                with zf.open(info) as entry:
                    while budget > 0 and (chunk := entry.read(min(CONTENT_CHUNK, budget))):
                        budget -= len(chunk)
                        yield info, chunk
            except _ZIP_ERRORS as e:
                raise InvalidPackage(f"Entry {_quote(info.orig_filename)} is corrupt ({e})") from e


def _parse_xml(data: bytes) -> Element:
    # Expat reports undecodable bytes as "invalid token"; say what is really wrong when we can tell.
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, b"<\0", b"\0<"))
    declared = _XML_ENCODING.match(data.removeprefix(codecs.BOM_UTF8))
    if not utf16 and (declared is None or declared[1].lower() in (b"utf-8", b"utf8")):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidPackage(f"The nuspec is not valid UTF-8 (bad byte at offset {e.start})") from None
    try:
        root: Element = DefusedET.fromstring(data, forbid_dtd=True)
    except DTDForbidden:
        raise InvalidPackage("The nuspec contains a DTD, which is not allowed") from None
    except EntitiesForbidden:
        raise InvalidPackage("The nuspec declares XML entities, which is not allowed") from None
    except ExternalReferenceForbidden:
        raise InvalidPackage("The nuspec references external resources, which is not allowed") from None
    except ParseError as e:
        raise InvalidPackage(f"The nuspec is not well-formed XML: {e}") from None
    except (LookupError, ValueError) as e:  # an encoding declaration expat cannot use
        raise InvalidPackage(f"The nuspec's encoding is not supported: {e}") from None
    return root


def _local(element: Element) -> str:
    return element.tag.rpartition("}")[2]


class _Metadata:
    """The children of <metadata> by local name; an element we interpret may appear only once."""

    def __init__(self, element: Element) -> None:
        self.element = element
        self.children: dict[str, list[Element]] = {}
        for child in element:
            self.children.setdefault(_local(child), []).append(child)

    def one(self, name: str) -> Element | None:
        found = self.children.get(name, [])
        if len(found) > 1:
            raise InvalidPackage(f"The nuspec has more than one <{name}> element")
        return found[0] if found else None

    def text(self, name: str) -> str | None:
        el = self.one(name)
        return None if el is None else _text(el, name) or None

    def required(self, name: str) -> str:
        el = self.one(name)
        if el is None:
            raise InvalidPackage(f"The nuspec is missing the required <{name}> element")
        value = _text(el, name)
        if not value:
            raise InvalidPackage(f"The nuspec's <{name}> element is empty")
        return value

    def flag(self, name: str) -> bool:
        value = self.text(name)
        if value is None or value.lower() == "false":
            return False
        if value.lower() == "true":
            return True
        raise InvalidPackage(f"Invalid <{name}> value {_quote(value)}: expected 'true' or 'false'")

    def url(self, name: str) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            ok = parts.scheme.lower() in ("http", "https") and bool(parts.netloc)
        except ValueError:
            ok = False
        if not ok:
            raise InvalidPackage(f"Invalid <{name}> {_quote(value)}: not an absolute http or https URL")
        return value


def _text(el: Element, name: str) -> str:
    if len(el):
        raise InvalidPackage(f"The nuspec's <{name}> element must contain only text")
    return (el.text or "").strip()


def _attr(el: Element, name: str) -> str | None:
    return (el.get(name) or "").strip() or None


def _package_file(value: str | None, infos: list[zipfile.ZipInfo], what: str) -> str | None:
    if value is not None:
        if _is_unsafe(value):
            raise InvalidPackage(f"The {what} path {_quote(value)} is unsafe")
        _find_entry(infos, value, what)
    return value


def _dependencies(parent: Element) -> tuple[tuple[Dependency, ...], bool]:
    deps: list[Dependency] = []
    semver2 = False
    for el in parent:
        if _local(el) != "dependency":
            continue
        dep_id = _attr(el, "id")
        if dep_id is None:
            raise InvalidPackage("A <dependency> element has no id")
        validate_id(dep_id)
        text = _attr(el, "version")
        if text is None:
            deps.append(Dependency(dep_id, None))
            continue
        try:
            version_range = parse_range(text)
        except ValueError as e:
            raise InvalidPackage(f"Invalid version range for dependency {_quote(dep_id)}: {e}") from None
        semver2 = semver2 or version_range.is_semver2
        deps.append(Dependency(dep_id, str(version_range)))
    return tuple(deps), semver2


def _dependency_groups(el: Element | None) -> tuple[tuple[DependencyGroup, ...], bool]:
    """NuGet reads <group> children when there are any, else the flat <dependency> list as one group."""
    if el is None:
        return (), False
    kinds = {_local(child) for child in el}
    if "group" in kinds and "dependency" in kinds:
        raise InvalidPackage("The nuspec's <dependencies> mixes <group> and <dependency> elements")
    if "group" not in kinds:
        deps, semver2 = _dependencies(el)
        return ((DependencyGroup(None, deps),) if deps else ()), semver2
    groups: list[DependencyGroup] = []
    any_semver2 = False
    for group in el:
        if _local(group) == "group":
            deps, semver2 = _dependencies(group)
            groups.append(DependencyGroup(_attr(group, "targetFramework"), deps))
            any_semver2 = any_semver2 or semver2
    return tuple(groups), any_semver2


def _package_types(el: Element | None) -> tuple[PackageType, ...]:
    types: list[PackageType] = []
    for child in () if el is None else el:
        if _local(child) == "packageType":
            name = _attr(child, "name")
            if name is None:
                raise InvalidPackage("A <packageType> element has no name")
            types.append(PackageType(name, _attr(child, "version")))
    return tuple(types) or (PackageType("Dependency", None),)


def _parse_nuspec(data: bytes, name: str, infos: list[zipfile.ZipInfo]) -> PackageMetadata:
    root = _parse_xml(data)
    if _local(root) != "package":
        raise InvalidPackage(f"The nuspec's root element is <{_local(root)}>, not <package>")
    found = [child for child in root if _local(child) == "metadata"]
    if len(found) != 1:
        raise InvalidPackage("The nuspec must have exactly one <metadata> element")
    meta = _Metadata(found[0])

    package_id = meta.required("id")
    validate_id(package_id)
    version_text = meta.required("version")
    try:
        version = parse_version(version_text)
    except ValueError as e:
        raise InvalidPackage(f"Invalid package version: {e}") from None
    if len(version.full) > MAX_VERSION_LENGTH:  # as nuget.org; it also keeps blob names short
        quoted, limit = _quote(version.full), MAX_VERSION_LENGTH
        raise InvalidPackage(f"Invalid package version {quoted}: it is longer than {limit} characters")
    first = version.release_labels[0][:1] if version.release_labels else "a"
    if not version.is_semver2 and not (first.isascii() and first.isalpha()):  # nuget.org's rule too
        raise InvalidPackage(
            f"Invalid package version {_quote(version.full)}: the prerelease label of a SemVer 1.0.0 version "
            "must start with a letter (such as 1.0.0-rc1)"
        )
    authors = tuple(a.strip() for a in meta.required("authors").split(",") if a.strip())
    if not authors:
        raise InvalidPackage("The nuspec's <authors> element lists no author")
    description = meta.required("description")

    min_client_version = _attr(meta.element, "minClientVersion")
    if min_client_version is not None:
        try:
            parse_version(min_client_version)
        except ValueError as e:
            raise InvalidPackage(f"Invalid minClientVersion: {e}") from None

    license_expression = license_file = None
    license_el = meta.one("license")
    if license_el is not None:
        value = _text(license_el, "license")
        kind = (license_el.get("type") or "").strip().lower()
        if not value:
            raise InvalidPackage("The nuspec's <license> element is empty")
        if kind == "expression":
            license_expression = value
        elif kind == "file":
            license_file = _package_file(value, infos, "license file")
        else:
            raise InvalidPackage(f"Unsupported license type {_quote(kind)}: expected 'expression' or 'file'")

    repository = meta.one("repository")
    tags = meta.text("tags")
    dependency_groups, semver2_ranges = _dependency_groups(meta.one("dependencies"))
    return PackageMetadata(
        id=package_id,
        version=version,
        authors=authors,
        description=description,
        title=meta.text("title"),
        summary=meta.text("summary"),
        tags=tuple(t for t in _TAG_SEPARATORS.split(tags) if t) if tags else (),
        project_url=meta.url("projectUrl"),
        icon_url=meta.url("iconUrl"),
        icon_file=_package_file(meta.text("icon"), infos, "icon file"),
        readme_file=_package_file(meta.text("readme"), infos, "readme file"),
        license_url=meta.url("licenseUrl"),
        license_expression=license_expression,
        license_file=license_file,
        require_license_acceptance=meta.flag("requireLicenseAcceptance"),
        release_notes=meta.text("releaseNotes"),
        copyright=meta.text("copyright"),
        language=meta.text("language"),
        min_client_version=min_client_version,
        development_dependency=meta.flag("developmentDependency"),
        repository_url=None if repository is None else _attr(repository, "url"),
        repository_type=None if repository is None else _attr(repository, "type"),
        dependency_groups=dependency_groups,
        package_types=_package_types(meta.one("packageTypes")),
        nuspec=data,
        nuspec_name=name,
        _semver2_ranges=semver2_ranges,
    )
