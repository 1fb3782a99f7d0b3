import hashlib
import os
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from nugat.nuspec import (
    CONTENT_CHUNK,
    Dependency,
    DependencyGroup,
    InvalidPackage,
    PackageType,
    ReadLimits,
    read_contents,
    read_entry,
    read_package,
    validate_id,
)
from support.zips import Entries, forge, spoil, zip_bytes

NS = "http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"
MIB = 1 << 20

# --- building test packages ------------------------------------------------------------------------


def nuspec(
    *,
    id: str | None = "Contoso.Utils",
    version: str | None = "1.0.0",
    authors: str | None = "Jane Doe",
    description: str | None = "Utilities.",
    extra: str = "",
    ns: str | None = NS,
    metadata_attrs: str = "",
) -> bytes:
    fields = {"id": id, "version": version, "authors": authors, "description": description}
    body = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items() if v is not None)
    xmlns = f' xmlns="{ns}"' if ns else ""
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n'
        f"<package{xmlns}><metadata{metadata_attrs}>{body}{extra}</metadata></package>"
    ).encode()


def with_zip64_end(data: bytes, *, count: int | None = None) -> bytes:
    """Replace a comment-less end record with zip64 end records (as writers do for big archives)."""
    _, _, _, _, total, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", data[-22:])
    body = data[:-22]
    count = total if count is None else count
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, cd_size, cd_offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, len(body), 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return body + record + locator + end


@pytest.fixture
def write(tmp_path: Path) -> Callable[[bytes], Path]:
    def write(data: bytes) -> Path:
        path = tmp_path / f"p{len(list(tmp_path.iterdir()))}.nupkg"
        path.write_bytes(data)
        return path

    return write


@pytest.fixture
def package(write: Callable[[bytes], Path]) -> Callable[..., Path]:
    """A package with the given nuspec (bytes or nuspec() keyword arguments) and extra files."""

    def package(
        spec: bytes | None = None, files: Entries = (), name: str = "Contoso.Utils.nuspec", **kw: str
    ) -> Path:
        extra = list(files.items() if isinstance(files, Mapping) else files)
        return write(zip_bytes([(name, spec if spec is not None else nuspec(**kw)), *extra]))

    return package


def invalid(path: Path, match: str, limits: ReadLimits | None = None) -> InvalidPackage:
    with pytest.raises(InvalidPackage, match=match) as info:
        read_package(path, limits) if limits else read_package(path)
    return info.value


# --- valid packages --------------------------------------------------------------------------------


def test_minimal_package(package: Callable[..., Path]) -> None:
    spec = nuspec()
    path = package(spec, files={"lib/net8.0/Contoso.Utils.dll": b"MZ"})
    meta = read_package(path)
    assert meta.id == "Contoso.Utils"
    assert meta.version.normalized == "1.0.0"
    assert meta.authors == ("Jane Doe",)
    assert meta.description == "Utilities."
    assert meta.title is meta.summary is meta.project_url is meta.license_expression is None
    assert meta.tags == ()
    assert meta.dependency_groups == ()
    assert meta.package_types == (PackageType("Dependency", None),)
    assert not meta.require_license_acceptance and not meta.development_dependency
    assert not meta.is_semver2
    assert meta.nuspec == spec
    assert meta.nuspec_name == "Contoso.Utils.nuspec"


def test_rich_package(package: Callable[..., Path]) -> None:
    extra = """
      <title> Contoso Utilities </title>
      <summary>Short.</summary>
      <tags>util, json  http,,tools</tags>
      <projectUrl>https://example.com/utils</projectUrl>
      <iconUrl>http://example.com/icon.png</iconUrl>
      <icon>images\\icon.png</icon>
      <readme>docs/README.md</readme>
      <licenseUrl>https://licenses.nuget.org/MIT</licenseUrl>
      <license type="expression">MIT OR Apache-2.0</license>
      <requireLicenseAcceptance>True</requireLicenseAcceptance>
      <releaseNotes>Fixed &amp; improved.</releaseNotes>
      <copyright>(c) Contoso</copyright>
      <language>en-US</language>
      <developmentDependency>true</developmentDependency>
      <repository type="git" url="https://github.com/contoso/utils" branch="main" commit="abc" />
      <packageTypes>
        <packageType name="DotnetTool" /><packageType name="Template" version="1.0" />
      </packageTypes>
      <dependencies>
        <group targetFramework="net8.0">
          <dependency id="Newtonsoft.Json" version="13.0.1" exclude="Build" />
          <dependency id="Contoso.Core" version="[1.0, 2.0)" />
          <dependency id="Contoso.Any" />
        </group>
        <group targetFramework=".NETStandard2.0" />
        <group />
      </dependencies>
      <owners>ignored</owners>
    """
    path = package(
        authors="Jane Doe, John Roe,",
        version="1.02.3.0",
        metadata_attrs=' minClientVersion="2.12"',
        extra=extra,
        files={"images/icon.png": b"\x89PNG", "docs/readme.md": b"# Hi"},
    )
    meta = read_package(path)
    assert meta.version.normalized == "1.2.3" and meta.version.original == "1.02.3.0"
    assert meta.authors == ("Jane Doe", "John Roe")
    assert (meta.title, meta.summary) == ("Contoso Utilities", "Short.")
    assert meta.tags == ("util", "json", "http", "tools")
    assert meta.project_url == "https://example.com/utils"
    assert meta.icon_url == "http://example.com/icon.png"
    assert meta.icon_file == "images\\icon.png"
    assert meta.readme_file == "docs/README.md"
    assert meta.license_url == "https://licenses.nuget.org/MIT"
    assert meta.license_expression == "MIT OR Apache-2.0" and meta.license_file is None
    assert meta.require_license_acceptance and meta.development_dependency
    assert meta.release_notes == "Fixed & improved."
    assert (meta.copyright, meta.language) == ("(c) Contoso", "en-US")
    assert meta.min_client_version == "2.12"
    assert (meta.repository_type, meta.repository_url) == ("git", "https://github.com/contoso/utils")
    assert meta.package_types == (PackageType("DotnetTool", None), PackageType("Template", "1.0"))
    assert meta.dependency_groups == (
        DependencyGroup(
            "net8.0",
            (
                Dependency("Newtonsoft.Json", "[13.0.1, )"),
                Dependency("Contoso.Core", "[1.0.0, 2.0.0)"),
                Dependency("Contoso.Any", None),
            ),
        ),
        DependencyGroup(".NETStandard2.0", ()),
        DependencyGroup(None, ()),
    )
    assert not meta.is_semver2
    # The embedded files the nuspec points at can be served (paths are case-insensitive, either separator).
    assert read_entry(path, meta.icon_file or "", 1000) == b"\x89PNG"
    assert read_entry(path, meta.readme_file or "", 1000) == b"# Hi"


def test_flat_dependencies_make_one_group(package: Callable[..., Path]) -> None:
    extra = (
        '<dependencies><dependency id="A" version="1.0"/><dependency id="B" version="[2.0]"/></dependencies>'
    )
    meta = read_package(package(extra=extra))
    assert meta.dependency_groups == (
        DependencyGroup(None, (Dependency("A", "[1.0.0, )"), Dependency("B", "[2.0.0]"))),
    )
    assert read_package(package(extra="<dependencies/>")).dependency_groups == ()


@pytest.mark.parametrize(
    "ns",
    [
        None,
        "http://schemas.microsoft.com/packaging/2010/07/nuspec.xsd",
        "http://schemas.microsoft.com/packaging/2011/08/nuspec.xsd",
        "http://schemas.microsoft.com/packaging/2012/06/nuspec.xsd",
        NS,
    ],
)
def test_any_nuspec_namespace(package: Callable[..., Path], ns: str | None) -> None:
    assert read_package(package(ns=ns, extra="<title>T</title>")).title == "T"


def test_prefixed_namespace(package: Callable[..., Path]) -> None:
    spec = (
        f'<n:package xmlns:n="{NS}"><n:metadata><n:id>A</n:id><n:version>1.0.0</n:version>'
        "<n:authors>x</n:authors><n:description>d</n:description></n:metadata></n:package>"
    ).encode()
    assert read_package(package(spec)).id == "A"


@pytest.mark.parametrize(
    ("version", "extra", "semver2"),
    [
        ("1.0.0-beta", "", False),
        ("1.0.0-beta.1", "", True),
        ("1.0.0+build.5", "", True),
        ("1.0.0", '<dependencies><dependency id="A" version="[1.0.0-rc.1, )"/></dependencies>', True),
        ("1.0.0", '<dependencies><dependency id="A" version="1.0.0+meta"/></dependencies>', True),
        ("1.0.0", '<dependencies><dependency id="A" version="1.0.0-rc"/></dependencies>', False),
    ],
)
def test_semver2(package: Callable[..., Path], version: str, extra: str, semver2: bool) -> None:
    assert read_package(package(version=version, extra=extra)).is_semver2 is semver2


def test_utf16_and_declared_encodings(package: Callable[..., Path]) -> None:
    text = nuspec(description="Café").decode().replace("utf-8", "utf-16")
    assert read_package(package(text.encode("utf-16"))).description == "Café"
    latin1 = nuspec(description="Café").decode().replace("utf-8", "ISO-8859-1").encode("latin-1")
    assert read_package(package(latin1)).description == "Café"
    bom = b"\xef\xbb\xbf" + nuspec(description="Café")
    assert read_package(package(bom)).description == "Café"


def test_uppercase_nuspec_name_and_stored_entries(write: Callable[[bytes], Path]) -> None:
    path = write(zip_bytes({"CONTOSO.NUSPEC": nuspec(), "lib/a.dll": b"x" * 5000}, zipfile.ZIP_STORED))
    assert read_package(path).nuspec_name == "CONTOSO.NUSPEC"


def test_zip64_end_record_is_understood(write: Callable[[bytes], Path]) -> None:
    data = with_zip64_end(zip_bytes({"a.nuspec": nuspec(), "lib/a.dll": b"MZ"}))
    assert read_package(write(data)).id == "Contoso.Utils"


def test_file_is_not_modified(package: Callable[..., Path]) -> None:
    path = package(files={"lib/a.dll": b"MZ"})
    os.utime(path, (1_000_000, 1_000_000))
    before = hashlib.sha256(path.read_bytes()).digest()
    read_package(path)
    read_entry(path, "lib/a.dll", 10)
    assert hashlib.sha256(path.read_bytes()).digest() == before
    assert path.stat().st_mtime == 1_000_000


# --- zip-level rejections --------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04" + bytes(100), b"PK\x05\x06"])
def test_not_a_zip(write: Callable[[bytes], Path], data: bytes) -> None:
    invalid(write(data), "^The file is not a valid zip archive")


def test_truncated_zip(write: Callable[[bytes], Path]) -> None:
    data = zip_bytes({"a.nuspec": nuspec(), "lib/a.dll": os.urandom(4000)})
    for cut in (len(data) // 2, len(data) - 10):
        invalid(write(data[:cut]), "^The file is not a valid zip archive")


def test_corrupt_entry_data(write: Callable[[bytes], Path]) -> None:
    data = zip_bytes({"a.nuspec": nuspec()}, zipfile.ZIP_STORED)
    invalid(write(data.replace(b"Utilities.", b"Utilitiez.")), "^The file is not a valid zip archive.*CRC")
    deflated = bytearray(zip_bytes({"a.nuspec": nuspec() + b" " * 1000}))
    deflated[60:70] = b"\xff" * 10
    invalid(write(bytes(deflated)), "^The file is not a valid zip archive")


def test_no_nuspec(write: Callable[[bytes], Path]) -> None:
    invalid(write(zip_bytes({"lib/a.dll": b"MZ"})), "^The package has no .nuspec file at its root$")


@pytest.mark.parametrize("name", ["sub/Contoso.nuspec", "sub\\Contoso.nuspec", "Contoso.nuspec/"])
def test_nested_nuspec_does_not_count(write: Callable[[bytes], Path], name: str) -> None:
    invalid(write(zip_bytes({name: nuspec()})), "no .nuspec file at its root")


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_two_nuspecs(write: Callable[[bytes], Path]) -> None:
    data = zip_bytes({"a.nuspec": nuspec(), "b.NuSpec": nuspec()})
    invalid(write(data), "more than one .nuspec file at its root: 'a.nuspec', 'b.NuSpec'")
    invalid(write(zip_bytes([("a.nuspec", nuspec()), ("a.nuspec", nuspec())])), "more than one .nuspec")


@pytest.mark.parametrize(
    "name",
    [
        "../a",
        "lib/../../a",
        "/abs",
        "/",
        "C:\\x",
        "c:/x",
        "C:x",
        "a\\..\\b",
        "\\\\server\\share\\x",
        "..",
        "",
        # NuGet clients percent-decode a name before extracting it.
        "%2e%2e/%2e%2e/evil.dll",
        "..%2f..%2fevil.dll",
        "lib/..%5c..%5cevil.dll",
        "%5c%5cserver%5cshare%5cx.dll",
        "%2Fabs",
        "lib/x%00y.dll",
    ],
)
def test_unsafe_entry_names(write: Callable[[bytes], Path], name: str) -> None:
    err = invalid(write(zip_bytes({"a.nuspec": nuspec(), name: b"x"})), "has an unsafe path$")
    assert str(err) == f"Entry {name!r} has an unsafe path"


def test_nul_in_entry_name(write: Callable[[bytes], Path]) -> None:
    data = zip_bytes({"a.nuspec": nuspec(), "lib/xAy.dll": b"x"}).replace(b"xAy", b"x\0y")
    invalid(write(data), r"^Entry 'lib/x\\x00y.dll' has an unsafe path$")


def test_dotted_names_that_are_safe(write: Callable[[bytes], Path]) -> None:
    data = zip_bytes(
        {
            "a.nuspec": nuspec(),
            "lib/..a/b..": b"x",
            "./c": b"x",
            "...": b"x",
            "lib/100%.txt": b"x",
            "%2e": b"x",
        }
    )
    assert read_package(write(data)).id == "Contoso.Utils"


def test_encrypted_entry(write: Callable[[bytes], Path]) -> None:
    data = forge(zip_bytes({"a.nuspec": nuspec(), "lib/a.dll": b"MZ"}), "lib/a.dll", flags=0x1)
    invalid(write(data), "^Entry 'lib/a.dll' is encrypted")
    nuspec_encrypted = forge(zip_bytes({"a.nuspec": nuspec()}), "a.nuspec", flags=0x1)
    invalid(write(nuspec_encrypted), "^Entry 'a.nuspec' is encrypted")


def test_unsupported_compression_of_nuspec(write: Callable[[bytes], Path]) -> None:
    invalid(write(zip_bytes({"a.nuspec": nuspec()}, zipfile.ZIP_BZIP2)), "unsupported compression method")


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_entries_nuget_cannot_inflate_are_refused(tmp_path: Path, method: int) -> None:
    path = tmp_path / "mixed.nupkg"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.nuspec", nuspec(), compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("lib/a.dll", b"MZ" * 1000, compress_type=method)
    expected = rf"^Entry 'lib/a.dll' uses an unsupported compression method \({method}\): NuGet clients read"
    invalid(path, expected)


@pytest.mark.parametrize(("crc", "cause"), [(False, "invalid block type"), (True, "Bad CRC-32")])
def test_a_corrupt_entry_is_found_by_reading_the_contents(
    write: Callable[[bytes], Path], crc: bool, cause: str
) -> None:
    data = zip_bytes({"a.nuspec": nuspec(), "lib/a.dll": bytes(range(256)) * 64, "lib/b.dll": b"MZ"})
    path = write(spoil(data, "lib/a.dll", crc=crc))
    assert read_package(path).id == "Contoso.Utils"  # the headers and the nuspec are fine
    with pytest.raises(InvalidPackage, match=rf"^Entry 'lib/a.dll' is corrupt \(.*{cause}"):
        list(read_contents(path, 1 << 30))
    # Past the budget, nothing is inflated, so nothing is found either.
    assert [(i.filename, len(c)) for i, c in read_contents(path, 0)] == [
        (n, 0) for n in ("a.nuspec", "lib/a.dll", "lib/b.dll")
    ]


def test_read_contents_gives_every_entry_and_its_bytes_within_the_budget(
    write: Callable[[bytes], Path],
) -> None:
    big = os.urandom(CONTENT_CHUNK + 10)
    path = write(
        zip_bytes({"a.nuspec": nuspec(), "lib/": b"", "lib/big.bin": big, "lib/small.txt": b"small"})
    )
    read: dict[str, bytes] = {}
    for info, chunk in read_contents(path, 1 << 30):
        read[info.filename] = read.get(info.filename, b"") + chunk
    assert read == {"a.nuspec": nuspec(), "lib/": b"", "lib/big.bin": big, "lib/small.txt": b"small"}
    chunks = [(i.filename, len(c)) for i, c in read_contents(path, len(nuspec()) + CONTENT_CHUNK)]
    assert chunks == [
        ("a.nuspec", 0),
        ("a.nuspec", len(nuspec())),
        ("lib/", 0),
        ("lib/big.bin", 0),
        ("lib/big.bin", CONTENT_CHUNK),
        ("lib/small.txt", 0),
    ]


def test_too_many_entries(write: Callable[[bytes], Path]) -> None:
    entries = [("a.nuspec", nuspec())] + [(f"lib/{i}.dll", b"") for i in range(5)]
    limits = ReadLimits(max_entries=6)
    assert read_package(write(zip_bytes(entries)), limits).id == "Contoso.Utils"
    entries.append(("lib/last.dll", b""))
    data = zip_bytes(entries)
    invalid(write(data), r"^The package has too many entries \(more than 6\)$", limits)
    # The end record's entry count is not trusted, with or without zip64 records.
    lying = data[:-14] + struct.pack("<2H", 1, 1) + data[-10:]
    invalid(write(lying), "too many entries", limits)
    invalid(write(with_zip64_end(data, count=1)), "too many entries", limits)


def test_many_tiny_entries_are_refused_before_being_loaded(write: Callable[[bytes], Path]) -> None:
    data = zip_bytes([("a.nuspec", nuspec())] + [(f"{i:x}", b"") for i in range(60_000)], zipfile.ZIP_STORED)
    path = write(data)
    tracemalloc.start()
    try:
        invalid(path, "too many entries", ReadLimits(max_entries=100))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * MIB


# --- zip bombs -------------------------------------------------------------------------------------


def zeros_entry(path: Path, name: str, size: int, *, nuspec_name: str | None = "a.nuspec") -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if nuspec_name:
            zf.writestr(nuspec_name, nuspec())
        with zf.open(name, "w", force_zip64=True) as out:
            chunk = b"\0" * MIB
            for _ in range(size // MIB):
                out.write(chunk)


def rejects_cheaply(path: Path, match: str, limits: ReadLimits | None = None) -> None:
    start = time.monotonic()
    tracemalloc.start()
    try:
        invalid(path, match, limits)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - start < 5
    assert peak < 8 * MIB


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.nupkg"
    zeros_entry(path, "lib/zeros.bin", 100 * MIB)
    assert path.stat().st_size < MIB
    return path


def test_high_ratio_entry_is_refused(bomb: Path) -> None:
    rejects_cheaply(bomb, "^Entry 'lib/zeros.bin' has a suspicious compression ratio")


def test_total_uncompressed_size_is_bounded(bomb: Path) -> None:
    limits = ReadLimits(max_ratio=1 << 40, max_total_uncompressed=50 * MIB)
    rejects_cheaply(bomb, "^The package is too large when uncompressed", limits)
    assert read_package(bomb, ReadLimits(max_ratio=1 << 40)).id == "Contoso.Utils"


def test_forged_huge_sizes_are_refused(write: Callable[[bytes], Path]) -> None:
    data = zip_bytes({"a.nuspec": nuspec(), "lib/a.dll": b"MZ", "lib/b.dll": b"MZ"})
    one = forge(data, "lib/a.dll", file_size=0xFFFFFFFF)
    invalid(write(one), "^Entry 'lib/a.dll' has a suspicious compression ratio")
    both = forge(one, "lib/b.dll", file_size=0xFFFFFFFF)
    invalid(write(both), "^The package is too large when uncompressed", ReadLimits(max_ratio=1 << 40))
    huge_nuspec = forge(data, "a.nuspec", file_size=0xF0000000)
    invalid(write(huge_nuspec), r"^The nuspec is larger than 1048576 bytes$", ReadLimits(max_ratio=1 << 40))


def test_nuspec_bomb_is_read_in_a_bounded_way(tmp_path: Path) -> None:
    path = tmp_path / "nuspec-bomb.nupkg"
    zeros_entry(path, "a.nuspec", 100 * MIB, nuspec_name=None)
    no_ratio = ReadLimits(max_ratio=1 << 40)
    rejects_cheaply(path, "^The nuspec is larger than 1048576 bytes$", no_ratio)
    # Declaring a small size does not make the reader inflate the rest: the entry just fails its CRC.
    lying = tmp_path / "lying.nupkg"
    lying.write_bytes(forge(path.read_bytes(), "a.nuspec", file_size=1000))
    rejects_cheaply(lying, "^The file is not a valid zip archive", no_ratio)


def test_large_nuspec(write: Callable[[bytes], Path]) -> None:
    path = write(zip_bytes({"a.nuspec": nuspec(description="x" * MIB)}, zipfile.ZIP_STORED))
    invalid(path, r"^The nuspec is larger than 1048576 bytes$")
    assert read_package(path, ReadLimits(max_nuspec_bytes=2 * MIB)).description == "x" * MIB


# --- nuspec XML ------------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE package [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<package><metadata><id>A</id><version>1.0.0</version><authors>a</authors>
<description>&lol9;</description></metadata></package>"""


@pytest.mark.parametrize(
    "spec",
    [
        b"<!DOCTYPE package>" + nuspec().split(b"\n", 1)[1],
        b'<!DOCTYPE package SYSTEM "http://example.com/nuspec.dtd">' + nuspec().split(b"\n", 1)[1],
        nuspec(description="&xxe;").replace(
            b"\n", b'\n<!DOCTYPE package [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n', 1
        ),
        nuspec(description="%p;").replace(
            b"\n", b'\n<!DOCTYPE package [<!ENTITY % p SYSTEM "http://example.com/x">%p;]>\n', 1
        ),
        BILLION_LAUGHS,
    ],
    ids=["doctype", "external-dtd", "external-entity", "parameter-entity", "billion-laughs"],
)
def test_dtd_is_refused(package: Callable[..., Path], spec: bytes) -> None:
    start = time.monotonic()
    err = invalid(package(spec), "DTD")
    assert str(err) == "The nuspec contains a DTD, which is not allowed"
    assert time.monotonic() - start < 1


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (b"", "^The nuspec is not well-formed XML: no element found"),
        (b"<package><metadata>", "^The nuspec is not well-formed XML"),
        (nuspec(description="&undefined;"), "^The nuspec is not well-formed XML: undefined entity"),
        (nuspec(description="a < b"), "^The nuspec is not well-formed XML"),
        (
            nuspec().replace(b"Utilities.", b"Utilit\xe9s."),
            r"^The nuspec is not valid UTF-8 \(bad byte at offset",
        ),
        (nuspec().replace(b"Utilities.", b"\xc3\x28"), "not valid UTF-8"),
        (nuspec().replace(b"utf-8", b"bogus-8"), "^The nuspec's encoding is not supported"),
        (nuspec().replace(b"utf-8", b"shift_jis"), "^The nuspec's encoding is not supported"),
        (b"<nuspec/>", r"^The nuspec's root element is <nuspec>, not <package>$"),
        (f'<package xmlns="{NS}"/>'.encode(), "exactly one <metadata> element"),
        (nuspec().replace(b"</package>", b"<metadata/></package>"), "exactly one <metadata> element"),
    ],
)
def test_bad_xml(package: Callable[..., Path], spec: bytes, match: str) -> None:
    invalid(package(spec), match)


def test_deeply_nested_xml_is_handled(package: Callable[..., Path]) -> None:
    deep = "<x>" + "<a>" * 100_000 + "</a>" * 100_000 + "</x>"
    assert read_package(package(extra=deep)).id == "Contoso.Utils"
    invalid(package(description="<a>" * 1000 + "</a>" * 1000), "<description> element must contain only text")


# --- metadata rules --------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["id", "version", "authors", "description"])
def test_required_fields(package: Callable[..., Path], field: str) -> None:
    invalid(package(**{field: None}), f"^The nuspec is missing the required <{field}> element$")
    invalid(package(**{field: "  \n "}), f"^The nuspec's <{field}> element is empty$")


def test_authors_must_name_someone(package: Callable[..., Path]) -> None:
    invalid(package(authors=" , ,"), "lists no author")


def test_duplicate_elements(package: Callable[..., Path]) -> None:
    invalid(package(extra="<id>Other</id>"), "^The nuspec has more than one <id> element$")
    invalid(package(extra="<license type='expression'>MIT</license>" * 2), "more than one <license>")


@pytest.mark.parametrize("package_id", ["a", "A_b.c-d9", "_", "1", "a" * 100, "Contoso.Utils.Extra-2"])
def test_valid_ids(package_id: str) -> None:
    validate_id(package_id)


@pytest.mark.parametrize(
    ("package_id", "match"),
    [
        ("", "^The package id is empty$"),
        ("..", "^Invalid package id '..': only ASCII letters"),
        ("a b", "^Invalid package id 'a b': only ASCII"),
        ("a" * 101, "is longer than 100 characters$"),
        ("\u0421\u043entoso", r"non-ASCII character '\u0421' \(U\+0421\)"),
        ("Contoso\u00a0Utils", r"U\+00A0"),
        ("a..b", "only ASCII"),
        (".a", "only ASCII"),
        ("a.", "only ASCII"),
        ("-a", "only ASCII"),
        ("a-.b", "only ASCII"),
        ("a\n", "only ASCII"),
        ("a/b", "only ASCII"),
        ("a$b", "only ASCII"),
    ],
)
def test_invalid_ids(package: Callable[..., Path], package_id: str, match: str) -> None:
    with pytest.raises(InvalidPackage, match=match):
        validate_id(package_id)
    if package_id and package_id.strip() == package_id:  # the nuspec's text is trimmed
        invalid(package(id=package_id), match)


@pytest.mark.parametrize(
    "version", ["1.0.0-01", "1.0.0.0.0", "abc", "1.0.0-", "1.0.0+", "1.0.0-beta_1", "-1.0"]
)
def test_invalid_versions(package: Callable[..., Path], version: str) -> None:
    err = invalid(package(version=version), "^Invalid package version: ")
    assert repr(version) in str(err)


@pytest.mark.parametrize("version", ["1.0.0-1", "1.0.0-0a", "2.0-9beta", "1.0.0--x"])
def test_a_semver1_prerelease_label_starts_with_a_letter(package: Callable[..., Path], version: str) -> None:
    invalid(
        package(version=version),
        r"^Invalid package version '[^']+': the prerelease label of a SemVer 1.0.0 version must start",
    )


@pytest.mark.parametrize("version", ["1.0.0-a1", "1.0.0-RC-1", "1.0.0-1.2", "1.0.0-1+build", "1.0.0+meta"])
def test_labels_nuget_org_accepts(package: Callable[..., Path], version: str) -> None:
    assert read_package(package(version=version)).version.full == version


def test_leading_zero_prerelease_message(package: Callable[..., Path]) -> None:
    err = invalid(package(version="1.0.0-01"), "leading zero")
    assert str(err).startswith("Invalid package version: '1.0.0-01' is not a valid version")


@pytest.mark.parametrize(
    "dependency",
    [
        '<dependency id="A" version="[1.0"/>',
        '<dependency id="A" version="(1.0)"/>',
        '<dependency id="A" version="[2.0, 1.0]"/>',
        '<dependency id="A" version="abc"/>',
        '<dependency id="A" version="[1.0.0-01, )"/>',
        '<dependency id="A" version="1.*"/>',
    ],
)
def test_invalid_dependency_ranges(package: Callable[..., Path], dependency: str) -> None:
    extra = f"<dependencies><group>{dependency}</group></dependencies>"
    invalid(package(extra=extra), "^Invalid version range for dependency 'A': ")


def test_invalid_dependencies(package: Callable[..., Path]) -> None:
    def deps(inner: str) -> Path:
        return package(extra=f"<dependencies>{inner}</dependencies>")

    invalid(deps('<dependency id="bad id" version="1.0"/>'), "^Invalid package id 'bad id'")
    invalid(deps('<group><dependency id=".." /></group>'), "^Invalid package id '..'")
    invalid(deps('<dependency version="1.0"/>'), "^A <dependency> element has no id$")
    invalid(deps('<dependency id="A"/><group/>'), "mixes <group> and <dependency> elements")


def test_min_client_version(package: Callable[..., Path]) -> None:
    invalid(package(metadata_attrs=' minClientVersion="x.y"'), "^Invalid minClientVersion: 'x.y'")


@pytest.mark.parametrize("field", ["requireLicenseAcceptance", "developmentDependency"])
def test_boolean_fields(package: Callable[..., Path], field: str) -> None:
    assert not read_package(package(extra=f"<{field}> FALSE </{field}>")).require_license_acceptance
    invalid(
        package(extra=f"<{field}>1</{field}>"), f"^Invalid <{field}> value '1': expected 'true' or 'false'$"
    )


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "ftp://example.com/x", "/relative", "http://", "http://[::1"]
)
@pytest.mark.parametrize("field", ["projectUrl", "iconUrl", "licenseUrl"])
def test_urls_must_be_http(package: Callable[..., Path], field: str, url: str) -> None:
    invalid(
        package(extra=f"<{field}>{url}</{field}>"),
        f"^Invalid <{field}> .*: not an absolute http or https URL$",
    )


def test_license_file(package: Callable[..., Path]) -> None:
    lic = '<license type="file">docs\\LICENSE.txt</license>'
    meta = read_package(package(extra=lic, files={"docs/license.TXT": b"MIT"}))
    assert (meta.license_file, meta.license_expression) == ("docs\\LICENSE.txt", None)
    assert (
        read_entry(package(extra=lic, files={"docs/license.TXT": b"MIT"}), meta.license_file or "", 10)
        == b"MIT"
    )
    invalid(package(extra=lic), r"^The package has no license file 'docs\\\\LICENSE.txt'$")
    invalid(
        package(extra='<license type="file">../LICENSE</license>'),
        "^The license file path '../LICENSE' is unsafe$",
    )
    invalid(package(extra='<license type="url">x</license>'), "^Unsupported license type 'url'")
    invalid(package(extra='<license type="expression"> </license>'), "<license> element is empty")


def test_icon_and_readme_must_exist(package: Callable[..., Path]) -> None:
    invalid(package(extra="<icon>icon.png</icon>"), "^The package has no icon file 'icon.png'$")
    invalid(package(extra="<readme>README.md</readme>"), "^The package has no readme file 'README.md'$")
    invalid(package(extra="<icon>/etc/passwd</icon>"), "^The icon file path '/etc/passwd' is unsafe$")


def test_package_types(package: Callable[..., Path]) -> None:
    meta = read_package(package(extra="<packageTypes/>"))
    assert meta.package_types == (PackageType("Dependency", None),)
    invalid(
        package(extra="<packageTypes><packageType/></packageTypes>"), "^A <packageType> element has no name$"
    )


# --- read_entry ------------------------------------------------------------------------------------


def test_read_entry(write: Callable[[bytes], Path]) -> None:
    path = write(zip_bytes({"a.nuspec": nuspec(), "docs\\Read Me.md": b"hello", "lib/A.dll": b"MZ" * 100}))
    assert read_entry(path, "docs/read me.MD", 5) == b"hello"
    assert read_entry(path, "lib\\a.dll", 200) == b"MZ" * 100
    with pytest.raises(InvalidPackage, match=r"^Entry 'lib/A.dll' is larger than 199 bytes$"):
        read_entry(path, "lib/a.dll", 199)
    with pytest.raises(InvalidPackage, match=r"^The package has no entry 'missing\.txt'$"):
        read_entry(path, "missing.txt", 10)
    with pytest.raises(InvalidPackage, match=r"^The package has no entry 'lib/'$"):
        read_entry(path, "lib/", 10)


def test_read_entry_prefers_exact_match(write: Callable[[bytes], Path]) -> None:
    path = write(zip_bytes({"README.md": b"upper", "readme.md": b"lower"}))
    assert read_entry(path, "README.md", 10) == b"upper"
    assert read_entry(path, "readme.md", 10) == b"lower"
    with pytest.raises(InvalidPackage, match=r"more than one entry matching 'ReadMe\.md'"):
        read_entry(path, "ReadMe.md", 10)


def test_read_entry_is_bounded(bomb: Path, write: Callable[[bytes], Path]) -> None:
    with pytest.raises(InvalidPackage, match="is larger than"):
        read_entry(bomb, "lib/zeros.bin", MIB)
    with pytest.raises(InvalidPackage, match="not a valid zip archive"):
        read_entry(write(b"junk"), "a", 10)
