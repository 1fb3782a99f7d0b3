"""The bad-package corpus, pushed over HTTP to a real server: each refused with a precise message, nothing
stored (no row, no blob, no document, no temp file). The reader's own rules are unit-tested in
``tests/unit/test_nuspec.py``; here each case proves the whole push path refuses it cleanly.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from hostile.harness import Feed, assert_refusal
from support.server import NugatServer, user_key
from support.zips import (
    MIB,
    central_records,
    forge,
    nuspec,
    package,
    record_bomb,
    spoil,
    zeros_bomb,
    zip_bytes,
)

DTD = '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE package [{}]>\n'
LAUGHS = "".join(
    f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i else "lol"}">' for i in range(10)
)  # 10^9 "lol"s once expanded


@functools.cache
def gigabyte_bomb() -> bytes:
    """1 MiB on the wire, 1 GiB of zeros once inflated (the bomb that took 5 GB of memory elsewhere)."""
    return zeros_bomb("lib/zeros.bin", 1024 * MIB, nuspec("Bomb.Pkg"))


def declared_total_bomb() -> bytes:
    """4100 tiny entries, each declaring 1 MiB: no ratio alarm per entry, but over 4 GiB in all."""
    data = bytearray(zip_bytes([("a.nuspec", nuspec("Bomb.Total"))] + [(f"f/{i}", b"") for i in range(4100)]))
    for pos, name in list(central_records(data)):
        if name != "a.nuspec":
            struct.pack_into("<L", data, pos + 24, MIB)
    return bytes(data)


def without(field: str) -> bytes:
    """A package whose nuspec lacks the required ``field``."""
    values: dict[str, str | None] = {
        "id": "Missing.Pkg",
        "version": "1.0.0",
        "authors": "A",
        "description": "D",
    }
    values[field] = None
    spec = nuspec(
        values["id"], values["version"], authors=values["authors"], description=values["description"]
    )
    return package("Missing.Pkg", spec=spec)


def with_dependency(version_range: str, dep_id: str = "Other.Pkg") -> bytes:
    deps = f'<dependencies><dependency id="{dep_id}" version="{version_range}" /></dependencies>'
    return package("Deps.Pkg", extra=deps)


Case = tuple[str, Callable[[], bytes], str]
CASES: list[Case] = [
    # The container.
    ("not a zip", lambda: b"This is not a zip file at all\n" * 10, r"^The file is not a valid zip archive"),
    ("empty body of a zip", lambda: zip_bytes({}), r"^The package has no \.nuspec file at its root"),
    ("truncated zip", lambda: package("Trunc.Pkg")[:300], r"^The file is not a valid zip archive"),
    (
        "no nuspec",
        lambda: zip_bytes({"content/a.txt": b"x"}),
        r"^The package has no \.nuspec file at its root",
    ),
    (
        "two nuspecs",
        lambda: zip_bytes({"a.nuspec": nuspec(), "b.nuspec": nuspec()}),
        r"^The package has more than one \.nuspec file at its root: 'a\.nuspec', 'b\.nuspec'",
    ),
    (
        "nested nuspec only",
        lambda: zip_bytes({"lib/Contoso.Utils.nuspec": nuspec()}),
        r"^The package has no \.nuspec file at its root",
    ),
    # Zip-slip entry names: refused, and never extracted anywhere.
    *(
        (
            f"zip-slip {name!r}",
            functools.partial(package, "Slip.Pkg", files={name: b"pwned"}),
            r"^Entry '.*evil.*' has an unsafe path$",
        )
        for name in (
            "../evil.txt",
            "content/../../evil.txt",
            "/tmp/evil.txt",
            "..\\evil.txt",
            "content\\..\\..\\evil.txt",
            "\\\\server\\share\\evil.txt",
            "C:/evil.txt",
            "C:\\evil.txt",
            "c:evil.txt",
            "%2e%2e/%2e%2e/evil.txt",  # NuGet clients percent-decode names before extracting
            "..%2f..%2fevil.txt",
            "lib/..%5c..%5cevil.txt",
        )
    ),
    # Zip bombs: refused from the headers, before anything is inflated.
    ("1 GiB zip bomb", gigabyte_bomb, r"^Entry 'lib/zeros\.bin' has a suspicious compression ratio"),
    (
        "entry declaring 4 GiB",
        lambda: forge(package("Bomb.Declared"), "content/payload.txt", file_size=0xFFFFFFFF),
        r"^Entry 'content/payload\.txt' has a suspicious compression ratio",
    ),
    (
        "entries declaring over 4 GiB in all",
        declared_total_bomb,
        r"^The package is too large when uncompressed \(more than 4294967296 bytes\)",
    ),
    (
        "40,000 directory records of one entry",
        lambda: record_bomb(40_000, nuspec("Bomb.Records")),
        r"^The package has too many entries \(more than 10000\)",
    ),
    (
        "too many entries",
        lambda: zip_bytes([("a.nuspec", nuspec())] + [(f"f/{i}", b"") for i in range(10_001)]),
        r"^The package has too many entries \(more than 10000\)",
    ),
    # Entries NuGet clients could not extract: found by reading every entry, only once the headers passed.
    (
        "corrupt entry",
        lambda: spoil(package("Corrupt.Pkg", files={"lib/a.dll": bytes(range(256)) * 64}), "lib/a.dll"),
        r"^Entry 'lib/a\.dll' is corrupt \(Error -3 while decompressing data",
    ),
    (
        "entry failing its CRC",
        lambda: spoil(package("Crc.Pkg"), "content/payload.txt", crc=True),
        r"^Entry 'content/payload\.txt' is corrupt \(Bad CRC-32",
    ),
    (
        "bzip2 entries",
        lambda: zip_bytes({"a.nuspec": nuspec("Bzip.Pkg"), "lib/a.dll": b"MZ"}, zipfile.ZIP_BZIP2),
        r"^Entry 'a\.nuspec' uses an unsupported compression method \(12\): NuGet clients read only",
    ),
    (
        "encrypted entry",
        lambda: forge(package("Crypt.Pkg"), "content/payload.txt", flags=0x1),
        r"^Entry 'content/payload\.txt' is encrypted, which is not allowed",
    ),
    # The nuspec's XML.
    (
        "nuspec with a DTD",
        lambda: package("Dtd.Pkg", prolog=DTD.format("<!ELEMENT package ANY>")),
        r"^The nuspec contains a DTD, which is not allowed",
    ),
    (
        "XXE: external entity",
        lambda: package(
            "Xxe.Pkg",
            description="&xxe;",
            prolog=DTD.format('<!ENTITY xxe SYSTEM "file:///etc/passwd">'),
        ).replace(b"&amp;xxe;", b"&xxe;"),
        r"^The nuspec contains a DTD, which is not allowed",
    ),
    (
        "XXE: external DTD",
        lambda: package(
            "Xxe.Dtd",
            prolog='<?xml version="1.0"?>\n<!DOCTYPE package SYSTEM "http://127.0.0.1:9/evil.dtd">\n',
        ),
        r"^The nuspec contains a DTD, which is not allowed",
    ),
    (
        "billion laughs",
        lambda: package("Laughs.Pkg", description="&lol9;", prolog=DTD.format(LAUGHS)).replace(
            b"&amp;lol9;", b"&lol9;"
        ),
        r"^The nuspec contains a DTD, which is not allowed",
    ),
    (
        "nuspec not UTF-8",
        lambda: package(
            "Latin.Pkg", spec=nuspec("Latin.Pkg", description="caf\xe9").replace(b"\xc3\xa9", b"\xe9")
        ),
        r"^The nuspec is not valid UTF-8 \(bad byte at offset \d+\)",
    ),
    (
        "nuspec with an invalid XML character",
        lambda: package("Ctrl.Pkg", spec=nuspec("Ctrl.Pkg", description="bell").replace(b"bell", b"\x07")),
        r"^The nuspec is not well-formed XML: not well-formed \(invalid token\)",
    ),
    (
        "nuspec that is not XML",
        lambda: package("Text.Pkg", spec=b"id=Text.Pkg\nversion=1.0.0\n"),
        r"^The nuspec is not well-formed XML: not well-formed \(invalid token\): line 1, column 2",
    ),
    # Required metadata.
    *(
        (
            f"missing <{field}>",
            functools.partial(without, field),
            rf"^The nuspec is missing the required <{field}> element$",
        )
        for field in ("id", "version", "authors", "description")
    ),
    # Ids.
    (
        "id '..'",
        lambda: package("..", nuspec_name="a.nuspec"),
        r"^Invalid package id '\.\.': only ASCII letters",
    ),
    (
        "id '../../evil'",
        lambda: package("../../evil", nuspec_name="a.nuspec"),
        r"^Invalid package id '\.\./\.\./evil': only ASCII letters",
    ),
    ("id with a slash", lambda: package("a/b", nuspec_name="a.nuspec"), r"^Invalid package id 'a/b'"),
    ("id with a backslash", lambda: package("a\\b", nuspec_name="a.nuspec"), r"^Invalid package id 'a\\\\b'"),
    (
        "id of 101 characters",
        lambda: package("A" * 101),
        r"^Invalid package id 'A{101}': it is longer than 100 characters",
    ),
    (
        "id with spaces",
        lambda: package("My Package", nuspec_name="a.nuspec"),
        r"^Invalid package id 'My Package'",
    ),
    (
        "id with a Cyrillic look-alike",
        lambda: package("C\u043entoso.Utils", nuspec_name="a.nuspec"),
        r"^Invalid package id '.*': it contains the non-ASCII character '[^']+' \(U\+043E\)",
    ),
    (
        "id in fullwidth letters",
        lambda: package("\uff23ontoso.Utils", nuspec_name="a.nuspec"),
        r"^Invalid package id '.*': it contains the non-ASCII character '[^']+' \(U\+FF23\)",
    ),
    # Versions.
    (
        "version with five parts",
        lambda: package("Ver.Pkg", "1.0.0.0.0"),
        r"^Invalid package version: '1\.0\.0\.0\.0' is not a valid version: it has 5 numeric parts",
    ),
    ("version that is a word", lambda: package("Ver.Pkg", "latest"), r"^Invalid package version: 'latest'"),
    (
        "prerelease number with a leading zero",
        lambda: package("Ver.Pkg", "1.0.0-01"),
        r"^Invalid package version: .*numeric prerelease label '01' has a leading zero",
    ),
    (
        "SemVer 1.0.0 prerelease label starting with a digit",
        lambda: package("Ver.Pkg", "1.0.0-1"),
        r"^Invalid package version '1\.0\.0-1': the prerelease label of a SemVer 1\.0\.0 version must start",
    ),
    (
        "version longer than 64 characters",
        lambda: package("Ver.Pkg", "1.0.0-" + "a" * 60),
        r"^Invalid package version '1\.0\.0-a{60}': it is longer than 64 characters$",
    ),
    (
        "version part over int32",
        lambda: package("Ver.Pkg", "2147483648.0.0"),
        r"^Invalid package version: .*is larger than 2147483647",
    ),
    # Dependencies.
    (
        "unclosed dependency range",
        lambda: with_dependency("[1.0"),
        r"^Invalid version range for dependency 'Other\.Pkg': .*must end with '\]' or '\)'",
    ),
    (
        "empty dependency range",
        lambda: with_dependency("(2.0, 1.0)"),
        r"^Invalid version range for dependency 'Other\.Pkg': .*minimum version is greater",
    ),
    (
        "dependency id '..'",
        lambda: with_dependency("1.0", dep_id=".."),
        r"^Invalid package id '\.\.'",
    ),
    # Files the nuspec points at.
    (
        "readme outside the package",
        lambda: package("Readme.Pkg", extra="<readme>../../../etc/passwd</readme>"),
        r"^The readme file path '\.\./\.\./\.\./etc/passwd' is unsafe",
    ),
    (
        "license file that is not there",
        lambda: package("License.Pkg", extra='<license type="file">LICENSE.txt</license>'),
        r"^The package has no license file 'LICENSE\.txt'",
    ),
]


def worker_peak_rss(server: NugatServer) -> int:
    """Peak resident memory (kB) of the server's processes, from /proc (VmHWM)."""
    assert server.process is not None
    pids = {server.process.pid}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server.process.pid:
            pids.add(int(stat.parent.name))
    peaks = []
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]))
    return max(peaks)


@pytest.mark.parametrize(("name", "body", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_package_is_refused_and_nothing_is_stored(
    feed: Feed, name: str, body: Callable[[], bytes], message: str
) -> None:
    data = body()
    assert len(data) < 2 * MIB, f"{name}: {len(data)} bytes, over the server's limit"
    before = feed.snapshot()
    resp = feed.push(data)
    assert_refusal(resp, 400, message)
    assert "root:x:0:0" not in resp.text  # nothing of /etc/passwd, whatever the case
    feed.assert_nothing_stored(before)


def test_zip_bomb_is_refused_without_inflating_it(feed: Feed) -> None:
    bomb = gigabyte_bomb()
    peak_before = worker_peak_rss(feed.server)
    start = time.monotonic()
    for as_raw_body in (False, True):
        resp = feed.push(bomb, multipart=not as_raw_body)
        assert_refusal(resp, 400, "suspicious compression ratio")
    assert time.monotonic() - start < 5
    grown_kb = worker_peak_rss(feed.server) - peak_before
    assert grown_kb < 64 * 1024, f"the server's peak memory grew by {grown_kb} kB"


def test_same_version_written_differently_is_a_duplicate(feed: Feed) -> None:
    first = package("Dup.Pkg", "1.0.0")
    assert feed.push(first).status_code == 201
    stored = feed.server.data_dir / "storage/v3/flatcontainer/dup.pkg/1.0.0/dup.pkg.1.0.0.nupkg"
    digest = hashlib.sha256(stored.read_bytes()).hexdigest()
    before = feed.snapshot()
    for package_id, version in [
        ("Dup.Pkg", "1.0"),
        ("Dup.Pkg", "1.0.0.0"),
        ("Dup.Pkg", "01.00.000"),
        ("Dup.Pkg", "1.0.0+build.7"),
        ("DUP.PKG", "1.0.0"),
        ("dup.pkg", "1"),
    ]:
        resp = feed.push(package(package_id, version, payload=b"different bytes"))
        assert_refusal(resp, 409, r"^Dup\.Pkg 1\.0\.0 already exists and cannot be modified$")
    feed.assert_nothing_stored(before)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest
    assert feed.versions("Dup.Pkg") == ["1.0.0"]


def test_lookalike_of_another_owners_id_is_refused(feed: Feed) -> None:
    assert feed.push(package("Lookalike.Json")).status_code == 201
    mallory = user_key(feed.server, "mallory", ["push"])
    before = feed.snapshot()
    for squat in (
        "Lookalike-Json",
        "LookalikeJson",
        "Lookalike_Json",
        "L00kalike.Json",
        "Lookalike.J5on",
        "LOOKALlKE.JSON",
    ):
        resp = feed.push(package(squat), key=mallory)
        assert_refusal(
            resp,
            409,
            rf"^The package id {squat} is too similar to the existing package Lookalike\.Json: choose",
        )
    feed.assert_nothing_stored(before)
    # Not a look-alike: a different word.
    assert feed.push(package("Lookalike.Yaml"), key=mallory).status_code == 201
    # The owner of an id may publish ids that look like it (as nuget.org allows).
    assert feed.push(package("Lookalike-Json")).status_code == 201


def test_concurrent_pushes_of_one_version_store_it_once(feed: Feed) -> None:
    body = package("Race.Pkg", "3.1.4")
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def push() -> None:
        barrier.wait(timeout=30)
        statuses.append(feed.push(body).status_code)

    threads = [threading.Thread(target=push) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(statuses) == [201] + [409] * 7
    assert feed.versions("Race.Pkg") == ["3.1.4"]
    folder = feed.server.data_dir / "storage/v3/flatcontainer/race.pkg"
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == [
        "index.json",
        "race.pkg.3.1.4.nupkg",
        "race.pkg.nuspec",
    ]
    assert feed.temp_files() == []
    assert feed.rows("SELECT count(*) FROM pending_uploads") == [(0,)]


def test_pathological_key_glob_does_not_stall_a_push(feed: Feed) -> None:
    """A glob like ``*a*a*…*X`` took a regex matcher hours against a long id (backtracking)."""
    glob = "*A" * 40 + "*X"
    key = user_key(feed.server, "globber", ["push"], globs=[glob])
    start = time.monotonic()
    resp = feed.push(package("A" * 99), key=key)
    assert time.monotonic() - start < 5
    assert_refusal(resp, 403, r"does not allow pushing A{99}: it matches no package or glob$")
    assert feed.push(package("A" * 40 + "X"), key=key).status_code == 201
