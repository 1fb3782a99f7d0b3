"""Helpers of the production-setup tests: S3 settings, stored blobs, raw pushes, listed versions."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from support.s3 import CREDENTIALS, S3Server
from support.server import NugatServer

SETUPS = ("sqlite", "postgres", "postgres-s3")
NO_PUSH_LIMIT = {"NUGAT_PUSH_LIMIT_PER_HOUR": "1000000"}


def s3_env(s3: S3Server, bucket: str, **params: str) -> dict[str, str]:
    return {**CREDENTIALS, "NUGAT_STORAGE_URL": s3.storage_url(bucket, **params)}


def stored_keys(server: NugatServer, s3: S3Server | None, prefix: str) -> set[str]:
    """Every blob the server stored below ``prefix``, on its disk or in its bucket."""
    url = server.env.get("NUGAT_STORAGE_URL")
    if url is None:
        root = server.data_dir / "storage"
        return {p.relative_to(root).as_posix() for p in (root / prefix).rglob("*") if p.is_file()}
    assert s3 is not None
    bucket, _, rest = url.removeprefix("s3://").partition("/")
    feed = rest.split("?")[0]
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{feed}/{prefix}")
    return {item["Key"].removeprefix(f"{feed}/") for page in pages for item in page.get("Contents", [])}


def push(server: NugatServer, key: str, body: bytes, client: httpx.Client | None = None) -> httpx.Response:
    """A raw-body push, as the dotnet client's HttpClient could send it."""
    headers = {"X-NuGet-ApiKey": key, "Content-Type": "application/octet-stream"}
    http = client or httpx
    return http.put(f"{server.url}/api/v2/package/", content=body, headers=headers, timeout=120)


def versions_everywhere(server: NugatServer, package_id: str) -> dict[str, list[str]]:
    """The versions the flat container and both registration hives list for an id."""
    id_lower = package_id.lower()
    found = {"flat": server.get_json(f"/v3/flatcontainer/{id_lower}/index.json")["versions"]}
    for hive in ("registration", "registration-semver2"):
        index = server.get_json(f"/v3/{hive}/{id_lower}/index.json")
        leaves = []
        for page in index["items"]:
            items = page.get("items") or httpx.get(page["@id"], timeout=30).json()["items"]
            leaves += [leaf["catalogEntry"]["version"] for leaf in items]
        found[hive] = leaves
    return found


NGINX_INCLUDE = Path(__file__).resolve().parents[2] / "docs" / "nginx" / "nugat.conf"
DOCUMENTED_ROOT = "/var/lib/nugat/storage"  # the data folder the include names, replaced by the test's


@contextlib.contextmanager
def running_nginx(
    folder: Path, nugat: NugatServer, port: int, include_file: Path = NGINX_INCLUDE
) -> Iterator[str]:
    """nginx on 127.0.0.1:``port`` with the documented configuration (docs/nginx/nugat.conf, or
    ``include_file``) in front of ``nugat``, serving its data folder's storage; yields its URL."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    folder.mkdir(parents=True, exist_ok=True)
    include = folder / "nugat.conf"
    include.write_text(include_file.read_text().replace(DOCUMENTED_ROOT, str(nugat.data_dir / "storage")))
    config = folder / "nginx.conf"
    config.write_text(
        f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    limit_conn_zone $binary_remote_addr zone=nugat_per_client:10m;
    proxy_cache_path {folder}/reads keys_zone=nugat_reads:1m max_size=16m inactive=10s;
    upstream nugat {{ server {nugat.url.removeprefix("http://")}; keepalive 8; keepalive_timeout 5s; }}
    server {{
        listen 127.0.0.1:{port};
        include {include};
    }}
}}
"""
    )
    log = (folder / "stderr.log").open("w")
    proc = subprocess.Popen(
        [nginx, "-p", str(folder), "-c", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"nginx exited with {proc.returncode}: {(folder / 'stderr.log').read_text()}"
                )
            try:
                httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not answer within 15 s") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
