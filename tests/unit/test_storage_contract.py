"""The storage contract the services rely on, checked on the folder backend and on the in-memory one the
service tests use (``support.memory``): a fake that kept a different contract would make them lie."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from nugat.storage import Storage
from nugat.storage.filesystem import FileSystemStorage
from support.memory import MemoryStorage, PowerCut

BACKENDS: dict[str, Callable[[Path], Storage]] = {
    "filesystem": lambda tmp: FileSystemStorage(tmp / "root"),
    "memory": lambda tmp: MemoryStorage(),
}


@pytest.fixture(params=list(BACKENDS))
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return BACKENDS[request.param](tmp_path)


def test_blobs_are_written_read_and_deleted(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "upload.nupkg"
    source.write_bytes(b"PK-package")
    storage.put_many(
        [("v3/a/1.0.0/a.nupkg", source, "application/octet-stream"), ("v3/a/index.json", b"{}", "j")]
    )
    assert storage.get_bytes("v3/a/1.0.0/a.nupkg") == b"PK-package"
    assert storage.exists("v3/a/index.json") and not storage.exists("v3/a/none.json")
    assert storage.get_bytes("v3/a/none.json") is None and storage.info("v3/a/none.json") is None
    storage.delete("v3/a/index.json")
    storage.delete("v3/a/index.json")  # deleting what is gone is no error
    assert storage.get_bytes("v3/a/index.json") is None


def test_a_moved_upload_is_stored(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "upload.nupkg"
    source.write_bytes(b"PK-moved")
    storage.put_many([("v3/a/1.0.0/a.nupkg", source, "application/octet-stream")], move=True)
    assert storage.get_bytes("v3/a/1.0.0/a.nupkg") == b"PK-moved"


def test_listing_is_by_folder(storage: Storage) -> None:
    for key in (
        "v3/flatcontainer/a/1.0.0/a.nupkg",
        "v3/flatcontainer/a/1.0.0-beta/a.nupkg",
        "v3/other/x.json",
    ):
        storage.put_bytes(key, b"x", "j")
    assert sorted(storage.list_keys("v3/flatcontainer/a/1.0.0")) == ["v3/flatcontainer/a/1.0.0/a.nupkg"]
    assert sorted(storage.list_keys("v3/flatcontainer")) == [
        "v3/flatcontainer/a/1.0.0-beta/a.nupkg",
        "v3/flatcontainer/a/1.0.0/a.nupkg",
    ]
    assert list(storage.list_keys("v3/none")) == []
    assert len(list(storage.list_keys(""))) == 3


def test_a_rewrite_changes_the_token(storage: Storage) -> None:
    storage.put_bytes("v3/a/index.json", b"{}", "j")
    first = storage.info("v3/a/index.json")
    storage.put_bytes("v3/a/index.json", b'{"versions":[]}', "j")
    second = storage.get_with_info("v3/a/index.json")
    assert first is not None and second is not None
    assert second[0] == b'{"versions":[]}' and second[1].size == 15
    assert second[1].token != first.token


@pytest.mark.parametrize("key", ["../escape", "v3/../../etc/passwd", "V3/Upper", "/absolute", "v3//double"])
def test_keys_that_could_escape_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError):
        storage.put_bytes(key, b"x", "j")


def test_the_fake_fails_and_crashes_on_demand() -> None:
    storage = MemoryStorage()
    storage.fail("put", when="nuspec")
    storage.put_bytes("v3/a/a.nupkg", b"x", "j")
    with pytest.raises(Exception, match="the storage failed"):
        storage.put_bytes("v3/a/a.nuspec", b"x", "j")
    storage.put_bytes("v3/a/a.nuspec", b"x", "j")  # once only
    storage.fail("delete", PowerCut())
    with pytest.raises(PowerCut):
        storage.delete("v3/a/a.nupkg")
    with pytest.raises(PowerCut):
        storage.get_bytes("v3/a/a.nupkg")  # dead until it restarts
    storage.heal()
    assert storage.get_bytes("v3/a/a.nupkg") == b"x"
