"""Local folder storage: atomic writes by temp file + rename in the same directory."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nugat.storage.base import BlobInfo, Storage, StorageError, StorageFull, check_key


class FileSystemStorage(Storage):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _write(self, key: str, write: object) -> None:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    write(fh)  # type: ignore[operator]
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp, 0o644)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            error = StorageFull if exc.errno in (errno.ENOSPC, errno.EDQUOT) else StorageError
            raise error(f"cannot write {key}: {exc.strerror or exc}") from exc

    def put_file(self, key: str, source: Path, content_type: str) -> None:
        def copy(fh: object) -> None:
            with open(source, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)  # type: ignore[arg-type]

        self._write(key, copy)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._write(key, lambda fh: fh.write(data))

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
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                yield path.relative_to(self.root).as_posix()

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
