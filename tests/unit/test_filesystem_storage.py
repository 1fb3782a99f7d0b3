"""The folder storage: several blobs written at once, each atomic; listing by prefix; the marker that
tells a start after a machine crash that documents written unsynced may be lost."""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

import pytest

from nugat.storage import filesystem
from nugat.storage.base import StorageError, StorageFull
from nugat.storage.filesystem import SETTLING, UNSYNCED, FileSystemStorage


def test_put_many_stores_bytes_and_files(tmp_path: Path) -> None:
    storage = FileSystemStorage(tmp_path / "root")
    source = tmp_path / "a.nupkg"
    source.write_bytes(b"PK-package")
    storage.put_many([("v3/x/a.nupkg", source, "application/octet-stream"), ("v3/x/y/b.json", b"{}", "j")])
    storage.put_many([])
    assert storage.get_bytes("v3/x/a.nupkg") == b"PK-package"
    assert storage.get_bytes("v3/x/y/b.json") == b"{}"
    assert sorted(storage.list_keys("v3/x")) == ["v3/x/a.nupkg", "v3/x/y/b.json"]
    assert sorted(storage.list_keys("v3/x/")) == ["v3/x/a.nupkg", "v3/x/y/b.json"]
    assert list(storage.list_keys("v3/none")) == []


def test_a_failed_put_many_stores_nothing_and_leaves_no_temp_files(tmp_path: Path) -> None:
    storage = FileSystemStorage(tmp_path / "root")
    with pytest.raises(ValueError):
        storage.put_many([("v3/x/a.json", b"{}", "j"), ("v3/../escape", b"{}", "j")])
    assert [p for p in (tmp_path / "root").rglob("*") if p.is_file()] == []
    assert list(storage.list_keys("")) == []


def test_documents_written_unsynced_are_covered_by_a_marker_of_this_boot(tmp_path: Path) -> None:
    storage = FileSystemStorage(tmp_path / "root")
    marker = tmp_path / "root" / UNSYNCED
    storage.put_many([("v3/x/a.nupkg", b"PK", "p")])  # durable: no marker needed
    assert not marker.exists()
    storage.put_many([("v3/x/index.json", b"{}", "j")], durable=False)
    assert marker.read_text().strip() == storage.boot_id
    assert not storage.writes_lost()  # same boot: the kernel still holds every write
    assert sorted(storage.list_keys("")) == ["v3/x/a.nupkg", "v3/x/index.json"]  # not the marker
    storage.settle()
    assert not marker.exists() and not storage.writes_lost()


@pytest.mark.parametrize("name", [UNSYNCED, SETTLING])
@pytest.mark.parametrize("more_writes", [True, False])
def test_a_marker_of_another_boot_means_writes_may_be_lost(
    tmp_path: Path, name: str, more_writes: bool
) -> None:
    storage = FileSystemStorage(tmp_path / "root")
    (tmp_path / "root" / name).write_text("another-boot\n")
    assert storage.writes_lost()
    if more_writes:
        storage.put_many([("v3/x/index.json", b"{}", "j")], durable=False)
        assert storage.writes_lost(), "a later write must not hide the earlier boot's lost writes"
    storage.settle()
    assert not storage.writes_lost()
    assert sorted(p.name for p in (tmp_path / "root").iterdir() if p.name.startswith(".")) == []


def test_without_a_boot_id_every_write_is_durable(tmp_path: Path) -> None:
    storage = FileSystemStorage(tmp_path / "root")
    storage.boot_id = None
    storage.put_many([("v3/x/index.json", b"{}", "j")], durable=False)
    assert not (tmp_path / "root" / UNSYNCED).exists()
    assert storage.get_bytes("v3/x/index.json") == b"{}"


def test_a_read_tells_the_facts_of_the_bytes_it_read(tmp_path: Path) -> None:
    storage = FileSystemStorage(tmp_path / "root")
    assert storage.get_with_info("v3/x/index.json") is None
    storage.put_many([("v3/x/index.json", b"{}", "j")], durable=False)
    first = storage.info("v3/x/index.json")
    assert storage.get_with_info("v3/x/index.json") == (b"{}", first)
    storage.put_many([("v3/x/index.json", b'{"a":1}', "j")], durable=False)
    data, info = storage.get_with_info("v3/x/index.json") or (b"", first)
    assert data == b'{"a":1}' and info == storage.info("v3/x/index.json") and info != first


def test_a_rewritten_document_reuses_its_previous_version_unless_someone_reads_it(tmp_path: Path) -> None:
    """Documents (unsynced) are written into the spare inode of their previous version, then exchanged:
    no file created or removed a rewrite. A spare someone still has open (a reader of the version it
    was) is left alone, and deleting the document deletes its spare."""
    storage = FileSystemStorage(tmp_path / "root")
    target, spare = tmp_path / "root/v3/x/index.json", tmp_path / "root/v3/x/.index.json.old"
    storage.put_many([("v3/x/index.json", b'{"v":1}', "j")], durable=False)
    first = target.stat().st_ino
    storage.put_many([("v3/x/index.json", b'{"v":22}', "j")], durable=False)
    assert spare.read_bytes() == b'{"v":1}' and spare.stat().st_ino == first
    second = target.stat().st_ino
    storage.put_many([("v3/x/index.json", b'{"v":3}', "j")], durable=False)
    assert target.stat().st_ino == first and target.read_bytes() == b'{"v":3}'  # shorter: truncated
    assert spare.stat().st_ino == second
    with open(target, "rb") as reader:  # holds the version that becomes the spare at the next rewrite
        storage.put_many([("v3/x/index.json", b'{"v":4}', "j")], durable=False)
        storage.put_many([("v3/x/index.json", b'{"v":5}', "j")], durable=False)
        assert reader.read() == b'{"v":3}'
    assert storage.get_bytes("v3/x/index.json") == b'{"v":5}'
    assert list(storage.list_keys("v3")) == ["v3/x/index.json"]
    storage.delete("v3/x/index.json")
    assert sorted(p.name for p in (tmp_path / "root/v3/x").iterdir()) == []


def test_blobs_put_syncing_are_in_place_at_once_and_flushed_when_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = FileSystemStorage(tmp_path)
    flushed: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (flushed.append(fd), real_fsync(fd))[1])
    wait = storage.put_many_syncing([("v3/a/1.0.0/a.nupkg", b"PK", "x"), ("v3/a/1.0.0/a.nuspec", b"<", "x")])
    assert storage.get_bytes("v3/a/1.0.0/a.nupkg") == b"PK"
    wait()
    assert len(flushed) >= 2 + 3  # both files, and the folders that gained a name: 1.0.0, a and v3


@pytest.mark.parametrize(("code", "error"), [(errno.EIO, StorageError), (errno.ENOSPC, StorageFull)])
def test_a_failed_flush_is_raised_by_the_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, error: type[StorageError]
) -> None:
    storage = FileSystemStorage(tmp_path)

    def fail(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", fail)
    wait = storage.put_many_syncing([("v3/a/1.0.0/a.nupkg", b"PK", "x")])
    with pytest.raises(error, match=r"cannot write v3/a/1\.0\.0/a\.nupkg"):
        wait()


def test_where_files_cannot_be_exchanged_documents_are_renamed_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system without renameat2's exchange: asked once, then documents replace their previous
    version by a rename, first and later writes alike."""

    def refuse(*_args: object) -> int:
        ctypes.set_errno(errno.EINVAL)
        return -1

    monkeypatch.setattr(filesystem, "_renameat2", refuse)
    storage = FileSystemStorage(tmp_path / "root")
    storage.put_many([("v3/x/index.json", b'{"v":1}', "j")], durable=False)
    assert filesystem._renameat2 is None  # not asked again
    storage.put_many([("v3/x/index.json", b'{"v":2}', "j")], durable=False)
    assert storage.get_bytes("v3/x/index.json") == b'{"v":2}'
    assert sorted(p.name for p in (tmp_path / "root/v3/x").iterdir()) == ["index.json"]


def test_documents_that_may_stay_as_stored_are_not_written(tmp_path: Path) -> None:
    """With ``same``, each document is read first: left as it is (same inode, same bytes) when ``same``
    accepts the stored bytes, which it is asked only of as long as the new ones; written otherwise."""
    storage = FileSystemStorage(tmp_path / "root")
    target = tmp_path / "root/v3/x/index.json"
    storage.put_many([("v3/x/index.json", b'{"c":1}', "j")], durable=False)
    asked: list[tuple[bytes, bytes]] = []

    def same(stored: bytes, new: bytes) -> bool:
        asked.append((stored, new))
        return stored.replace(b"1", b"2") == new

    first = target.stat()
    storage.put_many(
        [("v3/x/index.json", b'{"c":2}', "j"), ("v3/y/index.json", b"{}", "j")], same=same, durable=False
    )
    assert target.read_bytes() == b'{"c":1}' and target.stat().st_ino == first.st_ino
    assert target.stat().st_mtime_ns == first.st_mtime_ns
    assert storage.get_bytes("v3/y/index.json") == b"{}"  # a new one: written, no spare beside it
    assert sorted(p.name for p in (tmp_path / "root/v3/y").iterdir()) == ["index.json"]
    storage.put_many([("v3/x/index.json", b'{"c":33}', "j")], same=same, durable=False)  # longer
    storage.put_many([("v3/x/index.json", b'{"c":4}', "j")], same=same, durable=False)  # shorter
    storage.put_many([("v3/x/index.json", b'{"c":5}', "j")], same=same, durable=False)  # refused
    assert target.read_bytes() == b'{"c":5}'
    assert asked == [(b'{"c":1}', b'{"c":2}'), (b'{"c":4}', b'{"c":5}')]


def test_documents_in_folders_a_write_makes_are_neither_read_nor_given_a_spare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write of documents returns the folders it made (parents too): nothing was below them before, so
    documents in them are written without a read of what is stored or a look for a spare (a rebuild into
    an empty tree); in folders that were there, documents are read (``same``) as before."""
    storage = FileSystemStorage(tmp_path / "root")
    storage.put_many([("v3/old/index.json", b'{"c":1}', "j")], durable=False)
    opened: list[str] = []
    real_open = os.open

    def watch(path: str, flags: int, *args: object, **kwargs: object) -> int:
        opened.append(str(path))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", watch)
    items = [
        ("v3/r/a/page/1.0.0/2.0.0.json", b"[1]", "j"),
        ("v3/r/a/index.json", b"[2]", "j"),
        ("v3/old/index.json", b'{"c":2}', "j"),
        ("v3/old/new/index.json", b"[3]", "j"),
    ]

    def same(stored: bytes, new: bytes) -> bool:
        return True

    made = storage.put_many(items, durable=False, same=same)
    assert set(made) == {"v3/r", "v3/r/a", "v3/r/a/page", "v3/r/a/page/1.0.0", "v3/old/new"}
    monkeypatch.undo()
    read_or_refilled = [p for p in opened if not p.rsplit("/", 1)[-1].startswith(".tmp-")]
    # A document in a folder that was not there is read (it may have been) unless the last folder was
    # new as well; documents in folders made before them are not.
    assert [p for p in read_or_refilled if "/r/" in p] == ["v3/r/a/page/1.0.0/2.0.0.json"]
    assert "v3/old/index.json" in read_or_refilled
    assert storage.get_bytes("v3/old/index.json") == b'{"c":1}'  # ``same`` kept it
    written = [storage.get_bytes(key) for key, _, _ in items if "old/index" not in key]
    assert written == [b"[1]", b"[2]", b"[3]"]
    assert sorted(p.name for p in (tmp_path / "root/v3/r/a").iterdir()) == ["index.json", "page"]
    # After a new folder the next one is made first: a new one is then not read either.
    monkeypatch.setattr(os, "open", watch)
    opened.clear()
    assert list(storage.put_many([("v3/s/index.json", b"[5]", "j")], durable=False, same=same)) == ["v3/s"]
    assert [p for p in opened if not p.startswith("/") and ".tmp-" not in p] == []
    monkeypatch.undo()
    assert list(storage.put_many([("v3/r/a/index.json", b"[4]", "j")], durable=False)) == []
    assert storage.get_bytes("v3/r/a/index.json") == b"[4]"
    assert list(storage.put_many([("v3/p/a.nupkg", b"PK", "x")])) == []  # durable blobs: none told
