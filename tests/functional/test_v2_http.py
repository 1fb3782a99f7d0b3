"""The V2 (OData/Atom) feed over HTTP, in process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import defusedxml.ElementTree as ET
import pytest
from starlette.testclient import TestClient

from functional.test_feed_http import alice_with_a_key, nupkg, push
from nugat.app import create_app
from nugat.protocol.v2.queries import Filter, parse_filter
from nugat.services import ServiceError
from nugat.settings import Settings

NS = {
    "a": "http://www.w3.org/2005/Atom",
    "d": "http://schemas.microsoft.com/ado/2007/08/dataservices",
    "m": "http://schemas.microsoft.com/ado/2007/08/dataservices/metadata",
}


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path)
    key = alice_with_a_key(settings)
    with TestClient(create_app(settings), base_url="http://feed.test") as client:
        for package_id, version in [
            ("Contoso.Core", "1.0.0"),
            ("Contoso.Core", "1.1.0"),
            ("Contoso.Core", "2.0.0-rc"),
        ]:
            assert push(client, key, nupkg(package_id, version)) == 201
        assert push(client, key, nupkg("Contoso.Old", "1.0.0")) == 201
        assert (
            client.delete("/api/v2/package/Contoso.Old/1.0.0", headers={"X-NuGet-ApiKey": key}).status_code
            == 204
        )
        yield client


def entries(body: bytes) -> list[dict[str, str]]:
    root = ET.fromstring(body)
    found = root.findall("a:entry", NS) if root.tag.endswith("feed") else [root]
    return [
        {child.tag.split("}")[1]: child.text or "" for child in e.find("m:properties", NS) or []}
        for e in found
    ]


def test_parse_filter_accepts_what_clients_send() -> None:
    assert parse_filter("IsLatestVersion") == Filter(latest=True)
    assert parse_filter("(tolower(Id) eq 'contoso.core') and IsAbsoluteLatestVersion") == Filter(
        absolute_latest=True, package_id="contoso.core"
    )
    assert parse_filter("Id eq 'O''Brien' and Version eq '1.0'") == Filter(
        package_id="O'Brien", version="1.0"
    )
    with pytest.raises(ServiceError, match="Unsupported"):
        parse_filter("substringof('x', Tags)")


def test_service_document_metadata_and_index_link(feed: TestClient) -> None:
    assert b'<collection href="Packages">' in feed.get("/api/v2/").content
    assert b'FunctionImport Name="FindPackagesById"' in feed.get("/api/v2/$metadata").content
    index = feed.get("/v3/index.json").json()
    assert {"@id": "http://feed.test/api/v2", "@type": "LegacyGallery/2.0.0"}.items() <= next(
        r for r in index["resources"] if r["@type"] == "LegacyGallery/2.0.0"
    ).items()


def test_search_latest_and_all_versions(feed: TestClient) -> None:
    latest = entries(
        feed.get("/api/v2/Search()", params={"$filter": "IsLatestVersion", "searchTerm": "'contoso'"}).content
    )
    assert [(e["Id"], e["Version"], e["IsLatestVersion"]) for e in latest] == [
        ("Contoso.Core", "1.1.0", "true")
    ]
    every = entries(
        feed.get("/api/v2/Search()", params={"searchTerm": "'contoso'", "includePrerelease": "true"}).content
    )
    assert [e["Version"] for e in every] == ["1.0.0", "1.1.0", "2.0.0-rc"]
    assert [e["IsAbsoluteLatestVersion"] for e in every] == ["false", "false", "true"]
    count = feed.get(
        "/api/v2/Search()/$count", params={"searchTerm": "'contoso'", "includePrerelease": "true"}
    )
    assert count.text == "3"
    page = feed.get("/api/v2/Search()", params={"searchTerm": "''", "includePrerelease": "true", "$top": "2"})
    root = ET.fromstring(page.content)
    assert len(root.findall("a:entry", NS)) == 2
    assert root.find("a:link[@rel='next']", NS) is None  # all the client asked for: no next link
    assert feed.get("/api/v2/Search()", params={"$filter": "Tags eq 'x'"}).status_code == 400


def test_find_by_id_includes_unlisted_and_single_entries(feed: TestClient) -> None:
    old = entries(feed.get("/api/v2/FindPackagesById()", params={"id": "'contoso.old'"}).content)
    assert [(e["Version"], e["Published"]) for e in old] == [("1.0.0", "1900-01-01T00:00:00")]
    one = feed.get("/api/v2/Packages(Id='Contoso.Core',Version='1.1')")
    assert entries(one.content)[0]["NormalizedVersion"] == "1.1.0"
    assert feed.get("/api/v2/Packages(Id='Contoso.Core',Version='9.0')").status_code == 404
    by_filter = entries(
        feed.get(
            "/api/v2/Packages()", params={"$filter": "tolower(Id) eq 'contoso.core' and IsLatestVersion"}
        ).content
    )
    assert [e["Version"] for e in by_filter] == ["1.1.0"]


def test_download_redirects_to_the_flat_container(feed: TestClient) -> None:
    exact = feed.get("/api/v2/package/Contoso.Core/1.0", follow_redirects=False)
    assert exact.status_code == 302
    assert (
        exact.headers["location"]
        == "http://feed.test/v3/flatcontainer/contoso.core/1.0.0/contoso.core.1.0.0.nupkg"
    )
    latest = feed.get("/api/v2/package/Contoso.Core", follow_redirects=False)
    assert latest.headers["location"].endswith("/2.0.0-rc/contoso.core.2.0.0-rc.nupkg")
    assert feed.get("/api/v2/package/Nope/1.0", follow_redirects=False).status_code == 302
    assert feed.get("/api/v2/package/Nope", follow_redirects=False).status_code == 404
    assert feed.get("/api/v2/package/Contoso.Core/1.0").content == nupkg("Contoso.Core", "1.0.0")
