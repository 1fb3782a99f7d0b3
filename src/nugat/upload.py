"""Receiving a pushed package: the request body streamed to a temp file, never held in memory.

nuget.exe sends ``multipart/form-data`` with the .nupkg as the first part, in chunked transfer
encoding (no Content-Length); other clients send the raw .nupkg. Either way the bytes go to a file in
the data folder's temp directory while the size limit and the upload timeouts are enforced as they
arrive. The receiving process holds a lock on the temp file until it is done with it; a file nobody
holds a lock on was left by a process that died (kill -9), and ``remove_abandoned`` deletes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from python_multipart.multipart import MultipartParser, parse_options_header

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

from nugat.services import InsufficientStorage, ServiceError, Unavailable


class PayloadTooLarge(ServiceError):
    status = 413


class UploadTimeout(ServiceError):
    status = 408


@dataclass(frozen=True)
class Upload:
    """A received package in a temp file, locked (through ``fd``) until ``discard``."""

    path: Path
    fd: int

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self.fd)


async def _paced(chunks: AsyncIterator[bytes], idle: float, total: float) -> AsyncIterator[bytes]:
    """The chunks, or UploadTimeout when none comes for ``idle`` seconds or all take over ``total``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total
    iterator = aiter(chunks)
    while True:
        wait = min(idle, deadline - loop.time())
        try:
            async with asyncio.timeout(max(wait, 0)):
                chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if wait < idle:
                raise UploadTimeout(f"The upload took longer than {total:g} seconds") from None
            raise UploadTimeout(f"The upload stalled: no data for {idle:g} seconds") from None
        yield chunk


class _FirstPartWriter:
    """Multipart callbacks that copy the first part's body to ``out`` and ignore the rest."""

    def __init__(self, out: object) -> None:
        self.out = out
        self.part = 0
        self.found = False
        self.ended = False  # the first part's closing delimiter was seen

    def on_part_begin(self) -> None:
        self.part += 1

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part == 1:
            self.found = True
            self.out.write(data[start:end])  # type: ignore[attr-defined]

    def on_part_end(self) -> None:
        if self.part == 1:
            self.ended = True


def _drop_bare_lf_delimiter(fd: int, boundary: bytes) -> None:
    """Remove a closing delimiter written after a bare LF from the end of the received part.

    NuGet 2.x on mono (Debian's nuget 2.8.7) ends the package part with LF ``--boundary--``, where
    RFC 2046 wants CRLF: the parser then never sees the part end and takes the delimiter for package
    bytes. Only that exact tail of a part left open is removed; a well-formed body never has one.
    """
    size = os.fstat(fd).st_size
    tail = b"\n--" + boundary + b"--"
    end = os.pread(fd, len(tail) + 2, max(0, size - len(tail) - 2))
    for after in (b"\r\n", b"\n", b""):
        if end.endswith(tail + after):
            os.ftruncate(fd, size - len(tail) - len(after))
            return


async def receive_package(
    chunks: AsyncIterator[bytes],
    content_type: str,
    content_length: str | None,
    tmp_dir: Path,
    limit: int,
    *,
    idle_timeout: float,
    total_timeout: float,
) -> Upload:
    """Write the uploaded package to a temp file; the caller discards it when done."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise ServiceError("Invalid Content-Length header") from None
        if declared > limit + 64 * 1024:  # room for the multipart envelope
            raise PayloadTooLarge(f"The package is larger than the {limit // (1 << 20)} MB limit")
    chunks = _paced(chunks, idle_timeout, total_timeout)
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-", suffix=".nupkg")
    except OSError as exc:
        raise _storage_error(exc) from None
    upload = Upload(Path(name), fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(fd, "wb", closefd=False) as out:
            media, params = parse_options_header(content_type.encode("latin-1", "replace"))
            if media == b"multipart/form-data":
                boundary = params.get(b"boundary")
                if not boundary:
                    raise ServiceError("The multipart body has no boundary")
                writer = _FirstPartWriter(out)
                callbacks: MultipartCallbacks = {
                    "on_part_begin": writer.on_part_begin,
                    "on_part_data": writer.on_part_data,
                    "on_part_end": writer.on_part_end,
                }
                parser = MultipartParser(boundary, callbacks)
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
                if not writer.ended:
                    out.flush()
                    _drop_bare_lf_delimiter(fd, boundary)
            else:
                total = 0
                async for chunk in chunks:
                    total += len(chunk)
                    if total > limit:
                        raise PayloadTooLarge(f"The package is larger than the {limit // (1 << 20)} MB limit")
                    out.write(chunk)
                if total == 0:
                    raise ServiceError("The request body is empty: send a .nupkg")
        if upload.path.stat().st_size > limit:
            raise PayloadTooLarge(f"The package is larger than the {limit // (1 << 20)} MB limit")
        return upload
    except OSError as exc:
        upload.discard()
        raise _storage_error(exc) from None
    except BaseException:
        upload.discard()
        raise


def _storage_error(exc: OSError) -> ServiceError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage("The server's disk is full: the upload was not kept; retry later")
    return Unavailable(f"The server cannot receive uploads right now ({exc.strerror or exc}); retry later")


def remove_abandoned(tmp_dir: Path) -> int:
    """Delete the temp uploads no live process holds (left by a crash mid-push); return how many."""
    removed = 0
    for path in tmp_dir.glob("upload-*"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its upload is still being received or pushed
        else:
            path.unlink(missing_ok=True)
            removed += 1
        finally:
            os.close(fd)
    return removed
