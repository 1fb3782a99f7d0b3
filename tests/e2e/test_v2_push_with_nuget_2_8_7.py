"""End to end: Debian's legacy ``nuget`` 2.8.7 pushes to the V2 feed root (``PUT /api/v2/``) and deletes
below it (``DELETE /api/v2/ID/VERSION``), as NuGet.Server accepts, and nugat takes these exactly as a push
to ``/api/v2/package/`` and an unlist; it installs the latest version and lists in id order, as it asks
(``$filter``, ``$orderby`` and ``$top`` on FindPackagesById() and Search()); it updates itself from the
feed's ``GetUpdates()``."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from support.nugetexe import LegacyNuGetClient, NuGetExeMissing, installed_packages
from support.server import NugatServer
from support.tlsproxy import intercepting_proxy, trust_in_mono

pytestmark = [
    pytest.mark.e2e,
    # The route and the upload parser are the same on every database and storage (seconds of mono each).
    pytest.mark.parametrize("server", ["sqlite"], indirect=True, scope="module"),
]


def _push(server: NugatServer, key: str, nupkg: Path) -> None:
    put = httpx.put(
        f"{server.url}/api/v2/package/",
        files={"package": (nupkg.name, nupkg.read_bytes())},
        headers={"X-NuGet-ApiKey": key},
    )
    assert put.status_code == 201, put.text


@pytest.fixture
def legacy(tmp_path: Path) -> LegacyNuGetClient:
    try:
        return LegacyNuGetClient(tmp_path / "nuget-2.8.7-home")
    except NuGetExeMissing as exc:
        pytest.fail(str(exc), pytrace=False)


def test_nuget_2_8_7_pushes_to_the_v2_feed_root(
    server: NugatServer,
    legacy: LegacyNuGetClient,
    build_package: Callable[..., Path],
    user_key: Callable[..., str],
) -> None:
    key = user_key(server, "legacy", ["push"], globs=["Legacy.*"])
    first = build_package("Legacy.Root", "1.0.0")
    pushed = legacy.push(first, key, f"{server.url}/api/v2/")
    assert pushed.ok and "Your package was pushed." in pushed.output, pushed.output
    # and without the trailing slash (the client then sends PUT /api/v2)
    assert legacy.push(build_package("Legacy.Root", "1.1.0"), key, f"{server.url}/api/v2").ok

    assert server.get_json("/v3/flatcontainer/legacy.root/index.json") == {"versions": ["1.0.0", "1.1.0"]}
    stored = server.get("/v3/flatcontainer/legacy.root/1.0.0/legacy.root.1.0.0.nupkg")
    assert stored.content == first.read_bytes()  # byte for byte (2.8.7 ends its multipart body oddly)
    assert server.get("/api/v2/").headers["content-type"].startswith("application/xml")  # still the feed

    # Refusals are those of /api/v2/package/ too: the same version again, a key for other ids.
    again = legacy.push(first, key, f"{server.url}/api/v2/")
    assert again.returncode != 0 and "(409) Conflict" in again.output, again.output
    other = user_key(server, "legacy", ["push"], globs=["Other.*"])
    refused = legacy.push(build_package("Legacy.Root", "2.0.0"), other, f"{server.url}/api/v2/")
    assert refused.returncode != 0 and "(403) Forbidden" in refused.output, refused.output
    assert server.get_json("/v3/flatcontainer/legacy.root/index.json") == {"versions": ["1.0.0", "1.1.0"]}


def test_nuget_2_8_7_delete_unlists_below_the_feed_root(
    server: NugatServer,
    legacy: LegacyNuGetClient,
    build_package: Callable[..., Path],
    user_key: Callable[..., str],
) -> None:
    pusher = user_key(server, "legacy2", ["push"], globs=["Legacy.Gone"])
    assert legacy.push(build_package("Legacy.Gone", "1.0.0"), pusher, f"{server.url}/api/v2/").ok
    # A key without the unlist scope is refused, and the version stays listed.
    refused = legacy.delete("Legacy.Gone", "1.0.0", pusher, f"{server.url}/api/v2/")
    assert refused.returncode != 0 and "(403) Forbidden" in refused.output, refused.output
    assert server.get_json("/v3/search?q=packageid:Legacy.Gone")["totalHits"] == 1

    unlister = user_key(server, "legacy2", ["unlist"], globs=["Legacy.Gone"])
    deleted = legacy.delete("Legacy.Gone", "1.0.0", unlister, f"{server.url}/api/v2/")
    assert deleted.ok and "Legacy.Gone 1.0.0 was deleted successfully." in deleted.output, deleted.output
    assert server.get_json("/v3/search?q=packageid:Legacy.Gone")["totalHits"] == 0  # unlisted
    # still restorable by its exact version, as an unlisted package is
    assert server.get("/v3/flatcontainer/legacy.gone/1.0.0/legacy.gone.1.0.0.nupkg").status_code == 200


def test_nuget_2_8_7_pushes_and_deletes_with_the_v3_index_as_its_source(
    server: NugatServer,
    legacy: LegacyNuGetClient,
    build_package: Callable[..., Path],
    user_key: Callable[..., str],
) -> None:
    """The source every nuget.exe 3+ user is given: 2.8.7 sends PUT /v3/index.json/ and DELETE
    /v3/index.json/ID/VERSION (it knows no service index), which were 404s."""
    source = f"{server.url}/v3/index.json"
    key = user_key(server, "legacy3", ["push", "unlist"], globs=["Legacy.Indexed"])
    pushed = legacy.push(build_package("Legacy.Indexed", "1.0.0"), key, source)
    assert pushed.ok and "Your package was pushed." in pushed.output, pushed.output
    assert server.get_json("/v3/flatcontainer/legacy.indexed/index.json") == {"versions": ["1.0.0"]}
    assert server.get("/v3/index.json").json()["version"] == "3.0.0"  # still the index
    other = user_key(server, "legacy3", ["push"], globs=["Other.*"])
    refused = legacy.push(build_package("Legacy.Indexed", "2.0.0"), other, source)
    assert refused.returncode != 0 and "(403) Forbidden" in refused.output, refused.output
    deleted = legacy.delete("Legacy.Indexed", "1.0.0", key, source)
    assert deleted.ok and "was deleted successfully." in deleted.output, deleted.output
    assert server.get_json("/v3/search?q=packageid:Legacy.Indexed")["totalHits"] == 0  # unlisted


def test_nuget_2_8_7_installs_the_latest_version_and_lists_in_id_order(
    server: NugatServer,
    legacy: LegacyNuGetClient,
    build_package: Callable[..., Path],
    user_key: Callable[..., str],
    tmp_path: Path,
) -> None:
    key = user_key(server, "legacy3", ["push"], globs=["Legacy.*"])

    def pushed(package_id: str, version: str) -> None:
        _push(server, key, build_package(package_id, version))

    # 1.10.0 is the latest by SemVer (1.9.0 by text); pushed out of order
    for version in ("1.10.0", "1.0.0", "1.11.0-beta", "1.9.0"):
        pushed("Legacy.Lib", version)
    v2 = f"{server.url}/api/v2/"
    # 2.8.7 asks FindPackagesById()?$filter=IsLatestVersion&$orderby=Version desc&$top=1&id='Legacy.Lib'
    latest = legacy.install("Legacy.Lib", source=v2, output_dir=tmp_path / "a")
    assert latest.ok, latest.output
    assert installed_packages(tmp_path / "a") == {"Legacy.Lib.1.10.0"}
    absolute = legacy.install("Legacy.Lib", source=v2, output_dir=tmp_path / "b", prerelease=True)
    assert absolute.ok, absolute.output
    assert installed_packages(tmp_path / "b") == {"Legacy.Lib.1.11.0-beta"}

    # `nuget list` pages Search()?$orderby=Id&$skip=N&$top=30: more than a page, whose ranking by downloads
    # is not their id order
    ids = [f"Legacy.List.N{n:02d}" for n in range(33)]
    for package_id in ids:
        pushed(package_id, "1.0.0")
    engine = sa.create_engine(server.db_url)
    with engine.begin() as c:  # download totals as a process's flush copies them into search
        for n, package_id in enumerate(ids):
            downloads = {"id": package_id.lower(), "n": (n * 7) % 33}
            c.execute(sa.text("UPDATE search_entries SET downloads = :n WHERE id_lower = :id"), downloads)
    engine.dispose()
    listed = legacy.list("Legacy.List", source=v2)
    assert listed.ok, listed.output
    shown = [line.split()[0] for line in listed.output.splitlines() if line.startswith("Legacy.List.")]
    assert shown == ids


def _with_nuget_exe(nupkg: Path, folder: Path) -> Path:
    """A copy of ``nupkg`` whose payload is ``tools/NuGet.exe``: what 2.8.7's self-update installs."""
    copy = folder / nupkg.name
    with zipfile.ZipFile(nupkg) as src, zipfile.ZipFile(copy, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "[Content_Types].xml":
                data = data.replace(
                    b"</Types>", b'<Default Extension="exe" ContentType="application/octet" /></Types>'
                )
            out.writestr("tools/NuGet.exe" if info.filename == "content/readme.txt" else info.filename, data)
    return copy


def test_nuget_2_8_7_updates_itself_from_get_updates(
    server: NugatServer,
    legacy: LegacyNuGetClient,
    build_package: Callable[..., Path],
    user_key: Callable[..., str],
    tmp_path: Path,
) -> None:
    """2.8.7 sends ``GetUpdates()`` only for ``update -Self`` (its ``update`` of a project asks
    FindPackagesById() for each package), to ``https://www.nuget.org/api/v2/`` whatever its sources: a proxy
    that intercepts it passes that to the feed, and the copy of 2.8.7 run is replaced by the NuGet.exe of
    the latest listed NuGet.CommandLine, prerelease included, SemVer 2.0.0 not (it sends no semVerLevel)."""
    key = user_key(server, "legacy4", ["push", "unlist"], globs=["NuGet.CommandLine"])
    for version in ("2.8.6", "3.0.0-beta", "3.0.0-rc.1", "5.0.0"):
        _push(server, key, _with_nuget_exe(build_package("NuGet.CommandLine", version), tmp_path))
    unlisted = httpx.delete(
        f"{server.url}/api/v2/package/NuGet.CommandLine/5.0.0", headers={"X-NuGet-ApiKey": key}
    )
    assert unlisted.status_code == 204, unlisted.text

    host, _, port = server.url.removeprefix("http://").partition(":")
    with intercepting_proxy((host, int(port)), "www.nuget.org", tmp_path) as proxy:
        trust_in_mono(proxy.ca_pem, legacy.home)
        updated = legacy.update_self(tmp_path / "nuget-2.8.7", proxy.url)
    assert updated.ok and "Updating NuGet.exe to 3.0.0-beta." in updated.output, updated.output
    assert (tmp_path / "nuget-2.8.7" / "NuGet.exe").read_text().strip() == "NuGet.CommandLine 3.0.0-beta"
    assert (tmp_path / "nuget-2.8.7" / "NuGet.exe.old").is_file()  # 2.8.7 itself, set aside
    asked = "GET /api/v2/GetUpdates()?packageIds='NuGet.CommandLine'&versions='2.8.7'&includePrerelease=true"
    assert any(line.startswith(asked) for line in proxy.requests), proxy.requests
