"""The folder storage: several blobs written at once, each durable and atomic; listing by prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

from nugat.storage.filesystem import FileSystemStorage


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
