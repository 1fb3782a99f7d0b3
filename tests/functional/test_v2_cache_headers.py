"""The V2 feed's caching headers: its answers name the request's host as the V3 documents do (without
NUGAT_PUBLIC_URL), so they carry the same ``Vary``, and an explicit ``Cache-Control`` as the V3 answers
they stand for (``private, no-cache`` read with a credential)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from functional.test_feed_http import nupkg, push
from nugat.app import create_app
from nugat.core import Core
from nugat.settings import Settings

# Every V2 answer that names a URL of the feed, and the download redirect (which names the package's).
V2_URLS = [
    "/api/v2/",
    "/api/v2/FindPackagesById()?id='Contoso.Core'",
    "/api/v2/Search()?searchTerm='contoso'",
    "/api/v2/Packages()",
    "/api/v2/GetUpdates()?packageIds='Contoso.Core'&versions='1.0.0'",
    "/api/v2/Packages(Id='Contoso.Core',Version='1.1.0')",
    "/api/v2/package/Contoso.Core",
    "/api/v2/package/Contoso.Core/1.0.0",
]
CACHE = {
    "/api/v2/": "no-cache",
    "/api/v2/$metadata": "no-cache",
    "/api/v2/FindPackagesById()?id='Contoso.Core'": "public, max-age=60",
    "/api/v2/FindPackagesById()/$count?id='Contoso.Core'": "public, max-age=60",
    "/api/v2/Search()?searchTerm='contoso'": "no-cache",
    "/api/v2/Search()/$count?searchTerm='contoso'": "no-cache",
    "/api/v2/Packages()": "no-cache",
    "/api/v2/GetUpdates()?packageIds='Contoso.Core'&versions='1.0.0'": "no-cache",
    "/api/v2/GetUpdates()/$count?packageIds='Contoso.Core'&versions='1.0.0'": "no-cache",
    "/api/v2/Packages(Id='Contoso.Core',Version='1.1.0')": "public, max-age=60",
    "/api/v2/package/Contoso.Core": "no-cache",
    "/api/v2/package/Contoso.Core/1.0.0": "no-cache",
}


def _named_urls(response: httpx.Response) -> str:
    return response.headers.get("location", "") + response.text


def _varies(response: httpx.Response) -> list[str]:
    """What an answer's body depends on in the request, but its encoding."""
    varies = [v.strip().lower() for v in response.headers.get("vary", "").split(",")]
    return [v for v in varies if v and v != "accept-encoding"]


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[TestClient]:
    with _site(tmp_path) as (client, _):
        yield client


def test_v2_answers_built_from_the_host_vary_with_it_as_v3_documents_do(feed: TestClient) -> None:
    """Without NUGAT_PUBLIC_URL the V2 answers name the request's host, as the V3 documents do: a shared
    cache must not give one host's answer (an evil.example the attacker sent) to another."""
    v3 = feed.get("/v3/registration/contoso.core/index.json", headers={"host": "evil.example:1"})
    assert "host" in _varies(v3)
    for path in V2_URLS:
        answer = feed.get(path, headers={"host": "evil.example:1"}, follow_redirects=False)
        assert answer.status_code in (200, 302), path
        assert "http://evil.example:1/" in _named_urls(answer), path
        assert _varies(answer) == _varies(v3) == ["host"], path
    for path, cache in CACHE.items():
        assert feed.get(path, follow_redirects=False).headers["cache-control"] == cache, path


def test_behind_a_trusted_proxy_v2_answers_vary_as_v3_documents_do(tmp_path: Path) -> None:
    with _site(tmp_path, trust_forwarded=True) as (feed, _):
        v3 = _varies(feed.get("/v3/registration/contoso.core/index.json"))
        assert v3 == ["host", "x-forwarded-host", "x-forwarded-proto"]
        for path in V2_URLS:
            assert _varies(feed.get(path, follow_redirects=False)) == v3, path


def test_with_a_public_url_v2_answers_name_it_and_do_not_vary(tmp_path: Path) -> None:
    with _site(tmp_path, public_url="https://nuget.example.test") as (feed, _):
        assert _varies(feed.get("/v3/registration/contoso.core/index.json")) == []
        for path in V2_URLS:
            answer = feed.get(path, headers={"host": "evil.example:1"}, follow_redirects=False)
            assert "https://nuget.example.test/" in _named_urls(answer), path
            assert "evil.example" not in _named_urls(answer), path
            assert _varies(answer) == [], path
        for path, cache in CACHE.items():
            assert feed.get(path, follow_redirects=False).headers["cache-control"] == cache, path


def test_v2_answers_read_with_a_credential_are_private_as_v3_ones(tmp_path: Path) -> None:
    with _site(tmp_path, read_access="users") as (feed, key):
        v3 = feed.get("/v3/registration/contoso.core/index.json", auth=("any", key))
        assert v3.headers["cache-control"] == "private, no-cache"
        for path in [p for p in CACHE if p not in ("/api/v2/", "/api/v2/$metadata")]:
            answer = feed.get(path, auth=("any", key), follow_redirects=False)
            assert answer.status_code in (200, 302), path
            assert answer.headers["cache-control"] == "private, no-cache", path
            # a download read with a credential is the .nupkg itself (test_private_reads), naming no URL
            names_urls = path in V2_URLS and path != "/api/v2/package/Contoso.Core/1.0.0"
            assert _varies(answer) == (_varies(v3) if names_urls else []), path
            assert feed.get(path, follow_redirects=False).status_code == 401, path


@contextlib.contextmanager
def _site(tmp_path: Path, **settings: Any) -> Iterator[tuple[TestClient, str]]:
    """A feed with Contoso.Core 1.0.0 and 1.1.0 (alice's), under these settings, and alice's read key."""
    config = Settings(data_dir=tmp_path, secret_key="v2-headers", **settings)
    core = Core(config)
    core.db.upgrade()
    core.accounts.create_user("alice", "alice@example.test", None)
    _, key = core.accounts.create_key("alice", "k", ["push"], ["*"], [], 30)
    _, read_key = core.accounts.create_key("alice", "r", ["read"], ["*"], [], 30)
    core.close()
    with TestClient(create_app(config), base_url="http://feed.test") as client:
        for version in ("1.0.0", "1.1.0"):
            assert push(client, key, nupkg("Contoso.Core", version)) == 201
        yield client, read_key


@pytest.mark.parametrize("path", ["/v3/index.json", "/v3/search?q=contoso"])
def test_v3_answers_computed_per_request_vary_with_the_host_too(feed: TestClient, path: str) -> None:
    answer = feed.get(path, headers={"host": "evil.example:1"})
    assert "http://evil.example:1/" in answer.text
    assert _varies(answer) == ["host"]
    assert answer.headers["cache-control"] == "no-cache"


def test_v3_answers_computed_per_request_do_not_vary_with_a_public_url(tmp_path: Path) -> None:
    with _site(tmp_path, public_url="https://nuget.example.test") as (feed, _):
        for path in ("/v3/index.json", "/v3/search?q=contoso"):
            answer = feed.get(path, headers={"host": "evil.example:1"})
            assert "evil.example" not in answer.text and _varies(answer) == [], path
