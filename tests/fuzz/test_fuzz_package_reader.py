"""Bounded fuzzing of the .nupkg/.nuspec reader: whatever the bytes, ``read_package`` and ``read_entry``
either return or raise ``InvalidPackage`` (the message a user reads) and nothing else.

Three generators: valid packages with random mutations (flipped, inserted, deleted, duplicated bytes,
truncation), structured zips of random entries and random nuspec XML, and random bytes behind a zip
signature. ``NUGAT_FUZZ_EXAMPLES`` sets the examples per generator (default 400; raise it for a long run).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nugat.nuspec import InvalidPackage, PackageMetadata, read_entry, read_package
from support.zips import nuspec, package, zip_bytes

EXAMPLES = int(os.environ.get("NUGAT_FUZZ_EXAMPLES", "400"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

RICH = package(
    "Fuzz.Rich",
    "1.2.3-beta.4+build.5",
    authors="Ann, Bob",
    description="A package with everything the reader looks at.",
    extra=(
        "<title>Rich</title><tags>a b, c</tags><projectUrl>https://example.test/p</projectUrl>"
        '<license type="file">LICENSE.txt</license><readme>docs/README.md</readme><icon>icon.png</icon>'
        '<requireLicenseAcceptance>true</requireLicenseAcceptance><repository type="git" url="https://x.test"/>'
        '<packageTypes><packageType name="Dependency"/></packageTypes><dependencies>'
        '<group targetFramework="net8.0"><dependency id="Dep.One" version="[1.0, 2.0)"/></group>'
        '<group><dependency id="Dep.Two" version="3.0.0-rc.1+meta"/></group></dependencies>'
    ),
    files={
        "LICENSE.txt": b"MIT",
        "docs/README.md": b"# Rich",
        "icon.png": b"\x89PNG\r\n",
        "lib/net8.0/a.dll": b"MZ",
    },
)


def read_both(data: bytes) -> None:
    """The property: each reader returns or raises InvalidPackage; anything else fails the test."""
    with tempfile.NamedTemporaryFile(suffix=".nupkg") as f:
        f.write(data)
        f.flush()
        path = Path(f.name)
        try:
            assert isinstance(read_package(path), PackageMetadata)
        except InvalidPackage as exc:
            assert str(exc)
        try:
            assert isinstance(read_entry(path, "LICENSE.txt", 1 << 20), bytes)
        except InvalidPackage as exc:
            assert str(exc)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(RICH)
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "duplicate", "truncate"]))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x01]))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "duplicate":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 256))]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


texts = st.text(st.characters(codec="utf-8"), max_size=40)
names = st.one_of(
    st.sampled_from(
        ["a.nuspec", "A.NUSPEC", "lib/x.nuspec", "../x", "/abs", "C:\\x", "dir/", "LICENSE.txt", "x\\y", ""]
    ),
    texts,
)
ids = st.one_of(st.sampled_from(["Fuzz.Pkg", "..", "a..b", "-x", "x" * 101, "C\u043entoso", ""]), texts)
versions = st.one_of(
    st.sampled_from(["1.0.0", "1.0", "1.0.0-01", "1.0.0-a.b+c", "2147483648.0", "1.2.3.4.5", "-1", ""]), texts
)
ranges = st.one_of(
    st.sampled_from(["[1.0]", "(1.0,", "[2.0,1.0]", "(,)", "1.0", "[1.0, 2.0)", "(1.0)"]), texts
)


@st.composite
def random_nuspec(draw: st.DrawFn) -> bytes:
    deps = "".join(
        f'<dependency id="{draw(ids)}" version="{draw(ranges)}"/>' for _ in range(draw(st.integers(0, 3)))
    )
    extra = draw(
        st.sampled_from(
            [
                "",
                f"<dependencies>{deps}</dependencies>",
                f"<dependencies><group>{deps}</group>{deps}</dependencies>",
                f'<license type="{draw(st.sampled_from(["file", "expression"]))}">{draw(names)}</license>',
                f"<readme>{draw(names)}</readme><icon>{draw(names)}</icon>",
                f"<projectUrl>{draw(texts)}</projectUrl><developmentDependency>{draw(texts)}</developmentDependency>",
                "<id>Second</id>",
                "<packageTypes><packageType/></packageTypes>",
            ]
        )
    )
    fields = {k: draw(st.one_of(st.none(), v)) for k, v in (("id", ids), ("version", versions))}
    spec = nuspec(fields["id"], fields["version"], authors=draw(texts), description=draw(texts), extra=extra)
    if draw(st.booleans()):  # raw text straight into the XML: stray '<', '&', control characters
        spec = spec.replace(b"</description>", draw(texts).encode("utf-8", "replace") + b"</description>")
    return draw(
        st.sampled_from([spec, spec.decode("utf-8", "replace").encode("utf-16"), b"\xef\xbb\xbf" + spec])
    )


@st.composite
def structured(draw: st.DrawFn) -> bytes:
    entries = draw(
        st.lists(
            st.tuples(names, st.one_of(random_nuspec(), st.binary(max_size=200))), min_size=0, max_size=5
        )
    )
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    try:
        return zip_bytes(entries, method)
    except (ValueError, UnicodeEncodeError):  # zipfile itself refuses some names: fuzz the rest
        return zip_bytes([(f"e{i}", data) for i, (_, data) in enumerate(entries)], method)


@FUZZ
@given(mutated())
def test_mutated_packages(data: bytes) -> None:
    read_both(data)


@pytest.mark.filterwarnings("ignore:Duplicate name")
@FUZZ
@given(structured())
def test_structured_zips(data: bytes) -> None:
    read_both(data)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_behind_a_zip_signature(tail: bytes) -> None:
    read_both(b"PK\x03\x04" + tail)
    read_both(b"PK\x05\x06" + tail)


def test_the_unmutated_base_is_valid() -> None:
    """The mutations start from a package the reader accepts in full, so they reach every rule."""
    with tempfile.NamedTemporaryFile(suffix=".nupkg") as f:
        f.write(RICH)
        f.flush()
        meta = read_package(Path(f.name))
    assert meta.id == "Fuzz.Rich" and meta.license_file == "LICENSE.txt" and len(meta.dependency_groups) == 2
