"""Helpers of the production-setup tests: S3 settings, stored blobs, raw pushes, listed versions."""

from __future__ import annotations

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
