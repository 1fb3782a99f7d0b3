"""S3-compatible object storage (AWS S3, MinIO, Ceph, ...) through boto3.

Writes are atomic by nature: S3 makes an object visible only once its PUT (or multipart upload) is
complete, so readers see the old blob or the new one, never a part.

The read path asks for a blob's ``info`` on every restore request, and a HEAD per request would put an
S3 round trip in front of every answer. So each process remembers what HEAD said, for
``cache_seconds`` (``NUGAT_S3_CACHE_SECONDS``, default 1; 0 asks S3 every time):

* a change made by this process is seen by it at once (its writes and deletes drop the entry);
* a change made by another process or host is seen within ``cache_seconds``; the NuGet clients keep
  their own HTTP cache for 30 minutes, so a second is far below what a user can notice;
* a hot document costs at most one HEAD per ``cache_seconds`` per process, whatever the request rate.

A per-bucket "generation" object that every writer bumps would shorten the cross-process delay further,
but it doubles the PUTs of every push and still needs a polling interval: the TTL alone is simpler.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from nugat.settings import BOOLEAN_WORDS, parse_bool
from nugat.storage.base import BlobInfo, Storage, StorageError, check_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_CACHED = 100_000
PRESIGN_SECONDS = 3600
# Multipart uploads read one part per thread into memory: 2 x 8 MB bounds a push's extra RSS.
TRANSFER = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=2)
_MISSING = {"404", "NoSuchKey", "NotFound"}
Style = Literal["auto", "virtual", "path"]
_STYLES: dict[str, Style] = {"auto": "auto", "virtual": "virtual", "path": "path"}
# The storage URL's query parameters (``from_url``): any other is refused.
PARAMETERS = frozenset(
    [
        "endpoint_url",
        "region",
        "addressing_style",
        "redirect",
        "cache_seconds",
        "access_key_id",
        "secret_access_key",
        "connect_timeout",
        "read_timeout",
        "attempts",
    ]
)


def _info(response: Any) -> BlobInfo:
    """What HEAD and GET answers say about an object (the token is the same from either)."""
    return BlobInfo(
        f"{response['ETag'].strip(chr(34))}-{response['ContentLength']:x}",
        int(response["ContentLength"]),
        response["LastModified"].timestamp(),
    )


def _seconds(text: str, name: str) -> float:
    """``cache_seconds``: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        raise StorageError(f"{name} is a number of seconds, 0 or more, not {text!r}")
    return value


CLIENT_DEFAULTS = {"connect_timeout": 5.0, "read_timeout": 20.0, "attempts": 2.0}
"""How long S3 may stay silent, each overridable in the storage URL (``?read_timeout=30&attempts=3``).
``connect_timeout``: seconds to open a connection. ``read_timeout``: seconds a request may make no
progress (sending a part or waiting for the answer; an 8 MB part takes under a second at 100 Mbit/s).
``attempts``: tries of one request, the first included. A silent S3 then fails a request (503) within
2 x 20 s plus a short back-off, under nginx's default 60 s ``proxy_read_timeout``, where botocore's
defaults (60 s, 4 attempts) took about 4 minutes while a push held its database transaction."""


def _setting(params: dict[str, str], name: str) -> float:
    text = params.get(name)
    if text is None:
        return CLIENT_DEFAULTS[name]
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600 or (name == "attempts" and not value.is_integer()):
        kind = "a whole number, 1 or more" if name == "attempts" else "a number of seconds above 0"
        raise StorageError(f"{name} is {kind}, not {text!r}")
    return value


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING


class S3Storage(Storage):
    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str = "",
        *,
        cache_seconds: float = 1.0,
        redirect: bool = False,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.cache_seconds = cache_seconds
        self.redirect = redirect
        self._infos: dict[str, tuple[float, BlobInfo | None]] = {}
        self._urls: dict[str, tuple[float, str]] = {}

    @classmethod
    def from_url(cls, url: str) -> S3Storage:
        """``s3://bucket/prefix?endpoint_url=&region=&addressing_style=path&redirect=1&cache_seconds=``.

        Credentials come from the usual AWS variables and files, or ``access_key_id`` and
        ``secret_access_key`` parameters. ``redirect=1`` answers package downloads with a redirect to a
        presigned URL of the bucket instead of passing the bytes through nugat.
        """
        parts = urlsplit(url)
        if not parts.netloc:
            raise StorageError("an S3 storage URL names its bucket: s3://bucket/prefix")
        given = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(given) - PARAMETERS)
        if unknown:  # a misspelt endpoint_url would send everything to AWS itself
            known = ", ".join(sorted(PARAMETERS))
            raise StorageError(f"unknown S3 storage URL parameter {', '.join(unknown)}: known are {known}")
        params = {k: v[-1] for k, v in given.items() if v[-1]}
        cache = (
            _seconds(params["cache_seconds"], "cache_seconds")
            if "cache_seconds" in params
            else _seconds(os.environ.get("NUGAT_S3_CACHE_SECONDS") or "1", "NUGAT_S3_CACHE_SECONDS")
        )
        redirect = parse_bool(params.get("redirect", "false"))
        if redirect is None:
            raise StorageError(f"redirect is {BOOLEAN_WORDS}, not {params['redirect']!r}")
        style = _STYLES.get(params.get("addressing_style", "auto"))
        if style is None:
            raise StorageError("addressing_style is auto, virtual or path")
        config = Config(
            region_name=params.get("region") or None,
            s3={"addressing_style": style},
            retries={"total_max_attempts": int(_setting(params, "attempts")), "mode": "standard"},
            connect_timeout=_setting(params, "connect_timeout"),
            read_timeout=_setting(params, "read_timeout"),
            max_pool_connections=32,
        )
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=params.get("endpoint_url") or None,
            aws_access_key_id=params.get("access_key_id") or None,
            aws_secret_access_key=params.get("secret_access_key") or None,
            config=config,
        )
        return cls(client, parts.netloc, parts.path, cache_seconds=cache, redirect=redirect)

    def __repr__(self) -> str:  # never the URL: it may carry credentials
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _forget(self, key: str) -> None:
        self._infos.pop(key, None)

    def _call(self, what: str, key: str, func: Any, **kwargs: Any) -> Any:
        try:
            return func(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise StorageError(f"cannot {what} {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot {what} {key}: {exc}") from exc

    def put_file(self, key: str, source: Path, content_type: str) -> None:
        s3_key = self._key(key)
        try:
            self.client.upload_file(
                str(source), self.bucket, s3_key, ExtraArgs={"ContentType": content_type}, Config=TRANSFER
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot write {key}: {exc}") from exc
        finally:
            self._forget(key)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        s3_key = self._key(key)
        try:
            self._call("write", key, self.client.put_object, Key=s3_key, Body=data, ContentType=content_type)
        finally:
            self._forget(key)

    def get_bytes(self, key: str) -> bytes | None:
        found = self.get_with_info(key)
        return None if found is None else found[0]

    def get_with_info(self, key: str) -> tuple[bytes, BlobInfo] | None:
        response = self._call("read", key, self.client.get_object, Key=self._key(key))
        if response is None:
            return None
        try:
            data = bytes(response["Body"].read())
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {key}: {exc}") from exc
        return data, _info(response)

    def read_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        response = self._call("read", key, self.client.get_object, Key=self._key(key))
        if response is None:
            raise StorageError(f"{key} does not exist")
        try:
            yield from response["Body"].iter_chunks(chunk_size)
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {key}: {exc}") from exc
        finally:
            response["Body"].close()

    def delete(self, key: str) -> None:
        s3_key = self._key(key)
        try:
            self._call("delete", key, self.client.delete_object, Key=s3_key)
        finally:
            self._forget(key)

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def list_keys(self, prefix: str) -> Iterator[str]:
        # As in a folder: the keys below ``prefix/``, never those of a sibling that merely starts alike.
        full = self.prefix + (f"{prefix.strip('/')}/" if prefix.strip("/") else "")
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :]
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot list {prefix}: {exc}") from exc

    def _head(self, key: str) -> BlobInfo | None:
        response = self._call("stat", key, self.client.head_object, Key=self._key(key))
        return None if response is None else _info(response)

    def info(self, key: str) -> BlobInfo | None:
        found = self.cached_info(key)
        if found is not False:
            return found
        result = self._head(key)
        if self.cache_seconds > 0:
            if len(self._infos) >= MAX_CACHED:
                self._infos.clear()  # simple and thread-safe: the hot keys come back within a second
            self._infos[key] = (time.monotonic() + self.cache_seconds, result)
        return result

    def cached_info(self, key: str) -> BlobInfo | Literal[False] | None:
        entry = self._infos.get(key)
        if entry is None or entry[0] < time.monotonic():
            return False
        return entry[1]

    def download_url(self, key: str) -> str | None:
        if not self.redirect:
            return None
        now = time.monotonic()
        cached = self._urls.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        url = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=PRESIGN_SECONDS
        )
        if len(self._urls) >= MAX_CACHED:
            self._urls.clear()
        self._urls[key] = (now + PRESIGN_SECONDS / 2, url)  # reused while it has half its life left
        return url

    def abort_stale_uploads(self, older_than: float, *, now: float | None = None) -> int:
        """Abort the multipart uploads under this prefix begun more than ``older_than`` seconds ago: a
        process killed during a large upload leaves one behind, its parts stored (and billed) but never
        visible. Only call it with a margin above the longest upload (an hour, say): a running upload
        aborted fails. Returns how many were aborted. A bucket lifecycle rule
        (AbortIncompleteMultipartUpload) does the same on S3's side. ``now``: the Unix time ages are
        measured from (the clock's by default)."""
        limit = (time.time() if now is None else now) - older_than
        aborted = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        try:
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"].timestamp() >= limit:
                        continue
                    try:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                    except ClientError as exc:
                        if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
                            continue  # completed or aborted meanwhile
                        raise
                    aborted += 1
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot abort stale uploads: {exc}") from exc
        return aborted

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot reach bucket {self.bucket}: {exc}") from exc
