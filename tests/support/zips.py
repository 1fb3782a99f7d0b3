"""Hand-made .nupkg bytes for the hostile-input and fuzz tests: valid ones, and every way to be wrong.

``nuget pack`` refuses to make a broken package, so these are written with ``zipfile`` directly (and
forged byte by byte where even ``zipfile`` would refuse).
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
from collections.abc import Iterable, Mapping
from xml.sax.saxutils import escape

NUSPEC_NS = "http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"
MIB = 1 << 20

Entries = Mapping[str, bytes] | Iterable[tuple[str, bytes]]


def nuspec(
    package_id: str | None = "Contoso.Utils",
    version: str | None = "1.0.0",
    *,
    authors: str | None = "Jane Doe",
    description: str | None = "Utilities.",
    extra: str = "",
    prolog: str = '<?xml version="1.0" encoding="utf-8"?>\n',
) -> bytes:
    """A nuspec; a field given as None is left out. Values are XML-escaped, ``extra`` is not."""
    fields = {"id": package_id, "version": version, "authors": authors, "description": description}
    body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items() if v is not None)
    return f'{prolog}<package xmlns="{NUSPEC_NS}"><metadata>{body}{extra}</metadata></package>'.encode()


def zip_bytes(entries: Entries, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries.items() if isinstance(entries, Mapping) else entries:
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buf.getvalue()


def package(
    package_id: str = "Contoso.Utils",
    version: str = "1.0.0",
    *,
    spec: bytes | None = None,
    files: Entries = (),
    payload: bytes = b"hello\n",
    nuspec_name: str | None = None,
    **nuspec_fields: str,
) -> bytes:
    """A package: ``spec`` (or a nuspec of the other arguments) at the root, a payload and ``files``."""
    spec = spec if spec is not None else nuspec(package_id, version, **nuspec_fields)
    more = list(files.items() if isinstance(files, Mapping) else files)
    name = nuspec_name or f"{package_id}.nuspec"
    return zip_bytes([(name, spec), ("content/payload.txt", payload), *more])


def central_records(data: bytes | bytearray) -> Iterable[tuple[int, str]]:
    """(offset, name) of each central directory record."""
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        n = struct.unpack_from("<H", data, pos + 28)[0]
        yield pos, bytes(data[pos + 46 : pos + 46 + n]).decode("cp437")
        pos = data.find(b"PK\x01\x02", pos + 46 + n)


def forge(data: bytes, name: str, *, file_size: int | None = None, flags: int = 0) -> bytes:
    """Lie about entry ``name``: its size in the central directory, flags in both of its headers."""
    out = bytearray(data)
    found = False
    for pos, entry in list(central_records(out)):
        if entry != name:
            continue
        found = True
        local = struct.unpack_from("<L", out, pos + 42)[0]
        struct.pack_into("<H", out, local + 6, struct.unpack_from("<H", out, local + 6)[0] | flags)
        struct.pack_into("<H", out, pos + 8, struct.unpack_from("<H", out, pos + 8)[0] | flags)
        if file_size is not None:
            struct.pack_into("<L", out, pos + 24, file_size)
    assert found, f"no entry {name!r}"
    return bytes(out)


def spoil(data: bytes, name: str, *, crc: bool = False) -> bytes:
    """Entry ``name`` made unreadable: its compressed bytes overwritten (deflate then fails), or with
    ``crc`` its checksum in both headers (the bytes inflate, and do not match it)."""
    out = bytearray(data)
    [(pos, _)] = [(pos, entry) for pos, entry in central_records(out) if entry == name]
    local = struct.unpack_from("<L", out, pos + 42)[0]
    if crc:
        for at in (pos + 16, local + 14):
            struct.pack_into("<L", out, at, struct.unpack_from("<L", out, at)[0] ^ 0xFFFFFFFF)
        return bytes(out)
    start = local + 30 + sum(struct.unpack_from("<2H", out, local + 26))
    size = struct.unpack_from("<L", out, pos + 20)[0]
    out[start : start + size] = b"\xff" * size
    return bytes(out)


def record_bomb(records: int, spec: bytes) -> bytes:
    """A package of ``records`` central directory records (47 bytes each) all naming one empty entry:
    small on the wire, and as many entry objects as records to a reader that trusts the directory."""
    data = zip_bytes([("a.nuspec", spec), ("a", b"")])
    [(first, _), (pos, _)] = list(central_records(data))
    eocd = data.index(b"PK\x05\x06")
    record = data[pos:eocd]
    directory = data[first:pos] + record * (records - 1)
    end = bytearray(data[eocd:])
    struct.pack_into("<HHLL", end, 8, min(records, 0xFFFF), min(records, 0xFFFF), len(directory), first)
    return data[:first] + directory + bytes(end)


def zeros_bomb(name: str, size: int, spec: bytes) -> bytes:
    """A package whose entry ``name`` inflates to ``size`` zero bytes (deflate: about 1000:1)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.nuspec", spec)
        with zf.open(name, "w", force_zip64=True) as out:
            chunk = bytes(MIB)
            for _ in range(size // MIB):
                out.write(chunk)
    return buf.getvalue()


def incompressible(size: int, seed: int = 1) -> bytes:
    """``size`` bytes that deflate cannot shrink (so a package is really that big on the wire)."""
    return random.Random(seed).randbytes(size)
