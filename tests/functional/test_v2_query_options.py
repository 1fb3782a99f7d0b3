"""The V2 feed's query options over HTTP, in process: ``$filter``, ``$orderby``, ``$skip`` and ``$top`` on
FindPackagesById(), Packages() and Search(), as real clients send them (nuget 2.8.7's install and list)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import defusedxml.ElementTree as ET
import pytest
from starlette.testclient import TestClient

from functional.test_feed_http import nupkg, push
from functional.test_v2_http import NS, entries
from nugat.app import create_app
from nugat.core import Core
from nugat.protocol.v2 import handlers
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


def _refused(client: TestClient, path: str, **params: str) -> str:
    response = client.get(path, params=params)
    assert response.status_code == 400, (params, response.status_code, response.text)
    return response.text


def test_search_breaks_download_ties_as_asked_or_refuses(ordered_feed: TestClient) -> None:
    listing = {"$filter": "IsLatestVersion", "searchTerm": "''", "includePrerelease": "false"}
    search = "/api/v2/Search()"
    # alpha.pkg and Contoso.Core tie at no downloads: the Id key after DownloadCount orders them
    assert _ids(ordered_feed, search, **listing, **{"$orderby": "DownloadCount desc,Id desc"}) == [
        "Zed.Pkg",
        "Sort.Lib",
        "Contoso.Core",
        "alpha.pkg",
    ]
    assert _ids(ordered_feed, search, **listing, **{"$orderby": "DownloadCount,Id desc"}) == [
        "Contoso.Core",
        "alpha.pkg",
        "Sort.Lib",
        "Zed.Pkg",
    ]
    assert _ids(ordered_feed, "/api/v2/Packages()", **{"$orderby": "DownloadCount desc,Id desc"}) == [
        "Zed.Pkg",
        "Sort.Lib",
        "Sort.Lib",
        "Sort.Lib",
        "Contoso.Core",
        "alpha.pkg",
    ]
    # tied ids would have to be ordered by a version property: every match read; refused, not ignored
    for keys in ("DownloadCount desc,Version desc", "DownloadCount,Published desc,Id"):
        assert "Unsupported $orderby" in _refused(ordered_feed, search, **listing, **{"$orderby": keys})


def test_contradictory_filters_find_nothing(ordered_feed: TestClient) -> None:
    packages, find = "/api/v2/Packages()", "/api/v2/FindPackagesById()"
    both_ids = {"$filter": "Id eq 'Sort.Lib' and Id eq 'Zed.Pkg'"}
    assert _versions(ordered_feed, packages, **both_ids) == []
    assert ordered_feed.get(f"{packages}/$count", params=both_ids).text == "0"
    assert _versions(ordered_feed, "/api/v2/Search()", **both_ids) == []
    sort = {"id": "'Sort.Lib'"}
    both_versions = {"$filter": "Version eq '1.9.0' and Version eq '1.10.0'"}
    assert _versions(ordered_feed, find, **sort, **both_versions) == []
    assert (
        _versions(ordered_feed, packages, **{"$filter": f"Id eq 'Sort.Lib' and {both_versions['$filter']}"})
        == []
    )
    # the same condition twice, as written differently, is no contradiction
    ids = "Id eq 'Sort.Lib' and tolower(Id) eq 'sort.lib'"
    same = {"$filter": f"{ids} and Version eq '1.9' and Version eq '1.9.0'"}
    assert _versions(ordered_feed, packages, **same) == ["1.9.0"]


def test_search_term_applies_with_an_id_filter(ordered_feed: TestClient) -> None:
    search = "/api/v2/Search()"
    assert _versions(ordered_feed, search, searchTerm="'nothing'", **{"$filter": "Id eq 'Sort.Lib'"}) == []
    counted = ordered_feed.get(
        f"{search}/$count", params={"searchTerm": "'nothing'", "$filter": "Id eq 'Sort.Lib'"}
    )
    assert counted.text == "0"
    assert _versions(ordered_feed, search, searchTerm="'sort'", **{"$filter": "Id eq 'Sort.Lib'"}) == [
        "1.2.0",
        "1.9.0",
        "1.10.0",
    ]
    other = {"searchTerm": "'zed'", "$filter": "Id eq 'Sort.Lib' and IsLatestVersion"}
    assert _versions(ordered_feed, search, **other) == []


def test_filter_brackets_must_match(ordered_feed: TestClient) -> None:
    find = "/api/v2/FindPackagesById()"
    sort = {"id": "'Sort.Lib'"}
    for bad in (
        "Id) eq 'Sort.Lib'",
        "tolower(Version eq '1.9.0'",
        "tolower(Id eq 'sort.lib')",
        "(Id eq 'Sort.Lib'",
        "Id eq 'Sort.Lib')",
        "(IsLatestVersion))",
        "Version eq '1.9.0' and",
        "and IsLatestVersion",
        "IsLatestVersion IsLatestVersion",
        "(" * 5000 + "IsLatestVersion" + ")" * 5000,
    ):
        assert "Unsupported $filter" in _refused(ordered_feed, find, **sort, **{"$filter": bad})
    grouped = "((tolower(Id) eq 'sort.lib') and (Version eq '1.9.0' and (IsLatestVersion eq true)))"
    assert _versions(ordered_feed, "/api/v2/Packages()", **{"$filter": grouped}) == []  # 1.9.0 is not latest
    grouped = "(tolower(Id) eq 'sort.lib') and (tolower(Version) eq '1.10.0') and (IsLatestVersion)"
    assert _versions(ordered_feed, "/api/v2/Packages()", **{"$filter": grouped}) == ["1.10.0"]
    # quotes, brackets and `and` inside a literal are the literal's
    assert _versions(ordered_feed, find, **sort, **{"$filter": "Version eq 'x and (y'"}) == []


def test_top_zero_ends_and_negative_paging_is_refused(ordered_feed: TestClient) -> None:
    for path, params in (
        ("/api/v2/Packages()", {}),
        ("/api/v2/Search()", {"searchTerm": "''"}),
        ("/api/v2/FindPackagesById()", {"id": "'Sort.Lib'"}),
    ):
        empty = ordered_feed.get(path, params={**params, "$top": "0"})
        assert empty.status_code == 200 and entries(empty.content) == []
        assert b'rel="next"' not in empty.content
        assert ordered_feed.get(f"{path}/$count", params={**params, "$top": "0"}).text != "0"
        for bad in ({"$top": "-5", "$skip": "2"}, {"$skip": "-1"}, {"$top": "ten"}):
            refused = ordered_feed.get(path, params={**params, **bad})
            assert refused.status_code == 400, (path, bad, refused.text)
            assert refused.headers["x-nuget-warning"].startswith("Unsupported $"), refused.text


ALL_UPDATES = {"includeAllVersions": "true", "includePrerelease": "true"}


def _page(client: TestClient, url: str, params: dict[str, str] | None = None) -> tuple[int, str | None]:
    """How many entries a page holds, and its next link (None: it has none)."""
    response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    link = ET.fromstring(response.content).find("a:link[@rel='next']", NS)
    return len(entries(response.content)), None if link is None else link.get("href")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v2/FindPackagesById()", {"id": "'Sort.Lib'", "semVerLevel": "2.0.0"}),  # 4 versions
        ("/api/v2/Search()", {"searchTerm": "''", "includePrerelease": "true"}),  # 7 versions
        ("/api/v2/Packages()", {}),  # 6 stable versions
        ("/api/v2/GetUpdates()", {"packageIds": "'Sort.Lib'", "versions": "'0.1'", **ALL_UPDATES}),  # 4
    ],
)
def test_next_links_only_where_the_server_cut_the_page_short(
    ordered_feed: TestClient, monkeypatch: pytest.MonkeyPatch, path: str, params: dict[str, str]
) -> None:
    """OData server-driven paging: a page as long as the client's ``$top`` is complete (no next link); one
    the server cut to its page size links to the rest of the ``$top``; without ``$top``, to the rest."""
    monkeypatch.setattr(handlers, "PAGE", 3)
    base = f"http://feed.test{path}"
    total = int(ordered_feed.get(f"{path}/$count", params=params).text)
    assert total >= 4
    assert _page(ordered_feed, path, {**params, "$top": "2"}) == (2, None)
    assert _page(ordered_feed, path, {**params, "$top": "3"}) == (3, None)
    assert _page(ordered_feed, path, {**params, "$skip": "1", "$top": "10"})[0] == 3
    # asked for 4, given 3: the next link asks for the one left, after them
    count, link = _page(ordered_feed, path, {**params, "$top": "4"})
    assert count == 3 and link is not None and link.startswith(f"{base}?")
    assert dict(parse_qsl(urlsplit(link).query)) == {**params, "$skip": "3", "$top": "1"}
    assert _page(ordered_feed, link) == (1, None)
    # without $top, server pages to the end, the links asking for no $top
    seen, link = _page(ordered_feed, path, params)
    while link is not None:
        assert dict(parse_qsl(urlsplit(link).query)) == {**params, "$skip": str(seen)}
        count, link = _page(ordered_feed, link)
        seen += count
    assert seen == total
    # a $top larger than the rest: cut by the server, then by the end of the results
    count, link = _page(ordered_feed, path, {**params, "$skip": str(total - 4), "$top": "50"})
    assert count == 3 and link is not None and "%24top=47" in link
    assert _page(ordered_feed, link) == (1, None)
