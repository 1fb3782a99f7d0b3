"""The storage interface every backend implements."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

# Whether a stored blob (first) may stay in place of the new bytes (second): ``Storage.put_many``.
Same = Callable[[bytes, bytes], bool]

_KEY = re.compile(r"[a-z0-9_][a-z0-9_.+-]*(?:/[a-z0-9_][a-z0-9_.+-]*)*")


class StorageError(Exception):
    """The storage backend failed or is unreachable (a push answers 503)."""


class StorageFull(StorageError):
    """The storage backend has no room left for a write (a push answers 507)."""


def nothing_to_wait() -> None:
    """What ``Storage.put_many_syncing`` returns when its blobs are durable already."""
    return None


class BlobInfo(NamedTuple):
    token: str  # changes whenever the blob changes
    size: int
    modified: float  # POSIX time of the last write


def check_key(key: str) -> str:
    """Refuse any key that could escape the storage root: only lowercase, dot-free-leading segments."""
    if not _KEY.fullmatch(key) or ".." in key:  # one regex: this runs on every restore request
        raise ValueError(f"invalid storage key {key!r}")
    return key


class Storage(ABC):
    """Blobs addressed by ``/``-separated lowercase keys; every write is atomic (readers never see half)."""

    @abstractmethod
    def put_file(self, key: str, source: Path, content_type: str) -> None: ...

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    def put_many(
        self,
        items: Sequence[tuple[str, bytes | Path, str]],
        *,
        durable: bool = True,
        move: bool = False,
        same: Same | None = None,
    ) -> Collection[str]:
        """Store several blobs (bytes, or a file's contents), each atomically, visible in the given order.

        On failure some may be stored: the caller deletes them (or rebuilds, for documents).
        ``durable=False`` (documents derived from the database) lets a backend skip flushing them to disk
        at once, if it can tell after a machine crash that writes may be lost (``writes_lost``).
        ``move=True``: the files given may be moved into the storage instead of copied (they are the
        caller's temp files, discarded afterwards).
        ``same(stored, new)``: whether a blob stored as long as its new bytes may stay as it is; a backend
        that reads a blob for less than it writes one (the folder, for documents) asks it of each.

        Returns the folders (key prefixes, without a trailing ``/``) that the call made: nothing was
        stored below them before it (a backend without folders returns none).
        """
        for key, data, content_type in items:
            if isinstance(data, Path):
                self.put_file(key, data, content_type)
            else:
                self.put_bytes(key, data, content_type)
        return ()

    def put_many_syncing(
        self, items: Sequence[tuple[str, bytes | Path, str]], *, move: bool = False
    ) -> Callable[[], None]:
        """``put_many`` (durable) that may return once the blobs are in place, before they are flushed
        to disk: a push goes on with its transaction meanwhile. The caller calls what it returns before
        anything that points at the blobs commits: it waits for the flush (raising StorageError if it
        failed). Backends whose writes are durable when they return have nothing to wait for."""
        self.put_many(items, move=move)
        return nothing_to_wait

    @abstractmethod
    def get_bytes(self, key: str) -> bytes | None: ...

    def get_with_info(self, key: str) -> tuple[bytes, BlobInfo] | None:
        """The blob and the facts about those very bytes (a cache keyed by the token cannot then pair
        a token with other bytes), or None if it does not exist."""
        info = self.info(key)
        data = None if info is None else self.get_bytes(key)
        return None if info is None or data is None else (data, info)

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list_keys(self, prefix: str) -> Iterator[str]: ...

    @abstractmethod
    def info(self, key: str) -> BlobInfo | None:
        """Facts about a blob (its token changes whenever it changes), or None if it does not exist."""

    def cached_info(self, key: str) -> BlobInfo | Literal[False] | None:
        """``info`` if known without a network round trip, else False (then call ``info`` in a thread).

        The read path calls this on the event loop for every request.
        """
        return self.info(key)

    def local_path(self, key: str) -> Path | None:
        """A file path for zero-copy responses, when the backend has one."""
        return None

    def download_url(self, key: str) -> str | None:
        """A URL the client may fetch the blob from directly (a redirect), when the backend is set up so."""
        return None

    def read_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The blob's bytes in pieces, for blobs too large to hold in memory (raises StorageError if gone)."""
        data = self.get_bytes(key)
        if data is None:
            raise StorageError(f"{key} does not exist")
        yield data

    def writes_lost(self) -> bool:
        """Whether writes made with ``durable=False`` may have been lost (by a crash of the machine)."""
        return False

    def settle(self) -> None:
        """Make every write so far durable (after a rebuild, and when the server stops)."""
        return None  # backends that do not defer writes have nothing to do

    def abort_stale_uploads(self, older_than: float) -> int:
        """Give up uploads in parts begun more than ``older_than`` seconds ago, which a process killed
        while writing left behind (S3's multipart uploads); how many. Others have none."""
        return 0

    def mark_documents_stale(self, stale: bool) -> None:
        """Say whether stored documents may be stale (``services.catchup``): a front that serves this
        storage directly (nginx, docs/nginx/nugat.conf) sends document requests to nugat meanwhile,
        which rebuilds an id before it serves one. Backends no such front reads have nothing to do."""
        return None

    @abstractmethod
    def check(self) -> None:
        """Raise StorageError if the backend cannot be reached (for /health)."""
