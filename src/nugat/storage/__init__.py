"""Package and document storage: a small interface with a filesystem and an S3 backend."""

from __future__ import annotations

from nugat.storage.base import BlobInfo, Storage, StorageError, check_key


def open_storage(url: str) -> Storage:
    """``file:///path`` (the embedded default) or ``s3://bucket/prefix?endpoint_url=…&region=…``."""
    if url.startswith("s3://"):
        from nugat.storage.s3 import S3Storage

        return S3Storage.from_url(url)
    if url.startswith("file://"):
        from nugat.storage.filesystem import FileSystemStorage

        return FileSystemStorage(url.removeprefix("file://"))
    raise StorageError(f"unsupported storage URL {url!r}: use file:///path or s3://bucket/prefix")


__all__ = ["BlobInfo", "Storage", "StorageError", "check_key", "open_storage"]
