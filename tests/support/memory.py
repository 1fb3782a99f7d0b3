"""An in-memory ``Storage`` for the unit tests of the services, with failures and crashes on demand.

It keeps the contract of ``nugat.storage.base.Storage`` as the folder and S3 backends do (keys checked,
folder-like listing, idempotent deletes, a token that changes with every write), so a service tested on it
behaves as on a real backend. It lives with the tests, not in ``nugat.storage``: a storage that forgets
every package when the process stops, and that the workers of one server cannot share, is no backend to
offer anyone, and its fault switches are for tests only.

Faults: ``fail("put", error, when=...)`` makes the next matching operation raise ``error`` (a
``StorageError``, or ``PowerCut`` to stop the "process" there: every later operation raises it too, so
nothing a ``finally`` block tries to tidy up reaches the storage, as after ``kill -9``). ``heal()`` ends
them (the restart).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from nugat.storage.base import BlobInfo, Same, Storage, StorageError, check_key

OPERATIONS = ("put", "flush", "get", "delete", "list", "check")


class PowerCut(BaseException):
    """The process stopped here (not an ``Exception``: no ``except`` in nugat catches it)."""


@dataclass
class Blob:
    data: bytes
    content_type: str
    info: BlobInfo
    durable: bool


@dataclass
class Fault:
    operation: str
    error: BaseException
    when: Callable[[str], bool]
    times: int | None  # None: for ever


class MemoryStorage(Storage):
    def __init__(self) -> None:
        self.blobs: dict[str, Blob] = {}
        self.faults: list[Fault] = []
        self.dead: PowerCut | None = None
        self.lost = False  # what ``writes_lost`` answers: the machine stopped with unsynced writes
        self.settled = 0  # calls of ``settle``
        self._tokens = itertools.count(1)
        self._clock = itertools.count(1_700_000_000)

    # Faults -----------------------------------------------------------------------------------------

    def fail(
        self,
        operation: str,
        error: BaseException | None = None,
        *,
        when: Callable[[str], bool] | str = "",
        times: int | None = 1,
    ) -> None:
        """Make ``operation`` (put, flush: the wait ``put_many_syncing`` returns, get, delete, list, check)
        raise ``error`` for keys matching ``when`` (a predicate, or a substring of the key), ``times`` times
        (None: until ``heal``)."""
        assert operation in OPERATIONS, operation
        predicate = when if callable(when) else (lambda key, part=when: part in key)
        failure = error if error is not None else StorageError(f"the storage failed ({operation})")
        self.faults.append(Fault(operation, failure, predicate, times))

    def heal(self) -> None:
        """Every operation works again (after ``fail``, or a ``PowerCut``: the process restarted)."""
        self.faults.clear()
        self.dead = None

    def _check(self, operation: str, key: str) -> None:
        if self.dead is not None:
            raise self.dead
        for fault in self.faults:
            if fault.operation == operation and fault.when(key):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                if isinstance(fault.error, PowerCut):
                    self.dead = fault.error
                raise fault.error

    # Storage ----------------------------------------------------------------------------------------

    def _store(self, key: str, data: bytes, content_type: str, *, durable: bool) -> None:
        self._check("put", check_key(key))
        info = BlobInfo(token=f"t{next(self._tokens)}", size=len(data), modified=float(next(self._clock)))
        self.blobs[key] = Blob(data, content_type, info, durable)

    def put_file(self, key: str, source: Path, content_type: str) -> None:
        self._store(key, source.read_bytes(), content_type, durable=True)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._store(key, bytes(data), content_type, durable=True)

    def put_many(
        self,
        items: Sequence[tuple[str, bytes | Path, str]],
        *,
        durable: bool = True,
        move: bool = False,
        same: Same | None = None,
    ) -> Collection[str]:
        for key, data, content_type in items:  # in order; a failure leaves the earlier ones stored
            stored = self.blobs.get(key)
            if (
                same
                and isinstance(data, bytes)
                and stored
                and len(stored.data) == len(data)
                and same(stored.data, data)
            ):
                continue  # as the folder backend leaves it
            if isinstance(data, Path):
                self._store(key, data.read_bytes(), content_type, durable=durable)
                if move:
                    data.unlink()  # as the folder backend moves it: the caller must not read it again
            else:
                self._store(key, bytes(data), content_type, durable=durable)
        return ()  # no folders

    def put_many_syncing(
        self, items: Sequence[tuple[str, bytes | Path, str]], *, move: bool = False
    ) -> Callable[[], None]:
        """As the folder backend: the blobs are in place at once; a failure of their flush to disk
        (``fail("flush")``) is raised when the caller waits for it."""
        self.put_many(items, move=move)
        keys = [key for key, _, _ in items]

        def wait() -> None:
            for key in keys:
                self._check("flush", key)

        return wait

    def get_bytes(self, key: str) -> bytes | None:
        self._check("get", check_key(key))
        blob = self.blobs.get(key)
        return None if blob is None else blob.data

    def delete(self, key: str) -> None:
        self._check("delete", check_key(key))
        self.blobs.pop(key, None)

    def exists(self, key: str) -> bool:
        return self.info(key) is not None

    def list_keys(self, prefix: str) -> Iterator[str]:
        """The keys below the folder ``prefix`` (never those of a sibling that merely starts alike)."""
        folder = prefix.strip("/")
        self._check("list", folder)
        start = f"{folder}/" if folder else ""
        return iter(sorted(key for key in self.blobs if key.startswith(start)))

    def info(self, key: str) -> BlobInfo | None:
        self._check("get", check_key(key))
        blob = self.blobs.get(key)
        return None if blob is None else blob.info

    def writes_lost(self) -> bool:
        return self.lost

    def settle(self) -> None:
        self.settled += 1
        self.lost = False
        for blob in self.blobs.values():
            blob.durable = True

    def check(self) -> None:
        self._check("check", "")

    # For assertions ---------------------------------------------------------------------------------

    def peek(self, key: str) -> bytes | None:
        """``get_bytes`` without faults."""
        blob = self.blobs.get(key)
        return None if blob is None else blob.data

    def keys(self, prefix: str = "") -> list[str]:
        """``list_keys`` without faults."""
        start = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        return sorted(key for key in self.blobs if key.startswith(start))
