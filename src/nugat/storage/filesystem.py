"""Local folder storage: atomic writes by temp file + rename in the same directory."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

from nugat.storage.base import BlobInfo, Storage, StorageError, StorageFull, check_key

_pool: tuple[int, ThreadPoolExecutor] | None = None


def _fsync_pool() -> ThreadPoolExecutor:
    """Threads for concurrent fsyncs, made anew in a forked child (a parent's threads are not there)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(max_workers=8, thread_name_prefix="nugat-fsync"))
    return _pool[1]


class FileSystemStorage(Storage):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, source: Path, content_type: str) -> None:
        self._write_all([(key, source)])

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._write_all([(key, data)])

    def put_many(self, items: Sequence[tuple[str, bytes | Path, str]]) -> None:
        self._write_all([(key, data) for key, data, _ in items])

    def _write_all(self, items: list[tuple[str, bytes | Path]]) -> None:
        """Each blob to a temp file beside it, all made durable (fsync), then renamed into place in order.

        The fsyncs of several files run at once: the file system commits them together, for about the
        cost of one (a push writes seven files).
        """
        if not items:
            return
        staged: list[tuple[str, Path]] = []  # temp name, target
        fds: list[int] = []
        key = items[0][0]
        try:
            try:
                for key, data in items:
                    target = self._path(key)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
                    fds.append(fd)
                    staged.append((tmp, target))
                    with os.fdopen(fd, "wb", closefd=False) as fh:
                        if isinstance(data, Path):
                            with open(data, "rb") as src:
                                shutil.copyfileobj(src, fh, 1 << 20)
                        else:
                            fh.write(data)
                if len(fds) == 1:
                    os.fsync(fds[0])
                else:  # all finished before any fd is closed, even when one fails
                    pending = [_fsync_pool().submit(os.fsync, fd) for fd in fds]
                    wait(pending)
                    for future in pending:
                        future.result()
            finally:
                for fd in fds:
                    os.close(fd)
            for tmp, target in staged:
                os.chmod(tmp, 0o644)
                os.replace(tmp, target)
        except BaseException as exc:
            for tmp, _ in staged:  # those not yet renamed
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            if not isinstance(exc, OSError):
                raise
            error = StorageFull if exc.errno in (errno.ENOSPC, errno.EDQUOT) else StorageError
            raise error(f"cannot write {key}: {exc.strerror or exc}") from exc

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot delete {key}: {exc.strerror or exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_keys(self, prefix: str) -> Iterator[str]:
        # os.walk, not Path.rglob: it reads file types from the listing instead of a stat per entry, and
        # this runs on every push (the documents of an id no longer wanted are found this way).
        base = f"{self.root}/{prefix}" if prefix else str(self.root)
        start = len(str(self.root)) + 1
        for folder, _dirs, files in os.walk(base):
            for name in files:
                if not name.startswith(".tmp-"):
                    yield os.path.join(folder, name)[start:]

    def info(self, key: str) -> BlobInfo | None:
        try:  # a string, not a Path: this runs on every restore request
            st = os.stat(f"{self.root}/{check_key(key)}")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:  # a URL no blob can have
                return None
            raise
        if not stat.S_ISREG(st.st_mode):  # a folder such as v3/flatcontainer/<id> is no blob
            return None
        return BlobInfo(f"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}", st.st_size, st.st_mtime)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")
