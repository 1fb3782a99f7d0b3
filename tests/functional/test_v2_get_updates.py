"""V2 ``GetUpdates()`` over HTTP, in process, read as nuget.org's ODataV2FeedController reads it:
``|``-separated ids, versions and version constraints, ``includePrerelease``, ``includeAllVersions``,
``semVerLevel``. Who may read which id: ``test_private_reads``; nuget 2.8.7's ``update``: the e2e tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from functional.test_feed_http import alice_with_a_key, nupkg, push
from functional.test_v2_http import entries
from nugat.app import create_app
from nugat.settings import Settings

UPDATES = "/api/v2/GetUpdates()"


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """Upd.Lib: stable, prerelease, unlisted (2.1.0) and SemVer 2.0.0 (2.5.0+build, 3.0.0-rc.1) versions;
    Other.Pkg: two stable ones."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("updates"))
    key = alice_with_a_key(settings)
    with TestClient(create_app(settings), base_url="http://feed.test") as client:
        for version in ("1.0.0", "1.1.0", "1.2.0-beta", "2.0.0", "2.1.0", "2.5.0+build", "3.0.0-rc.1"):
            assert push(client, key, nupkg("Upd.Lib", version)) == 201
        for version in ("1.0.0", "1.5.0"):
            assert push(client, key, nupkg("Other.Pkg", version)) == 201
        unlisted = client.delete("/api/v2/package/Upd.Lib/2.1.0", headers={"X-NuGet-ApiKey": key})
        assert unlisted.status_code == 204
        yield client


def _updates(client: TestClient, ids: str, versions: str, **params: str) -> list[tuple[str, str]]:
    response = client.get(UPDATES, params={"packageIds": f"'{ids}'", "versions": f"'{versions}'", **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/atom+xml")
    found = [(e["Id"], e["Version"]) for e in entries(response.content)]
    if "$top" not in params:  # $count counts past $top
        count = client.get(f"{UPDATES}/$count", params=dict(response.request.url.params))
        assert count.status_code == 200 and count.text == str(len(found))
    return found


def test_the_latest_listed_stable_update_of_each_id_by_id(feed: TestClient) -> None:
    # not the unlisted 2.1.0, the prerelease 1.2.0-beta, nor the SemVer 2.0.0 2.5.0+build
    assert _updates(feed, "Upd.Lib|Other.Pkg", "1.0.0|1.0") == [("Other.Pkg", "1.5.0"), ("Upd.Lib", "2.0.0")]
    # ids in any case (entries in the id's own); unknown ids, and ids with nothing newer, have none
    assert _updates(feed, "upd.lib|Nope.Nothing|OTHER.PKG", "1.1|1.0|1.5") == [("Upd.Lib", "2.0.0")]
    assert _updates(feed, "Upd.Lib", "2.0.0") == []
    found = entries(feed.get(UPDATES, params={"packageIds": "'Upd.Lib'", "versions": "'1.0'"}).content)
    # the flags of the versions this client sees (3.0.0-rc.1 is SemVer 2.0.0)
    assert (found[0]["IsLatestVersion"], found[0]["IsAbsoluteLatestVersion"]) == ("true", "true")


def test_prerelease_and_all_versions(feed: TestClient) -> None:
    every = {"includeAllVersions": "true"}
    assert _updates(feed, "Upd.Lib", "1.0.0", **every) == [("Upd.Lib", "1.1.0"), ("Upd.Lib", "2.0.0")]
    prerelease = {"includePrerelease": "true"}
    assert _updates(feed, "Upd.Lib", "1.1.0", **prerelease, **every) == [
        ("Upd.Lib", "1.2.0-beta"),
        ("Upd.Lib", "2.0.0"),
    ]
    assert _updates(feed, "Upd.Lib", "1.1.0", **prerelease) == [("Upd.Lib", "2.0.0")]
    assert _updates(feed, "Upd.Lib", "1.1.0", includePrerelease="false", includeAllVersions="false") == [
        ("Upd.Lib", "2.0.0")
    ]


def test_semver2_versions_only_with_semver_level_2(feed: TestClient) -> None:
    semver2 = {"semVerLevel": "2.0.0"}
    assert _updates(feed, "Upd.Lib", "2.0.0", **semver2) == [("Upd.Lib", "2.5.0+build")]
    assert _updates(feed, "Upd.Lib", "2.0.0", includePrerelease="true", **semver2) == [
        ("Upd.Lib", "3.0.0-rc.1")
    ]
    assert _updates(feed, "Upd.Lib", "2.0.0", includePrerelease="true") == []
    found = entries(
        feed.get(UPDATES, params={"packageIds": "'Upd.Lib'", "versions": "'2.0'", **semver2}).content
    )
    assert [found[0][k] for k in ("NormalizedVersion", "IsLatestVersion", "IsAbsoluteLatestVersion")] == [
        "2.5.0",
        "true",
        "false",
    ]


def test_version_constraints_one_an_id(feed: TestClient) -> None:
    assert _updates(feed, "Upd.Lib|Other.Pkg", "1.0|1.0", versionConstraints="'[1.0,2.0)|'") == [
        ("Other.Pkg", "1.5.0"),
        ("Upd.Lib", "1.1.0"),
    ]
    assert _updates(feed, "Upd.Lib", "1.0", versionConstraints="'(,1.0.0]'") == []
    # a constraint that is not a range constrains nothing (as nuget.org)
    assert _updates(feed, "Upd.Lib", "1.0", versionConstraints="'latest'") == [("Upd.Lib", "2.0.0")]
    # an id given twice is updated past either of its versions, each within its own constraint
    assert _updates(feed, "Upd.Lib|Upd.Lib", "2.0|1.0", versionConstraints="'|[1.0,1.1]'") == [
        ("Upd.Lib", "1.1.0")
    ]


def test_what_nuget_org_answers_with_an_empty_feed(feed: TestClient) -> None:
    """Lists of different lengths, or none, are an empty feed (200), not an error; an id whose version is
    not a version is left out; targetFrameworks is not read (an update for any framework)."""
    assert _updates(feed, "Upd.Lib|Other.Pkg", "1.0") == []
    assert _updates(feed, "Upd.Lib|Other.Pkg", "1.0|1.0", versionConstraints="'[1.0,2.0)'") == []
    assert _updates(feed, "", "") == []
    assert entries(feed.get(UPDATES).content) == []
    assert _updates(feed, "Upd.Lib|Other.Pkg", "banana|1.0") == [("Other.Pkg", "1.5.0")]
    assert _updates(feed, "Upd.Lib||", "1.0|") == [("Upd.Lib", "2.0.0")]  # empty items dropped
    framework = {"targetFrameworks": "'net45|netstandard2.0'"}
    assert _updates(feed, "Upd.Lib", "1.0", **framework) == [("Upd.Lib", "2.0.0")]


def test_query_options_and_metadata(feed: TestClient) -> None:
    every = {"includeAllVersions": "true", "includePrerelease": "true"}
    latest_first = {"$orderby": "Version desc", "$top": "1", **every}
    assert _updates(feed, "Upd.Lib", "1.0", **latest_first) == [("Upd.Lib", "2.0.0")]
    assert _updates(feed, "Upd.Lib|Other.Pkg", "1.0|1.0", **every, **{"$filter": "IsLatestVersion"}) == [
        ("Other.Pkg", "1.5.0"),
        ("Upd.Lib", "2.0.0"),
    ]
    assert _updates(feed, "Upd.Lib|Other.Pkg", "1.0|1.0", **{"$filter": "Id eq 'other.pkg'"}) == [
        ("Other.Pkg", "1.5.0")
    ]
    refused = feed.get(UPDATES, params={"packageIds": "'Upd.Lib'", "versions": "'1.0'", "$orderby": "Size"})
    assert refused.status_code == 400 and "Unsupported $orderby" in refused.text
    metadata = feed.get("/api/v2/$metadata").text
    declared = metadata.split('<FunctionImport Name="GetUpdates"', 1)[1].split("</FunctionImport>", 1)[0]
    names = [part.split('"', 1)[0] for part in declared.split('<Parameter Name="')[1:]]
    assert names == [
        "packageIds",
        "versions",
        "includePrerelease",
        "includeAllVersions",
        "targetFrameworks",
        "versionConstraints",
        "semVerLevel",
    ]
