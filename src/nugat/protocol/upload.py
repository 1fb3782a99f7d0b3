"""Receiving a pushed package: the request body streamed to a temp file, never held in memory.

nuget.exe sends ``multipart/form-data`` with the .nupkg as the first part, in chunked transfer
encoding (no Content-Length); other clients send the raw .nupkg. Either way the bytes go to a file in
the data folder's temp directory while the size limit is enforced as they arrive.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header

from nugat.services import ServiceError


class PayloadTooLarge(ServiceError):
    status = 413


class _FirstPartWriter:
    """Multipart callbacks that copy the first part's body to ``out`` and ignore the rest."""

    def __init__(self, out: object) -> None:
        self.out = out
        self.part = 0
        self.found = False

    def on_part_begin(self) -> None:
        self.part += 1

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part == 1:
            self.found = True
            self.out.write(data[start:end])  # type: ignore[attr-defined]


async def receive_package(
    chunks: AsyncIterator[bytes], content_type: str, content_length: str | None, tmp_dir: Path, limit: int
) -> Path:
    """Write the uploaded package to a temp file and return its path (the caller deletes it)."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise ServiceError("Invalid Content-Length header") from None
        if declared > limit + 64 * 1024:  # room for the multipart envelope
            raise PayloadTooLarge(f"The package is larger than the {limit // (1 << 20)} MB limit")
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-", suffix=".nupkg")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            media, params = parse_options_header(content_type.encode("latin-1", "replace"))
            if media == b"multipart/form-data":
                boundary = params.get(b"boundary")
                if not boundary:
                    raise ServiceError("The multipart body has no boundary")
                writer = _FirstPartWriter(out)
                parser = MultipartParser(
                    boundary,
                    {"on_part_begin": writer.on_part_begin, "on_part_data": writer.on_part_data},
                )
                total = 0
                async for chunk in chunks:
                    total += len(chunk)
                    if total > limit + 64 * 1024:
                        raise PayloadTooLarge(f"The package is larger than the {limit // (1 << 20)} MB limit")
                    try:
                        parser.write(chunk)
                    except Exception as exc:  # python-multipart raises its own parse errors
                        raise ServiceError(f"The multipart body is malformed: {exc}") from None
                parser.finalize()
                if not writer.found:
                    raise ServiceError(
                        "The request has no package: send the .nupkg as the first multipart part"
                    )
            else:
                total = 0
                async for chunk in chunks:
                    total += len(chunk)
                    if total > limit:
                        raise PayloadTooLarge(f"The package is larger than the {limit // (1 << 20)} MB limit")
                    out.write(chunk)
                if total == 0:
                    raise ServiceError("The request body is empty: send a .nupkg")
        if path.stat().st_size > limit:
            raise PayloadTooLarge(f"The package is larger than the {limit // (1 << 20)} MB limit")
        return path
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
