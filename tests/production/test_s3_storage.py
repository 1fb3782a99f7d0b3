"""The S3 backend against a local S3-protocol server (moto), through the same boto3 calls it makes on AWS."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import httpx
import pytest

from nugat.storage import StorageError, open_storage
from nugat.storage.s3 import S3Storage
from support.s3 import CREDENTIALS, S3Server


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()


def s3_storage(s3_server: S3Server, bucket: str, **params: str) -> S3Storage:
    storage = open_storage(s3_server.storage_url(bucket, **params))
    assert isinstance(storage, S3Storage)
    return storage


class HeadCounter:
    """Counts the HEAD requests a storage's client sends (the read path's cost on S3)."""

    def __init__(self, storage: S3Storage) -> None:
        self.count = 0
        storage.client.meta.events.register("before-call.s3.HeadObject", self._seen)

    def _seen(self, **_: object) -> None:
        self.count += 1


def test_blobs_round_trip(s3_server: S3Server, bucket: str) -> None:
    storage = s3_storage(s3_server, bucket)
    key = "v3/flatcontainer/a.b/index.json"
    assert storage.get_bytes(key) is None and storage.info(key) is None and not storage.exists(key)
    storage.put_bytes(key, b'{"versions":["1.0.0"]}', "application/json")
    assert storage.get_bytes(key) == b'{"versions":["1.0.0"]}'
    assert storage.exists(key)
    info = storage.info(key)
    assert info is not None and info.size == 22 and abs(info.modified - time.time()) < 300
    assert storage.get_with_info(key) == (b'{"versions":["1.0.0"]}', info)  # a GET tells what a HEAD does
    # stored below the URL's prefix, with its content type
    head = s3_server.client().head_object(Bucket=bucket, Key=f"feed/{key}")
    assert head["ContentType"] == "application/json"
    storage.put_bytes(key, b'{"versions":["1.0.0","2.0.0"]}', "application/json")
    changed = storage.info(key)
    assert changed is not None and changed.token != info.token
    storage.delete(key)
    storage.delete(key)  # deleting what is gone is fine
    assert storage.get_bytes(key) is None and storage.info(key) is None
    assert storage.get_with_info(key) is None
    with pytest.raises(ValueError):
        storage.put_bytes("v3/../secret", b"x", "text/plain")


def test_listing_is_by_folder_not_by_name_prefix(s3_server: S3Server, bucket: str) -> None:
    storage = s3_storage(s3_server, bucket)
    for key in (
        "v3/registration/foo/index.json",
        "v3/registration/foo/1.0.0.json",
        "v3/registration/foo.bar/index.json",
    ):
        storage.put_bytes(key, b"{}", "application/json")
    # The materializer deletes what it does not want under an id's folder: a sibling id must not be listed.
    assert sorted(storage.list_keys("v3/registration/foo")) == [
        "v3/registration/foo/1.0.0.json",
        "v3/registration/foo/index.json",
    ]
    assert len(list(storage.list_keys(""))) == 3
    other = s3_storage(s3_server, bucket, prefix="other")  # another feed in the same bucket
    assert list(other.list_keys("")) == []


def test_a_large_package_uploads_in_parts_and_streams_back(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "big.nupkg"
    source.write_bytes(os.urandom(20 << 20))  # above the 8 MB multipart threshold
    storage = s3_storage(s3_server, bucket)
    key = "v3/flatcontainer/big/1.0.0/big.1.0.0.nupkg"
    storage.put_file(key, source, "application/octet-stream")
    info = storage.info(key)
    assert info is not None and info.size == 20 << 20
    digest = hashlib.sha256()
    chunks = 0
    for chunk in storage.read_chunks(key, 1 << 20):
        digest.update(chunk)
        chunks += 1
    assert digest.hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()
    assert chunks >= 20  # streamed, not read whole
    with pytest.raises(StorageError):
        list(storage.read_chunks("v3/flatcontainer/big/9.9.9/big.9.9.9.nupkg"))


def test_info_costs_one_head_per_ttl_and_sees_changes_by_others_after_it(
    s3_server: S3Server, bucket: str
) -> None:
    reader = s3_storage(s3_server, bucket, cache_seconds="1")
    writer = s3_storage(s3_server, bucket, cache_seconds="1")  # another process or host
    heads = HeadCounter(reader)
    key = "v3/flatcontainer/ttl/index.json"
    assert reader.cached_info(key) is False  # never asked: the read path must ask in a thread
    assert reader.info(key) is None
    for _ in range(200):
        assert reader.cached_info(key) is None
    assert heads.count == 1
    writer.put_bytes(key, b"{}", "application/json")
    assert writer.info(key) is not None  # a process sees its own writes at once
    deadline = time.monotonic() + 5
    while reader.cached_info(key) is None:  # ... others within cache_seconds
        assert time.monotonic() < deadline, "another process's write was not seen within 5 s"
        time.sleep(0.05)
    assert reader.cached_info(key) is False
    assert reader.info(key) is not None
    assert heads.count == 2


def test_own_writes_and_deletes_are_seen_at_once(s3_server: S3Server, bucket: str) -> None:
    storage = s3_storage(s3_server, bucket, cache_seconds="60")
    key = "v3/registration/own/index.json"
    assert storage.info(key) is None
    storage.put_bytes(key, b"{}", "application/json")
    first = storage.info(key)
    assert first is not None
    storage.put_bytes(key, b'{"count":1}', "application/json")
    second = storage.info(key)
    assert second is not None and second.token != first.token
    storage.delete(key)
    assert storage.info(key) is None


def test_cache_seconds_zero_asks_every_time(s3_server: S3Server, bucket: str) -> None:
    storage = s3_storage(s3_server, bucket, cache_seconds="0")
    heads = HeadCounter(storage)
    for _ in range(3):
        assert storage.cached_info("v3/flatcontainer/x/index.json") is False
        storage.info("v3/flatcontainer/x/index.json")
    assert heads.count == 3


def test_redirect_gives_a_working_presigned_url(s3_server: S3Server, bucket: str) -> None:
    key = "v3/flatcontainer/r/1.0.0/r.1.0.0.nupkg"
    plain = s3_storage(s3_server, bucket)
    plain.put_bytes(key, b"PK-package-bytes", "application/octet-stream")
    assert plain.download_url(key) is None
    redirecting = s3_storage(s3_server, bucket, redirect="1")
    url = redirecting.download_url(key)
    assert url is not None and "Signature=" in url
    assert redirecting.download_url(key) == url  # presigned once, reused
    assert httpx.get(url, timeout=30).content == b"PK-package-bytes"


def test_unreachable_storage_raises_storage_error(s3_server: S3Server, bucket: str) -> None:
    s3_storage(s3_server, bucket).check()
    with pytest.raises(StorageError):
        s3_storage(s3_server, "nugat-no-such-bucket").check()
    gone = S3Storage.from_url(f"s3://{bucket}/feed?endpoint_url=http://127.0.0.1:9&region=us-east-1")
    for call in (
        gone.check,
        lambda: gone.get_bytes("a/b"),
        lambda: gone.put_bytes("a/b", b"x", "text/plain"),
    ):
        with pytest.raises(StorageError):
            call()


@pytest.mark.parametrize(
    "url", ["s3:///prefix", "s3://bucket/p?addressing_style=sideways"], ids=["no-bucket", "bad-style"]
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(StorageError):
        open_storage(url)
