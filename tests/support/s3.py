"""A local S3-protocol server for the S3 storage tests: moto's server mode on a free 127.0.0.1 port.

nugat talks to it with boto3 exactly as it talks to AWS or MinIO (real HTTP, real SigV4 signatures);
only the endpoint differs.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import httpx

from .server import free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "nugat-test",
    "AWS_SECRET_ACCESS_KEY": "nugat-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def client(self) -> S3Client:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def new_bucket(self) -> str:
        name = f"nugat-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def storage_url(self, bucket: str, prefix: str = "feed", **params: str) -> str:
        query = "&".join(
            f"{k}={v}"
            for k, v in {
                "endpoint_url": self.endpoint,
                "region": "us-east-1",
                "addressing_style": "path",
                **params,
            }.items()
        )
        return f"s3://{bucket}/{prefix}?{query}"


@contextlib.contextmanager
def moto_server(log_dir: Path, timeout: float = 30.0) -> Iterator[S3Server]:
    """Start ``moto_server`` on 127.0.0.1; stop it afterwards. Raises (never skips) if it does not come up."""
    port = free_port()
    log = (log_dir / f"moto-{port}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {proc.returncode}; see {log.name}")
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not answer within {timeout} s") from None
                time.sleep(0.1)
        yield S3Server(endpoint)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
