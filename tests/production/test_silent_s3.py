"""S3 stops answering: requests needing it fail (StorageError, a 503) within a bounded time instead of
botocore's default ~4 minutes, and work again once it answers. The bucket (moto) is reached through a
proxy the test silences; the URL's timeouts are shortened so that the test stays short."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nugat.storage.base import StorageError
from nugat.storage.s3 import CLIENT_DEFAULTS, S3Storage
from production.helpers import s3_env
from support.s3 import CREDENTIALS, S3Server
from support.server import running_server
from support.silentproxy import silent_proxy

pytestmark = pytest.mark.e2e

FAST = {"connect_timeout": "1", "read_timeout": "2", "attempts": "2"}
BOUND = 2 * 2 + 6.0  # two attempts of 2 s each, the back-off between them, margin for a loaded host


def through(s3: S3Server, port: int) -> S3Server:
    return S3Server(f"http://127.0.0.1:{port}")


def storage_of(s3: S3Server, bucket: str, **params: str) -> S3Storage:
    keys = {
        "access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }
    return S3Storage.from_url(s3.storage_url(bucket, **keys, **params))


def test_defaults_bound_a_silent_s3_and_the_url_overrides_them(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    config = S3Storage.from_url(s3_server.storage_url(bucket)).client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (5, 20)
    assert config.retries == {"total_max_attempts": 2, "mode": "standard"}
    assert CLIENT_DEFAULTS["read_timeout"] * CLIENT_DEFAULTS["attempts"] < 60  # nginx's proxy_read_timeout
    config = S3Storage.from_url(s3_server.storage_url(bucket, **FAST)).client.meta.config
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (1, 2, 2)
    for bad in ({"read_timeout": "0"}, {"connect_timeout": "x"}, {"attempts": "1.5"}):
        with pytest.raises(StorageError):
            S3Storage.from_url(s3_server.storage_url(bucket, **bad))


def test_a_silent_s3_fails_fast_then_recovers(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    with silent_proxy(("127.0.0.1", port)) as proxy:
        storage = storage_of(through(s3_server, proxy.port), bucket, **FAST)
        storage.put_bytes("a.txt", b"a", "text/plain")
        proxy.silence()
        for what, call in [
            ("read", lambda: storage.get_bytes("a.txt")),
            ("write", lambda: storage.put_bytes("b.txt", b"b", "text/plain")),
            ("check", storage.check),
        ]:
            start = time.monotonic()
            with pytest.raises(StorageError):
                call()
            assert time.monotonic() - start < BOUND, what
        proxy.passing()
        assert storage.get_bytes("a.txt") == b"a"
        storage.check()


def test_a_server_on_a_silent_s3_answers_503_in_bounded_time(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.new_bucket()
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    with silent_proxy(("127.0.0.1", port)) as proxy:
        env = s3_env(through(s3_server, proxy.port), bucket, **FAST)
        with running_server(tmp_path / "data", extra_env=env) as server:
            assert server.get("/health").status_code == 200
            proxy.silence()
            start = time.monotonic()
            resp = server.get("/health")
            assert (resp.status_code, resp.json().get("storage")) == (503, "StorageError")
            assert time.monotonic() - start < BOUND
            proxy.passing()
            deadline = time.monotonic() + 15
            while server.get("/health").status_code != 200:
                assert time.monotonic() < deadline, "the server did not recover"
                time.sleep(0.3)


def test_abort_stale_uploads(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    storage = storage_of(s3_server, bucket)
    client = s3_server.client()
    mine = client.create_multipart_upload(Bucket=bucket, Key="feed/v3/x.nupkg")["UploadId"]
    client.upload_part(Bucket=bucket, Key="feed/v3/x.nupkg", UploadId=mine, PartNumber=1, Body=b"x" * 100)
    other = client.create_multipart_upload(Bucket=bucket, Key="elsewhere/y.nupkg")["UploadId"]
    begun = client.list_multipart_uploads(Bucket=bucket)["Uploads"][0]["Initiated"].timestamp()
    # (moto dates every upload alike, in 2010: the ages are measured from a time after that)
    assert storage.abort_stale_uploads(older_than=3600, now=begun + 60) == 0  # begun a minute ago
    assert storage.abort_stale_uploads(older_than=3600, now=begun + 7200) == 1
    left = {u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}
    assert left == {other}  # another prefix's upload is not this storage's
    assert storage.abort_stale_uploads(older_than=0) == 0
