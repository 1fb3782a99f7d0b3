"""A content origin of its own (``NUGAT_CONTENT_URL``, issue 10, item 1): the flat container and the
registration documents, and every URL in them, are on that host, which serves nothing else, never sets a
cookie and ignores any it is sent.

The server listens on 127.0.0.1; its content host is ``localhost`` on the same port (another host name,
so browsers keep the cookies apart). It first runs without a content origin, then restarts with one:
the documents stored before are rewritten for the new base URL at that start.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hostile.harness import Feed
from support.hostile_files import file_paths, hostile_package
from support.server import TEST_PASSWORD, NugatServer, free_port, running_server, user_key
from support.zips import package

LOCKED_DOWN_POLICY = "default-src 'none'; sandbox"
CONTENT_RESOURCES = ("PackageBaseAddress", "RegistrationsBaseUrl", "ReadmeUriTemplate")


class Origins:
    def __init__(self, server: NugatServer, port: int) -> None:
        self.server = server
        self.main = f"http://127.0.0.1:{port}"
        self.content = f"http://localhost:{port}"


@pytest.fixture(scope="module")
def origins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origins]:
    port = free_port()
    data_dir = tmp_path_factory.mktemp("content-origin")
    main = {"NUGAT_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    with running_server(data_dir, extra_env=main, port=port) as before:
        key = user_key(before, "carol", ["push"])
        assert Feed(before, key).push(package("Before.Content")).status_code == 201
    content = {**main, "NUGAT_CONTENT_URL": f"http://localhost:{port}"}
    with running_server(data_dir, extra_env=content, port=port) as server:
        server.users.add("carol")
        assert "ids rewritten" in server.log_path.read_text()
        feed = Feed(server, key)
        assert feed.push(hostile_package("Content.Pkg")).status_code == 201
        deps = package(
            "Content.App", extra='<dependencies><dependency id="Content.Pkg" version="1.0.0"/></dependencies>'
        )
        assert feed.push(deps).status_code == 201
        feed.close()
        yield Origins(server, port)


def urls_in(doc: Any) -> list[str]:
    if isinstance(doc, dict):
        return [u for v in doc.values() for u in urls_in(v)]
    if isinstance(doc, list):
        return [u for v in doc for u in urls_in(v)]
    return [doc] if isinstance(doc, str) and doc.startswith("http") else []


def test_the_service_index_puts_package_content_on_the_content_host(origins: Origins) -> None:
    index = httpx.get(f"{origins.main}/v3/index.json", timeout=30).json()
    for resource in index["resources"]:
        content = resource["@type"].startswith(CONTENT_RESOURCES)
        assert resource["@id"].startswith(f"{origins.content if content else origins.main}/"), resource
    assert httpx.get(f"{origins.content}/v3/index.json", timeout=30).status_code == 404


@pytest.mark.parametrize("package_id", ["Content.App", "Content.Pkg", "Before.Content"])
@pytest.mark.parametrize("hive", ["registration", "registration-semver2"])
def test_every_url_in_the_documents_is_on_the_content_host(
    origins: Origins, package_id: str, hive: str
) -> None:
    """Documents stored before the content origin was set were rewritten when the server started."""
    index_url = f"{origins.content}/v3/{hive}/{package_id.lower()}/index.json"
    index = httpx.get(index_url, timeout=30).json()
    leaf = index["items"][0]["items"][0]
    found = urls_in(index) + urls_in(httpx.get(leaf["@id"], timeout=30).json())
    found = [u for u in found if not u.startswith(("http://schema.nuget.org/", "http://www.w3.org/"))]
    assert found and all(u.startswith(f"{origins.content}/") for u in found), found
    for url in {u.split("#")[0] for u in found}:  # they all answer, from the content host
        assert httpx.get(url, timeout=30).status_code == 200, url


def test_search_and_v2_downloads_point_at_the_content_host(origins: Origins) -> None:
    hit = httpx.get(f"{origins.main}/v3/search", params={"q": "packageid:Content.Pkg"}, timeout=30).json()[
        "data"
    ][0]
    assert urls_in({"registration": hit["registration"], "versions": hit["versions"]})
    assert all(
        u.startswith(f"{origins.content}/")
        for u in [hit["registration"]] + [v["@id"] for v in hit["versions"]]
    )
    download = httpx.get(f"{origins.main}/api/v2/package/Content.Pkg/1.0.0", timeout=30)
    assert download.status_code == 302
    assert (
        download.headers["location"]
        == f"{origins.content}/v3/flatcontainer/content.pkg/1.0.0/content.pkg.1.0.0.nupkg"
    )


@pytest.fixture(scope="module")
def cookies(origins: Origins) -> dict[str, str]:
    """A real session's cookies (from the main host), to send where they do not belong."""
    with httpx.Client(base_url=origins.main, timeout=30) as client:
        form = client.get("/signin")
        csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        answer = client.post(
            "/signin",
            data={"login": "carol", "password": TEST_PASSWORD, "csrf": csrf, "next": "/"},
        )
        assert answer.status_code == 303, answer.text[:300]
        assert client.get("/account/apikeys").status_code == 200
        return dict(client.cookies)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/signin"),
        ("POST", "/signin"),
        ("GET", "/account/apikeys"),
        ("GET", "/account/apikeys/new"),
        ("GET", "/packages/Content.Pkg"),
        ("GET", "/static/site.js"),
        ("GET", "/v3/index.json"),
        ("GET", "/v3/search"),
        ("GET", "/api/v2/Packages()"),
        ("GET", "/api/v2/package/Content.Pkg/1.0.0"),
        ("PUT", "/api/v2/package/"),
        ("GET", "/health"),
        ("GET", "/metrics"),
    ],
)
def test_the_content_host_has_no_pages_and_no_cookies(
    origins: Origins, cookies: dict[str, str], method: str, path: str
) -> None:
    resp = httpx.request(method, origins.content + path, cookies=cookies, timeout=30)
    assert resp.status_code == 404, (path, resp.status_code)
    assert "set-cookie" not in resp.headers
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["content-security-policy"] == LOCKED_DOWN_POLICY


def test_a_push_to_the_content_host_stores_nothing(origins: Origins) -> None:
    key = user_key(origins.server, "carol", ["push"])
    feed = Feed(origins.server, key)
    try:
        before = feed.snapshot()
        files = {"package": ("package.nupkg", package("Content.Pushed"), "application/octet-stream")}
        resp = httpx.put(
            f"{origins.content}/api/v2/package/", files=files, headers={"X-NuGet-ApiKey": key}, timeout=30
        )
        assert resp.status_code == 404
        feed.assert_nothing_stored(before)
    finally:
        feed.close()


@pytest.mark.parametrize("name", list(file_paths("Content.Pkg")))
def test_the_content_host_serves_package_files_without_cookies(
    origins: Origins, cookies: dict[str, str], name: str
) -> None:
    path = file_paths("Content.Pkg")[name]
    for base in (origins.content, origins.main):  # the main host keeps serving them (older clients)
        resp = httpx.get(base + path, cookies=cookies, timeout=30)
        assert resp.status_code == 200, (base, path, resp.status_code)
        assert "set-cookie" not in resp.headers
        assert resp.headers["content-security-policy"] == LOCKED_DOWN_POLICY
        assert "host" not in resp.headers.get("vary", "").lower()  # fixed URLs: nothing varies by host
        if path.endswith(".json"):
            assert origins.main not in resp.text and "@@" not in resp.text
            json.loads(resp.text)
