"""The V2 feed's query options over HTTP, in process: ``$filter``, ``$orderby``, ``$skip`` and ``$top`` on
FindPackagesById(), Packages() and Search(), as real clients send them (nuget 2.8.7's install and list)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from functional.test_feed_http import nupkg, push
from functional.test_v2_http import entries
from nugat.app import create_app
from nugat.core import Core
from nugat.settings import Settings


@pytest.fixture
def ordered_feed(tmp_path: Path) -> Iterator[TestClient]:
    """Versions pushed out of order, whose text order is not their SemVer order (1.10.0 > 1.9.0), and ids
    whose download ranking is not their id order."""
    settings = Settings(data_dir=tmp_path)
    core = Core(settings)
    core.db.upgrade()
    core.accounts.create_user("alice", "alice@example.test", None)
    _, key = core.accounts.create_key("alice", "k", ["push"], ["*"], [], 30)
    core.close()
    with TestClient(create_app(settings), base_url="http://feed.test") as client:
        for package_id, version in [
            ("Sort.Lib", "1.9.0"),
            ("Sort.Lib", "1.10.0"),
            ("Sort.Lib", "2.0.0-alpha"),
            ("Sort.Lib", "1.2.0"),
            ("Zed.Pkg", "1.0.0"),
            ("alpha.pkg", "1.0.0"),
            ("Contoso.Core", "1.0.0"),
        ]:
            assert push(client, key, nupkg(package_id, version)) == 201
        counter = Core(settings)  # as another process of the feed would count them
        for _ in range(3):
            counter.downloads.count("zed.pkg", "1.0.0")
        counter.downloads.count("sort.lib", "1.2.0")
        counter.downloads.flush()  # a process's first flush copies the totals into search at once
        counter.close()
        yield client


def _versions(client: TestClient, path: str, **params: str) -> list[str]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return [e["Version"] for e in entries(response.content)]


def _ids(client: TestClient, path: str, **params: str) -> list[str]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return [e["Id"] for e in entries(response.content)]


def test_find_by_id_honours_filter_orderby_skip_and_top(ordered_feed: TestClient) -> None:
    find = "/api/v2/FindPackagesById()"
    sort = {"id": "'Sort.Lib'"}
    # what nuget 2.8.7 sends for `nuget install Sort.Lib`, and with -Prerelease
    latest = {"$filter": "IsLatestVersion", "$orderby": "Version desc", "$top": "1"}
    assert _versions(ordered_feed, find, **sort, **latest) == ["1.10.0"]
    absolute = {**latest, "$filter": "IsAbsoluteLatestVersion"}
    assert _versions(ordered_feed, find, **sort, **absolute) == ["2.0.0-alpha"]
    # SemVer precedence, not text; $skip and $top after the order
    assert _versions(ordered_feed, find, **sort, **{"$orderby": "Version desc"}) == [
        "2.0.0-alpha",
        "1.10.0",
        "1.9.0",
        "1.2.0",
    ]
    assert _versions(ordered_feed, find, **sort, **{"$orderby": "Version", "$skip": "1", "$top": "2"}) == [
        "1.9.0",
        "1.10.0",
    ]
    assert _versions(ordered_feed, find, **sort) == ["1.2.0", "1.9.0", "1.10.0", "2.0.0-alpha"]  # default
    by_downloads = {"$orderby": "VersionDownloadCount desc,Version desc", "$top": "2"}
    assert _versions(ordered_feed, find, **sort, **by_downloads) == ["1.2.0", "2.0.0-alpha"]
    assert ordered_feed.get(f"{find}/$count", params={**sort, "$filter": "IsLatestVersion"}).text == "1"
    assert _versions(ordered_feed, find, **sort, **{"$filter": "Version eq '1.9'"}) == ["1.9.0"]
    assert _versions(ordered_feed, find, **sort, **{"$filter": "Id eq 'Other' and IsLatestVersion"}) == []
    # an option nugat cannot honour is a 400 that says so, not a wrong answer
    for bad in ({"$orderby": "Title"}, {"$orderby": "Version sideways"}, {"$filter": "IsPrerelease"}):
        refused = ordered_feed.get(find, params={**sort, **bad})
        assert refused.status_code == 400 and "Unsupported $" in refused.text, (bad, refused.text)


def test_packages_with_an_id_honours_orderby_and_top(ordered_feed: TestClient) -> None:
    asked = {"$filter": "Id eq 'Sort.Lib'", "$orderby": "Version desc", "$top": "1"}
    assert _versions(ordered_feed, "/api/v2/Packages()", **asked) == ["1.10.0"]
    prerelease = {**asked, "$orderby": "Version desc", "includePrerelease": "true", "$top": "2"}
    assert _versions(ordered_feed, "/api/v2/Packages()", **prerelease) == ["2.0.0-alpha", "1.10.0"]
    published = {"$filter": "tolower(Id) eq 'sort.lib'", "$orderby": "Published desc", "$top": "1"}
    assert _versions(ordered_feed, "/api/v2/Packages()", **published) == ["1.2.0"]  # pushed last


def test_search_orders_by_id_as_nuget_list_asks_and_pages_without_repeats(ordered_feed: TestClient) -> None:
    search = "/api/v2/Search()"
    listing = {"$filter": "IsLatestVersion", "searchTerm": "''", "includePrerelease": "false"}
    # by relevance (downloads) unless asked otherwise
    assert _ids(ordered_feed, search, **listing)[0] == "Zed.Pkg"
    # `nuget list`: $orderby=Id, pages of $top; case-insensitive id order
    by_id = {**listing, "$orderby": "Id"}
    first = _ids(ordered_feed, search, **by_id, **{"$top": "2"})
    rest = _ids(ordered_feed, search, **by_id, **{"$skip": "2", "$top": "2"})
    assert first + rest == ["alpha.pkg", "Contoso.Core", "Sort.Lib", "Zed.Pkg"]
    assert _ids(ordered_feed, search, **listing, **{"$orderby": "Id desc"}) == [
        "Zed.Pkg",
        "Sort.Lib",
        "Contoso.Core",
        "alpha.pkg",
    ]
    assert _ids(ordered_feed, search, **listing, **{"$orderby": "DownloadCount desc,Id"}) == [
        "Zed.Pkg",
        "Sort.Lib",
        "alpha.pkg",
        "Contoso.Core",
    ]
    # an id typed in full comes first by relevance, not when the order is asked for
    term = {**listing, "searchTerm": "'pkg'"}
    assert _ids(ordered_feed, search, **term, **{"$orderby": "Id"}) == ["alpha.pkg", "Zed.Pkg"]
    # all versions: ids in order, each id's versions by the keys after the first
    every = {"searchTerm": "'sort.lib'", "includePrerelease": "true", "$orderby": "Id,Version desc"}
    assert _versions(ordered_feed, search, **every, **{"$skip": "1", "$top": "2"}) == ["1.10.0", "1.9.0"]
    # a version property first, across ids: every match would have to be read; refused, not ignored
    refused = ordered_feed.get(search, params={**listing, "$orderby": "Published desc"})
    assert refused.status_code == 400 and "Unsupported $orderby" in refused.text
    assert ordered_feed.get(search, params={**listing, "$orderby": "Id; DROP TABLE x"}).status_code == 400
