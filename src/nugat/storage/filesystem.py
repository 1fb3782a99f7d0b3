"""Local folder storage: atomic writes by temp file + rename in the same directory (documents: into the
spare inode of their previous version, then exchanged; see ``SPARE``).

Packages are written durably (file and directory fsynced before the push commits). The stored V3
documents are derived from the database, so they are written without fsync: a process crash cannot
lose them (the kernel holds the data), only a crash of the machine can. For that case a marker file
holding the kernel's boot id is kept while documents may be unsynced; a start under another boot id
finds it, and ``Packages.recover`` rebuilds every document from the database.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import itertools
import os
import shutil
import stat
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from nugat.storage.base import (
    BlobInfo,
    Same,
    Storage,
    StorageError,
    StorageFull,
    check_key,
    nothing_to_wait,
)

BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"
UNSYNCED = ".unsynced"  # keys never start with a dot: no blob can be named so
SETTLING = ".unsynced-settling"
STALE_DOCUMENTS = ".stale-documents"  # nginx's configuration tests for it (docs/nginx/nugat.conf)

_names = itertools.count()


def _boot_id() -> str | None:
    try:
        with open(BOOT_ID_FILE) as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _load_libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_libc = _load_libc()


def _load_renameat2() -> Any:
    try:
        function = _libc.renameat2  # Linux 3.15+, glibc 2.28+
    except AttributeError:  # (also when there is no libc to ask)
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_renameat2 = _load_renameat2()
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(path: str, target: str, folder: int = _AT_FDCWD) -> bool:
    """Exchange ``path`` and ``target`` atomically (renameat2's RENAME_EXCHANGE): ``path`` then names the
    previous version of ``target``. False, doing nothing, when there is no ``target`` (a new document) or
    the file system cannot exchange: the caller renames ``path`` into place instead. ``folder``: the
    descriptor of the folder both paths are relative to."""
    global _renameat2
    if _renameat2 is None:
        return False
    if _renameat2(folder, os.fsencode(path), folder, os.fsencode(target), _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # not on this file system: not again
        _renameat2 = None
    elif error != errno.ENOENT:  # ENOENT: nothing to exchange with, a new document
        raise OSError(error, os.strerror(error), target)
    return False


def _replace_unsynced(tmp: str, target: str) -> None:
    """``os.replace`` for a file not synced on purpose, without the flush ext4 starts when a new file
    replaces an existing one (``auto_da_alloc``, which triples the cost of a document write): the two
    are exchanged atomically instead, and the old one, now under the temp name, removed."""
    if _exchange(tmp, target):
        os.unlink(tmp)
    else:
        os.replace(tmp, target)


# Documents are rewritten into the inode of their previous version (kept as a spare beside them) rather
# than into a new file, the old one removed: on ext4 creating an inode after many were removed scans past
# every one removed in the last minutes (without a journal), and removing a file frees its blocks (a
# discard each, when mounted so): 2 ms a document, most of ``nugat rebuild`` on a feed that has them all.
SPARE = ".{}.old"  # keys never start with a dot: no blob can be named so
_leases = True  # False once the file system refused a lease (not Linux, leases disabled, another owner)


def _refill(spare: str, data: bytes, root: int) -> bool:
    """Write ``data`` into the spare file if there is one and nobody has it open (a reader of the document
    it was before it was replaced: a write lease is refused while another descriptor is open on it)."""
    global _leases
    try:
        fd = os.open(spare, os.O_WRONLY | os.O_CLOEXEC, dir_fd=root)
    except OSError:  # none (the usual reason), or not ours to write (left by another user): a new file
        return False
    try:
        try:
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EBUSY):
                _leases = False
            return False
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        written = 0
        while written < len(data):
            written += os.pwrite(fd, memoryview(data)[written:], written)
        os.ftruncate(fd, len(data))
        return True
    finally:
        os.close(fd)


def _exchange_into(path: str, target: str, spare: str, root: int) -> None:
    """Put ``path`` in place of ``target`` atomically; the previous version becomes the spare."""
    if not _exchange(path, target, root):
        os.replace(path, target, src_dir_fd=root, dst_dir_fd=root)
    elif path != spare:
        os.replace(path, spare, src_dir_fd=root, dst_dir_fd=root)


def _read_at_most(path: str, size: int, root: int) -> bytes | None:
    """The first ``size`` bytes of a file (a regular file's read returns them at once), None if none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=root)
    except FileNotFoundError:
        return None
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def _files(folder: str) -> Iterator[str]:
    """The paths of the files below ``folder`` but dot files (temp files, spares, markers), as ``os.walk``
    finds them, for less: this runs for every id built (its documents no longer wanted are found so).
    Each folder is read whole before its files are yielded (the caller may delete them meanwhile)."""
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
    except OSError:  # none (a new id), or not a folder
        return
    for entry in entries:  # file types from the listing: no stat an entry
        if not entry.is_dir() and not entry.name.startswith("."):
            yield entry.path
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            yield from _files(entry.path)


def _make_folders(folder: str) -> list[str]:
    """Make ``folder`` and its missing parents; return the folders that gained a name by it."""
    missing = []
    path = folder
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    if missing:
        os.makedirs(folder, exist_ok=True)
    return [os.path.dirname(m) for m in missing]


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def _make_folder(folder: str, root: int, made: set[str]) -> bool:
    """Make ``folder`` (relative to the descriptor ``root``) unless it is there, and its missing parents,
    adding the folders made to ``made``: whether ``folder`` was made."""
    try:
        os.mkdir(folder, dir_fd=root)
    except FileExistsError:
        return False
    except FileNotFoundError:  # a parent is missing as well (in a new tree: a hive's folder)
        parent = folder.rpartition("/")[0]
        if not parent:
            raise
        _make_folder(parent, root, made)
        return _make_folder(folder, root, made)
    made.add(folder)
    return True


def _sync_file_system(path: str) -> None:
    """syncfs(2): everything written to the file system holding ``path`` (not the others, as sync does)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        syncfs = getattr(_libc, "syncfs", None)
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _blob_info(st: os.stat_result) -> BlobInfo:
    return BlobInfo(f"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}", st.st_size, st.st_mtime)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync(fds: list[int], folders: set[str]) -> None:
    """Flush the files (closing them) and then the folders that name them, deepest first."""
    try:
        for fd in fds:
            os.fsync(fd)
    finally:
        for fd in fds:
            os.close(fd)
    for folder in sorted(folders, reverse=True):
        _fsync_dir(folder)


@functools.cache
def _flushers() -> ThreadPoolExecutor:
    """Threads that flush a push's blobs to disk while it goes on (``put_many_syncing``)."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="nugat-flush")


def _storage_error(key: str, exc: OSError) -> StorageError:
    error = StorageFull if exc.errno in (errno.ENOSPC, errno.EDQUOT) else StorageError
    return error(f"cannot write {key}: {exc.strerror or exc}")


class FileSystemStorage(Storage):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.boot_id = _boot_id()  # None (not Linux): every write is made durable
        self.device = os.stat(self.root).st_dev
        # Whether the last folder a rebuild wrote a document in was new: the next one is then made before
        # its document is looked for (in a new tree, the look is all but the only lookup it saves).
        self._new_folders_expected = False

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, source: Path, content_type: str) -> None:
        self._write_all([(key, source)], durable=True)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._write_all([(key, data)], durable=True)

    def put_many(
        self,
        items: Sequence[tuple[str, bytes | Path, str]],
        *,
        durable: bool = True,
        move: bool = False,
        same: Same | None = None,
    ) -> Collection[str]:
        unsynced = not (durable or self.boot_id is None or move)
        if unsynced and _renameat2 is not None and _leases and all(isinstance(d, bytes) for _, d, _ in items):
            return self._write_documents([(key, cast(bytes, data)) for key, data, _ in items], same)
        self._write_all(
            [(key, data) for key, data, _ in items], durable=durable or self.boot_id is None, move=move
        )
        return ()

    def put_many_syncing(
        self, items: Sequence[tuple[str, bytes | Path, str]], *, move: bool = False
    ) -> Callable[[], None]:
        if not items:
            return nothing_to_wait
        fds, folders = self._place([(key, data) for key, data, _ in items], durable=True, move=move)
        flushed = _flushers().submit(_sync, fds, folders)
        key = items[0][0]

        def wait() -> None:
            try:
                flushed.result()
            except OSError as exc:
                raise _storage_error(key, exc) from exc

        return wait

    def _write_all(self, items: list[tuple[str, bytes | Path]], *, durable: bool, move: bool = False) -> None:
        """Each blob to a temp file beside it, then all renamed into place in order.

        Durable: then each file synced, and each folder that gained a name (new folders' parents too),
        so that a committed push never points at a package the machine lost. Syncing after the renames
        lets the file system commit data and names at once (the folders' syncs then find little to do).
        Otherwise the marker covers the writes (see above).
        """
        if not items:
            return
        fds, folders = self._place(items, durable=durable, move=move)
        try:
            if durable:
                _sync(fds, folders)
            else:
                for fd in fds:
                    os.close(fd)
                self._cover_unsynced()
        except OSError as exc:
            raise _storage_error(items[0][0], exc) from exc

    def _place(
        self, items: list[tuple[str, bytes | Path]], *, durable: bool, move: bool
    ) -> tuple[list[int], set[str]]:
        """Write each blob beside its key and rename them all into place, in order: the descriptors of
        the files placed, still open (the caller syncs them, or closes them), and the folders that gained
        a name."""
        staged: list[tuple[str, str]] = []  # temp name, target
        fds: list[int] = []
        folders: set[str] = set()
        key = items[0][0]
        try:
            for key, data in items:
                target = f"{self.root}/{check_key(key)}"
                folder = os.path.dirname(target)
                folders.add(folder)
                if move and isinstance(data, Path) and os.stat(data).st_dev == self.device:
                    # Renamed into place, not copied (a 100 MB package is not written twice).
                    fds.append(os.open(data, os.O_RDONLY | os.O_CLOEXEC))
                    os.fchmod(fds[-1], 0o644)
                    folders.update(_make_folders(folder))
                    staged.append((str(data), target))
                    continue
                tmp = f"{folder}/.tmp-{os.getpid()}-{next(_names)}"
                fd, created = self._create(tmp)
                fds.append(fd)
                folders.update(created)
                staged.append((tmp, target))
                os.fchmod(fd, 0o644)
                with open(fd, "wb", closefd=False) as fh:
                    if isinstance(data, Path):
                        with open(data, "rb") as src:
                            shutil.copyfileobj(src, fh, 1 << 20)
                    else:
                        fh.write(data)
            for tmp, target in staged:
                if durable:
                    os.replace(tmp, target)
                else:
                    _replace_unsynced(tmp, target)
            return fds, folders
        except BaseException as exc:
            for fd in fds:
                os.close(fd)
            for tmp, _ in staged:  # those not yet renamed
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            if not isinstance(exc, OSError):
                raise
            raise _storage_error(key, exc) from exc

    def _write_documents(self, items: list[tuple[str, bytes]], same: Same | None = None) -> set[str]:
        """Documents (unsynced, see above): each written into its spare, or a new temp file, then all
        exchanged with their targets in order (the previous versions become the spares). Writers of one
        document take turns (the id's row lock): two at once could both write into its spare.

        With ``same``, each document is read first: one stored as long as the new bytes, that ``same``
        accepts, is left as it is (reading costs a tenth of rewriting); one not stored yet is written to a
        temp file renamed into place, with neither a spare nor an exchange tried. A document in a folder
        this call made (a new id, in a new tree every one) is neither read nor looked for a spare of;
        after a folder found new, the next is made before anything is looked for in it (one lookup in its
        parent, which writers of other ids hold while they make theirs). Returns the folders made.

        Paths are opened relative to the root's descriptor: on a machine caching millions of files, the
        lookup of each component of a path costs more than the write does."""
        made: set[str] = set()  # folders made by this call: empty until it writes in them
        if not items:
            return made
        staged: list[tuple[str, str, str | None]] = []  # file written, target, spare (None: a new one)
        key = items[0][0]
        try:
            root = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise _storage_error(key, exc) from exc
        try:
            for key, data in items:
                target = check_key(key)
                folder, _, name = target.rpartition("/")
                spare: str | None = f"{folder}/{SPARE.format(name)}" if folder else SPARE.format(name)
                if folder in made:
                    spare = None
                elif same is not None:
                    expected = self._new_folders_expected
                    new = bool(folder) and expected and _make_folder(folder, root, made)
                    if new:
                        spare = None  # nothing in it to read
                    else:
                        stored = _read_at_most(target, len(data) + 1, root)
                        if stored is None:
                            spare = None
                            if folder and not expected:  # made now if new, before its temp file is
                                new = _make_folder(folder, root, made)
                        elif len(stored) == len(data) and same(stored, data):
                            self._new_folders_expected = False
                            continue
                    self._new_folders_expected = new
                if spare is not None and _refill(spare, data, root):
                    staged.append((spare, target, spare))
                    continue
                tmp = f".tmp-{os.getpid()}-{next(_names)}"
                tmp = f"{folder}/{tmp}" if folder else tmp
                try:
                    fd = os.open(tmp, _CREATE, 0o644, dir_fd=root)
                except FileNotFoundError:  # the folder is new
                    _make_folder(folder, root, made)
                    fd = os.open(tmp, _CREATE, 0o644, dir_fd=root)
                staged.append((tmp, target, spare))
                try:
                    os.fchmod(fd, 0o644)
                    written = 0
                    while written < len(data):
                        written += os.write(fd, memoryview(data)[written:])
                finally:
                    os.close(fd)
            for path, target, spare in staged:
                if spare is None:
                    os.replace(path, target, src_dir_fd=root, dst_dir_fd=root)
                else:
                    _exchange_into(path, target, spare, root)
            staged = []
            self._cover_unsynced(root)
            return made
        except BaseException as exc:
            for path, _, spare in staged:  # those not yet in place (a spare stays one)
                if path != spare:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path, dir_fd=root)
            if not isinstance(exc, OSError):
                raise
            raise _storage_error(key, exc) from exc
        finally:
            os.close(root)

    @staticmethod
    def _create(tmp: str) -> tuple[int, list[str]]:
        """Open a new temp file; also return the folders that gained a name by making missing folders."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            return os.open(tmp, flags, 0o644), []
        except FileNotFoundError:  # the folder is new
            folder = os.path.dirname(tmp)
            try:
                os.mkdir(folder)  # most often its parent is there (an id's folder in a hive)
                created = [os.path.dirname(folder)]
            except FileNotFoundError:
                created = _make_folders(folder)
            return os.open(tmp, flags, 0o644), created

    # Unsynced documents ---------------------------------------------------------------------------

    def _cover_unsynced(self, root: int | None = None) -> None:
        """Make sure the marker is there, after the writes it covers (see ``settle`` for why after).
        ``root``: the root's descriptor, when the caller holds one (the marker is then found by its name)."""
        marker = f"{self.root}/{UNSYNCED}"
        try:
            os.stat(marker if root is None else UNSYNCED, dir_fd=root)
            return
        except OSError:
            pass
        tmp = f"{marker}.{os.getpid()}-{next(_names)}"
        with open(tmp, "w") as fh:
            fh.write(f"{self.boot_id}\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, marker)
        _fsync_dir(str(self.root))

    def writes_lost(self) -> bool:
        """Whether documents written unsynced under an earlier boot may have been lost with it."""
        for name in (UNSYNCED, SETTLING):
            try:
                with open(f"{self.root}/{name}") as fh:
                    if fh.read().strip() != self.boot_id:
                        return True
            except FileNotFoundError:
                continue
        return False

    def settle(self) -> None:
        """Make every write durable and drop the marker.

        The marker is first renamed aside, then everything synced, then the aside file removed. A
        process writing meanwhile checks for the marker after its writes: either its writes came before
        the rename (and the sync covers them) or it finds no marker and makes a new one.
        """
        marker, aside = f"{self.root}/{UNSYNCED}", f"{self.root}/{SETTLING}"
        try:
            os.replace(marker, aside)
        except FileNotFoundError:
            if not os.path.exists(aside):
                return  # nothing written unsynced since the last settle
        _sync_file_system(str(self.root))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(aside)
            _fsync_dir(str(self.root))

    def mark_documents_stale(self, stale: bool) -> None:
        marker = f"{self.root}/{STALE_DOCUMENTS}"
        if not stale:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(marker)
            return
        if os.path.exists(marker):
            return
        with open(marker, "w") as fh:  # durable: it must outlive a crash that the documents may not
            os.fsync(fh.fileno())
        _fsync_dir(str(self.root))

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def get_with_info(self, key: str) -> tuple[bytes, BlobInfo] | None:
        try:
            with open(self._path(key), "rb") as fh:  # the facts of the file read, not of its name
                return fh.read(), _blob_info(os.fstat(fh.fileno()))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def delete(self, key: str) -> None:
        path = f"{self.root}/{check_key(key)}"
        folder, name = path.rsplit("/", 1)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot delete {key}: {exc.strerror or exc}") from exc
        with contextlib.suppress(OSError):
            os.unlink(f"{folder}/{SPARE.format(name)}")  # a document's previous version, if any

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_keys(self, prefix: str) -> Iterator[str]:
        base = f"{self.root}/{prefix}" if prefix else str(self.root)
        start = len(str(self.root)) + 1
        for path in _files(base):
            yield path[start:]

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
        return _blob_info(st)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")
