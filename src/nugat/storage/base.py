"""The storage interface every backend implements."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

_SEGMENT = re.compile(r"^[a-z0-9_][a-z0-9_.+-]*$")


class StorageError(Exception):
    """The storage backend failed or is unreachable (a push answers 503)."""


def check_key(key: str) -> str:
    """Refuse any key that could escape the storage root: only lowercase, dot-free-leading segments."""
    parts = key.split("/")
    if not parts or not all(_SEGMENT.match(p) and ".." not in p for p in parts):
        raise ValueError(f"invalid storage key {key!r}")
    return key


class Storage(ABC):
    """Blobs addressed by ``/``-separated lowercase keys; every write is atomic (readers never see half)."""

    @abstractmethod
    def put_file(self, key: str, source: Path, content_type: str) -> None: ...

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes | None: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list_keys(self, prefix: str) -> Iterator[str]: ...

    @abstractmethod
    def version_token(self, key: str) -> str | None:
        """A cheap token that changes whenever the blob changes, or None if it does not exist."""

    def local_path(self, key: str) -> Path | None:
        """A file path for zero-copy responses, when the backend has one."""
        return None

    @abstractmethod
    def check(self) -> None:
        """Raise StorageError if the backend cannot be reached (for /health)."""
