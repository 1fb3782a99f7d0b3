"""The feed over HTTP, in process: push, read path caching headers, service index, search, autocomplete."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Hashable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.testclient import TestClient

from nugat import app as app_module
from nugat.app import create_app
from nugat.core import Core
from nugat.db import Database
from nugat.db.models import PackageRegistration, PackageVersion
from nugat.services.search import Search
from nugat.settings import Settings
from support.zips import package


def nupkg(package_id: str, version: str, *, description: str = "A package", tags: str = "") -> bytes:
    """The same bytes for the same arguments (fixed entry times: a test may build one twice to compare)."""
    buf = io.BytesIO()
    when = (2024, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            zipfile.ZipInfo(f"{package_id}.nuspec", when),
            f"""<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"><metadata>
<id>{package_id}</id><version>{version}</version><authors>Ann</authors>
<description>{description}</description><tags>{tags}</tags></metadata></package>""",
        )
        z.writestr(zipfile.ZipInfo("lib/net8.0/a.txt", when), "x")
    return buf.getvalue()


def alice_with_a_key(settings: Settings) -> str:
    """A new feed's database with user alice, and her push and unlist key for every id."""
    core = Core(settings)
    core.db.upgrade()
    core.accounts.create_user("alice", "alice@example.test", None)
    _, key = core.accounts.create_key("alice", "k", ["push", "unlist"], ["*"], [], 30)
    core.close()
    return key


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    settings = Settings(data_dir=tmp_path)
    key = alice_with_a_key(settings)
    with TestClient(create_app(settings), base_url="http://feed.test") as client:
        yield client, key


def push(client: TestClient, key: str, body: bytes, *, multipart: bool = True) -> int:
    if multipart:
        response = client.put(
            "/api/v2/package/",
            files={"package": ("package.nupkg", body, "application/octet-stream")},
            headers={"X-NuGet-ApiKey": key},
        )
    else:
        response = client.put("/api/v2/package", content=body, headers={"X-NuGet-ApiKey": key})
    return response.status_code


def test_service_index_has_the_types_the_client_looks_up(feed: tuple[TestClient, str]) -> None:
    client, _ = feed
    index = client.get("/v3/index.json").json()
    types = {r["@type"]: r["@id"] for r in index["resources"]}
    assert index["version"] == "3.0.0"
    assert types["PackagePublish/2.0.0"] == "http://feed.test/api/v2/package"
    assert types["PackageBaseAddress/3.0.0"] == "http://feed.test/v3/flatcontainer/"
    for t in ("SearchQueryService", "SearchQueryService/3.0.0-beta", "SearchQueryService/3.0.0-rc"):
        assert types[t] == "http://feed.test/v3/search"
    assert types["RegistrationsBaseUrl/3.6.0"] == "http://feed.test/v3/registration-semver2/"
    assert types["RegistrationsBaseUrl/3.4.0"] == "http://feed.test/v3/registration/"
    versioned = next(r for r in index["resources"] if r["@type"] == "RegistrationsBaseUrl/Versioned")
    assert versioned["clientVersion"] == "4.3.0-alpha"
    for suffix in ("/3.0.0", "/3.0.0-beta", "/3.0.0-rc"):  # never nuget.org's page for a private id
        assert types[f"ReportAbuseUriTemplate{suffix}"] == "http://feed.test/packages/{id}/{version}"


def test_multipart_and_raw_pushes_are_served_from_the_read_path(feed: tuple[TestClient, str]) -> None:
    client, key = feed
    assert push(client, key, nupkg("Contoso.Core", "1.0.0")) == 201
    assert push(client, key, nupkg("Contoso.Core", "1.1.0"), multipart=False) == 201
    assert push(client, key, nupkg("Contoso.Core", "1.1")) == 409
    flat = client.get("/v3/flatcontainer/contoso.core/index.json")
    assert flat.json() == {"versions": ["1.0.0", "1.1.0"]}
    assert flat.headers["content-type"].startswith("application/json")
    assert client.get("/v3/flatcontainer/Contoso.Core/1.1.0/Contoso.Core.1.1.0.nupkg").content == nupkg(
        "Contoso.Core", "1.1.0"
    )
    nuspec = client.get("/v3/flatcontainer/contoso.core/1.0.0/contoso.core.nuspec")
    assert b"<id>Contoso.Core</id>" in nuspec.content
    reg = client.get("/v3/registration-semver2/contoso.core/index.json").json()
    assert reg["@id"] == "http://feed.test/v3/registration-semver2/contoso.core/index.json"
    assert "@@" not in json.dumps(reg)


@pytest.mark.parametrize("path", ["/api/v2/", "/api/v2"])
def test_a_push_at_the_v2_feed_root_is_a_push(feed: tuple[TestClient, str], path: str) -> None:
    """NuGet 2.x pushes to the source URL itself; its multipart body (on mono) ends the package part with
    a bare LF before the closing delimiter. The stored package is the package, byte for byte."""
    client, key = feed
    body = nupkg("Legacy.Lib", f"1.0.{len(path)}")
    boundary = "---------------------------8df4e1bb0efdf92"
    envelope = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="package"; filename="package"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    sent = client.put(
        path,
        content=envelope + body + f"\n--{boundary}--".encode(),
        headers={"X-NuGet-ApiKey": key, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert sent.status_code == 201, sent.text
    stored = client.get(f"/v3/flatcontainer/legacy.lib/1.0.{len(path)}/legacy.lib.1.0.{len(path)}.nupkg")
    assert stored.content == body
    # The same refusal as at /api/v2/package/, and GET there is still the feed's service document.
    again = client.put(path, files={"package": ("p.nupkg", body)}, headers={"X-NuGet-ApiKey": key})
    assert (again.status_code, again.text) == (
        409,
        f"Legacy.Lib 1.0.{len(path)} already exists and cannot be modified",
    )
    assert client.get(path).headers["content-type"].startswith("application/xml")


def test_read_path_etag_gzip_head_and_not_found(feed: tuple[TestClient, str]) -> None:
    client, key = feed
    assert push(client, key, nupkg("Contoso.Core", "1.0.0", description="x" * 2000)) == 201
    url = "/v3/registration/contoso.core/index.json"
    first = client.get(url, headers={"accept-encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip"
    etag = first.headers["etag"]
    raw = client.get(url, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.headers["etag"] == etag
    assert int(first.headers["content-length"]) < len(raw.content)  # sent compressed
    assert first.content == raw.content  # httpx decoded it: the same document
    assert json.loads(raw.content)["count"] == 1
    assert client.get(url, headers={"if-none-match": etag}).status_code == 304
    head = client.head(url)
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    for bad in (
        "/v3/flatcontainer/nope/index.json",
        "/v3/flatcontainer/../secret.key",
        "/v3/flatcontainer/%2e%2e/x",
    ):
        assert client.get(bad).status_code == 404
    assert client.post(url).status_code == 405


def test_registration_leaves_are_answered_from_the_database(
    feed: tuple[TestClient, str], tmp_path: Path
) -> None:
    client, key = feed
    assert push(client, key, nupkg("Contoso.Core", "1.0.0")) == 201
    assert push(client, key, nupkg("Contoso.Core", "2.0.0-beta.1")) == 201  # SemVer 2.0.0
    index = client.get("/v3/registration-semver2/contoso.core/index.json").json()
    for item in index["items"][0]["items"]:  # every leaf the index points at answers
        leaf = client.get(item["@id"])
        assert leaf.status_code == 200 and leaf.headers["content-type"].startswith("application/json")
        assert leaf.json()["@id"] == item["@id"]
        assert leaf.json()["packageContent"] == item["packageContent"]
        assert (
            leaf.json()["registration"] == "http://feed.test/v3/registration-semver2/contoso.core/index.json"
        )
    assert client.get("/v3/registration/Contoso.Core/1.0.0.json").json()["listed"] is True
    assert client.head("/v3/registration/contoso.core/1.0.0.json").status_code == 200
    assert client.get("/v3/registration/contoso.core/2.0.0-beta.1.json").status_code == 404  # not SemVer 1
    assert client.get("/v3/registration/contoso.core/9.9.9.json").status_code == 404
    assert client.get("/v3/registration/nope/1.0.0.json").status_code == 404
    assert not list((tmp_path / "storage").rglob("1.0.0.json")), "leaves are not stored"
    assert (
        client.delete("/api/v2/package/Contoso.Core/1.0.0", headers={"X-NuGet-ApiKey": key}).status_code
        == 204
    )
    assert client.get("/v3/registration/contoso.core/1.0.0.json").json()["listed"] is False


def test_a_change_is_visible_on_the_next_read(feed: tuple[TestClient, str]) -> None:
    client, key = feed
    assert push(client, key, nupkg("Contoso.Core", "1.0.0")) == 201
    before = client.get("/v3/registration/contoso.core/index.json")
    assert (
        client.delete("/api/v2/package/Contoso.Core/1.0.0", headers={"X-NuGet-ApiKey": key}).status_code
        == 204
    )
    after = client.get("/v3/registration/contoso.core/index.json")
    assert after.headers["etag"] != before.headers["etag"]
    assert after.json()["items"][0]["items"][0]["catalogEntry"]["listed"] is False
    assert client.post("/api/v2/package/contoso.core/1.0", headers={"X-NuGet-ApiKey": key}).status_code == 200
    assert client.get("/v3/registration/contoso.core/index.json").json()["items"][0]["items"][0][
        "catalogEntry"
    ]["listed"]
    assert (
        client.delete("/api/v2/package/Contoso.Core/9.9.9", headers={"X-NuGet-ApiKey": key}).status_code
        == 404
    )


def test_search_and_autocomplete(feed: tuple[TestClient, str]) -> None:
    client, key = feed
    assert push(client, key, nupkg("Contoso.Core", "1.0.0", tags="json fast")) == 201
    assert push(client, key, nupkg("Contoso.Core", "2.0.0-beta.1")) == 201
    assert push(client, key, nupkg("Fabrikam.Json", "1.0.0", description="Reads JSON")) == 201
    assert push(client, key, nupkg("Hidden.Lib", "1.0.0")) == 201
    assert (
        client.delete("/api/v2/package/Hidden.Lib/1.0.0", headers={"X-NuGet-ApiKey": key}).status_code == 204
    )

    found = client.get("/v3/search", params={"q": "json"}).json()
    assert sorted(d["id"] for d in found["data"]) == ["Contoso.Core", "Fabrikam.Json"]
    stable = client.get("/v3/search", params={"q": "contoso"}).json()["data"][0]
    assert stable["version"] == "1.0.0" and [v["version"] for v in stable["versions"]] == ["1.0.0"]
    pre = client.get(
        "/v3/search", params={"q": "contoso", "prerelease": "true", "semVerLevel": "2.0.0"}
    ).json()
    assert pre["data"][0]["version"] == "2.0.0-beta.1"
    assert pre["data"][0]["owners"] == ["alice"]
    # SemVer 2.0.0 versions are left out unless semVerLevel=2.0.0 is asked for.
    semver1 = client.get("/v3/search", params={"q": "contoso", "prerelease": "true"}).json()
    assert semver1["data"][0]["version"] == "1.0.0"
    assert client.get("/v3/search", params={"q": "hidden"}).json() == {"totalHits": 0, "data": []}
    assert client.get("/v3/search", params={"q": "id:fabrikam"}).json()["totalHits"] == 1
    assert client.get("/v3/search", params={"q": "tags:json"}).json()["data"][0]["id"] == "Contoso.Core"
    paged = client.get("/v3/search", params={"take": "1", "skip": "1"}).json()
    assert paged["totalHits"] == 2 and len(paged["data"]) == 1
    assert client.get("/v3/search", params={"packageType": "DotnetTool"}).json()["totalHits"] == 0
    assert client.get("/v3/search", params={"take": "-5", "skip": "abc"}).status_code == 200

    ids = client.get("/v3/autocomplete", params={"q": "con"}).json()
    assert ids == {"totalHits": 1, "data": ["Contoso.Core"]}
    versions = client.get(
        "/v3/autocomplete", params={"id": "contoso.core", "prerelease": "true", "semVerLevel": "2.0.0"}
    ).json()
    assert versions["data"] == ["1.0.0", "2.0.0-beta.1"]


def test_a_search_asks_the_database_generation_once(
    feed: tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept answer, the kept page and the kept count are checked against one read of the generation
    (a round trip each)."""
    client, key = feed
    for n in range(3):
        assert push(client, key, nupkg(f"Contoso.P{n}", "1.0.0")) == 201
    asked: list[object] = []
    watched = Database._watched

    def counted(watch: object) -> Hashable:
        asked.append(watch)
        return watched(watch)  # type: ignore[arg-type]

    monkeypatch.setattr(Database, "_watched", staticmethod(counted))
    paged = client.get("/v3/search", params={"q": "contoso", "take": "1"}).json()  # counted: not the last
    assert paged["totalHits"] == 3 and len(asked) == 1
    assert client.get("/v3/search", params={"q": "contoso", "take": "1"}).json() == paged  # kept
    assert len(asked) == 2


def test_search_results_link_embedded_icons_and_licenses_as_registration_does(
    feed: tuple[TestClient, str],
) -> None:
    client, key = feed
    png = b"\x89PNG\r\n\x1a\n-icon"
    icon_and_expression = package(
        "Shiny.Lib",
        files={"icon.png": png},
        extra='<icon>icon.png</icon><license type="expression">(MIT OR Apache-2.0)</license>',
    )
    license_file = package(
        "Plain.Lib", files={"LICENSE.txt": b"MIT"}, extra='<license type="file">LICENSE.txt</license>'
    )
    urls = package(
        "Old.Lib",
        extra="<iconUrl>https://example.test/i.png</iconUrl><licenseUrl>https://example.test/l</licenseUrl>",
    )
    for body in (icon_and_expression, license_file, urls):
        assert push(client, key, body) == 201
    expected = {
        "Shiny.Lib": (
            "http://feed.test/v3/flatcontainer/shiny.lib/1.0.0/icon",
            "https://licenses.nuget.org/(MIT%20OR%20Apache-2.0)",
        ),
        "Plain.Lib": ("", "http://feed.test/v3/flatcontainer/plain.lib/1.0.0/license"),
        "Old.Lib": ("https://example.test/i.png", "https://example.test/l"),
    }
    for package_id, (icon, license_url) in expected.items():
        [hit] = client.get("/v3/search", params={"q": f"packageid:{package_id}"}).json()["data"]
        assert (hit["iconUrl"], hit["licenseUrl"]) == (icon, license_url), package_id
        index = client.get(f"/v3/registration/{package_id.lower()}/index.json").json()
        entry = index["items"][0]["items"][0]["catalogEntry"]
        assert (entry["iconUrl"], entry["licenseUrl"]) == (icon, license_url), package_id
        if icon.startswith("http://feed.test/"):
            assert client.get(icon).content == png


def test_autocomplete_and_search_filter_by_package_type(feed: tuple[TestClient, str]) -> None:
    client, key = feed
    tool = package("Tool.Thing", extra='<packageTypes><packageType name="DotnetTool" /></packageTypes>')
    for body in (tool, package("Tool.Lib")):
        assert push(client, key, body) == 201

    def found(path: str, package_type: str) -> list[str]:
        data = client.get(path, params={"q": "tool", "packageType": package_type}).json()["data"]
        return sorted(d if isinstance(d, str) else d["id"] for d in data)

    for path in ("/v3/search", "/v3/autocomplete"):
        assert found(path, "DotnetTool") == ["Tool.Thing"], path
        assert found(path, "dependency") == ["Tool.Lib"], path  # no type named: a Dependency package
        assert found(path, "Template") == [], path


def test_a_change_whose_documents_could_not_be_written_is_published_while_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unlist committed while the storage was down leaves its id stale (``built_revision`` behind):
    the server builds it once it can, without waiting for a restart or a later change of the id."""
    monkeypatch.setattr(app_module, "STALE_CHECK_SECONDS", 0.1)
    settings = Settings(data_dir=tmp_path)
    core = Core(settings)
    core.db.upgrade()
    core.accounts.create_user("alice", "alice@example.test", None)
    _, key = core.accounts.create_key("alice", "k", ["push"], ["*"], [], 30)
    with TestClient(create_app(settings), base_url="http://feed.test") as client:
        assert push(client, key, nupkg("Late.Lib", "1.0.0")) == 201
        leaf = "/v3/registration/late.lib/index.json"
        assert client.get(leaf).json()["items"][0]["items"][0]["catalogEntry"]["listed"] is True
        with core.db.session() as s:  # what an unlist does when the storage refuses its documents
            s.execute(update(PackageVersion).values(listed=False))
            s.execute(update(PackageRegistration).values(revision=PackageRegistration.revision + 1))
        deadline = time.monotonic() + 10
        while client.get(leaf).json()["items"][0]["items"][0]["catalogEntry"]["listed"]:
            assert time.monotonic() < deadline, "the stale id was never built"
            time.sleep(0.1)
    core.close()


def test_a_pool_with_no_free_connection_is_503_not_500(
    feed: tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every connection busy (or stuck on a silent database) for the pool's whole wait: "retry later"."""
    client, _ = feed

    def no_connection(*_: object, **__: object) -> object:
        raise PoolTimeout("QueuePool limit of size 5 overflow 10 reached, connection timed out")

    monkeypatch.setattr(Search, "search", no_connection)
    response = client.get("/v3/search", params={"q": "json"})
    assert response.status_code == 503 and response.headers["retry-after"] == "30"
    assert response.headers["x-nuget-warning"] == "The database is unavailable; retry later"
