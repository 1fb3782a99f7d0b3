"""End to end: the real NuGet client (nuget.exe 4.7.1 on mono) against a real ``nugat serve``.

Every test here runs once per database (``[sqlite]`` and ``[postgres]``); the tests of one module share one
server per database, so each test uses its own package ids. Packages are built by the real ``nuget pack``.

nuget.exe 4.7.1 reports a refused request as ``Response status code does not indicate success: <code>
(<reason phrase>)`` and prints each ``X-NuGet-Warning`` response header as ``WARNING: <text>``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from nugat.services import INVALID_KEY
from support.nugetexe import NuGetClient, NuGetResult, installed_packages
from support.packages import read_nuspec
from support.server import NugatServer, set_key_expiry

pytestmark = pytest.mark.e2e

BuildPackage = Callable[..., Path]
UserKey = Callable[..., str]
CreateKey = Callable[..., dict[str, Any]]

PUSHED = "Your package was pushed"


# ------------------------------------------------------------------------------------------------ helpers


def assert_ok(result: NuGetResult) -> None:
    assert result.returncode == 0, f"nuget.exe failed (exit {result.returncode}):\n{result.output}"


def assert_pushed(result: NuGetResult) -> None:
    assert_ok(result)
    assert PUSHED in result.output, result.output


def assert_refused(result: NuGetResult, status: int, reason: str | None = None) -> None:
    """nuget.exe failed with HTTP ``status``; ``reason`` (the server's X-NuGet-Warning) shows up too."""
    assert result.returncode != 0, f"nuget.exe unexpectedly succeeded:\n{result.output}"
    assert f"Response status code does not indicate success: {status}" in result.output, result.output
    assert PUSHED not in result.output
    if reason is not None:
        assert re.search(rf"WARNING: .*{reason}", result.output, re.IGNORECASE), (
            f"expected the server's reason matching {reason!r} as a WARNING in:\n{result.output}"
        )


def flat_versions(server: NugatServer, package_id: str) -> list[str] | None:
    """Versions in the flat container (``None`` when the server answers 404)."""
    resp = server.get(f"/v3/flatcontainer/{package_id.lower()}/index.json")
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, f"{resp.status_code}: {resp.text[:1000]}"
    versions = resp.json()["versions"]
    assert isinstance(versions, list)
    return versions


def registration_entries(
    server: NugatServer, package_id: str, hive: str = "registration-semver2"
) -> dict[str, dict[str, Any]] | None:
    """``{normalized version (no metadata): catalogEntry}`` from a registration hive; ``None`` on 404."""
    resp = server.get(f"/v3/{hive}/{package_id.lower()}/index.json")
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, f"{resp.status_code}: {resp.text[:1000]}"
    index = resp.json()
    entries: dict[str, dict[str, Any]] = {}
    for page in index["items"]:
        items = page.get("items")
        if items is None:  # not inlined: the page is discovered through its @id
            page_resp = httpx.get(page["@id"], timeout=30)
            assert page_resp.status_code == 200, page["@id"]
            items = page_resp.json()["items"]
        for leaf in items:
            entry = leaf["catalogEntry"]
            assert leaf["packageContent"], leaf
            entries[entry["version"].split("+")[0].lower()] = entry
    assert index["count"] == len(index["items"])
    return entries


def search(server: NugatServer, q: str, *, prerelease: bool = True, semver2: bool = True) -> dict[str, Any]:
    params = {"q": q, "skip": "0", "take": "20", "prerelease": str(prerelease).lower()}
    if semver2:
        params["semVerLevel"] = "2.0.0"
    result: dict[str, Any] = server.get_json("/v3/search", params=params)
    assert set(result) >= {"totalHits", "data"}, result
    return result


def search_hit(server: NugatServer, package_id: str, **kwargs: Any) -> dict[str, Any] | None:
    hits = [d for d in search(server, package_id, **kwargs)["data"] if d["id"].lower() == package_id.lower()]
    assert len(hits) <= 1, hits
    return hits[0] if hits else None


def assert_links_resolve(hit: dict[str, Any]) -> None:
    """The registration and version links of a search result answer 200 (clients follow them)."""
    urls = [hit["registration"]] if hit.get("registration") else []
    urls += [v["@id"] for v in hit["versions"]]
    for url in urls:
        resp = httpx.get(url, timeout=30)
        assert resp.status_code == 200, f"{hit['id']} {hit['version']}: GET {url} -> {resp.status_code}"


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def alice_key(server: NugatServer, user_key: UserKey) -> str:
    """alice's all-powerful key (push + unlist)."""
    return user_key(server, "alice", ["push", "unlist"])


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "installed"


# ----------------------------------------------------------------------------- the infrastructure itself


def test_real_nuget_pack_builds_the_packages(build_package: BuildPackage) -> None:
    pkg = build_package("Infra.Check", "1.0", [("Infra.Dep", "[1.0, )")], tags=["a", "b"])
    assert pkg.name == "Infra.Check.1.0.0.nupkg"  # nuget pack normalizes
    nuspec = read_nuspec(pkg)
    assert "<version>1.0.0</version>" in nuspec
    assert 'id="Infra.Dep"' in nuspec
    assert build_package("Infra.Check", "1.0", [("Infra.Dep", "[1.0, )")], tags=["a", "b"]) == pkg  # cached
    raw = build_package("Infra.Check", "1.0", nuspec_version="1.00")
    assert raw.name == "Infra.Check.1.00.nupkg"
    assert "<version>1.00</version>" in read_nuspec(raw)


# ---------------------------------------------------------------------------------------------- push


def test_push_creates_package(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, alice_key: str
) -> None:
    pkg = build_package("Push.Basic", "1.0.0", description="The first package.")
    result = nuget.push(pkg, alice_key, server.source)
    assert_pushed(result)
    assert "Created" in result.output  # nuget.exe logs the status of the PUT: "Created <url> <ms>"
    assert flat_versions(server, "Push.Basic") == ["1.0.0"]
    download = server.get("/v3/flatcontainer/push.basic/1.0.0/push.basic.1.0.0.nupkg")
    assert download.status_code == 200
    assert download.content == pkg.read_bytes()
    entries = registration_entries(server, "Push.Basic")
    assert entries is not None and set(entries) == {"1.0.0"}
    assert entries["1.0.0"]["id"] == "Push.Basic"
    assert entries["1.0.0"].get("listed", True) is True
    assert entries["1.0.0"]["description"] == "The first package."


def test_push_duplicate_is_409(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, alice_key: str
) -> None:
    pkg = build_package("Push.Twice", "1.0.0")
    assert_pushed(nuget.push(pkg, alice_key, server.source))
    assert_refused(nuget.push(pkg, alice_key, server.source), 409, reason="already exists")
    assert flat_versions(server, "Push.Twice") == ["1.0.0"]


def test_push_1_0_and_1_0_0_are_the_same_version(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, alice_key: str
) -> None:
    short = build_package("Push.Short", "1.0.0", nuspec_version="1.0")
    full = build_package("Push.Short", "1.0.0")
    assert "<version>1.0</version>" in read_nuspec(short)
    assert_pushed(nuget.push(short, alice_key, server.source))
    assert_refused(nuget.push(full, alice_key, server.source), 409)
    assert flat_versions(server, "Push.Short") == ["1.0.0"]
    # and the other way round
    full2 = build_package("Push.Long", "1.0.0")
    short2 = build_package("Push.Long", "1.0.0", nuspec_version="1.0")
    assert_pushed(nuget.push(full2, alice_key, server.source))
    assert_refused(nuget.push(short2, alice_key, server.source), 409)
    assert flat_versions(server, "Push.Long") == ["1.0.0"]


def test_push_normalizes_versions(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, alice_key: str, out_dir: Path
) -> None:
    pkg = build_package("Push.Norm", "1.2.3", nuspec_version="1.02.3.0")
    assert "<version>1.02.3.0</version>" in read_nuspec(pkg)
    assert_pushed(nuget.push(pkg, alice_key, server.source))
    assert flat_versions(server, "Push.Norm") == ["1.2.3"]
    assert server.get("/v3/flatcontainer/push.norm/1.2.3/push.norm.1.2.3.nupkg").status_code == 200
    entries = registration_entries(server, "Push.Norm")
    assert entries is not None and set(entries) == {"1.2.3"}
    # nuget.exe installs it (into a folder named after the nuspec's own spelling: a client detail)
    assert_ok(nuget.install("Push.Norm", "1.2.3", source=server.source, output_dir=out_dir))
    assert_installed_one(out_dir, "Push.Norm", "1.2.3")
    # and the non-normalized spelling resolves to the same package
    out2 = out_dir.with_name("installed-2")
    assert_ok(nuget.install("Push.Norm", "1.02.3.0", source=server.source, output_dir=out2))
    assert_installed_one(out2, "Push.Norm", "1.2.3")


def assert_installed_one(out_dir: Path, package_id: str, version: str) -> None:
    """Exactly one package installed: ``package_id``, whose payload says ``version``."""
    folders = installed_packages(out_dir)
    assert len(folders) == 1 and folders.pop().startswith(f"{package_id}."), installed_packages(out_dir)
    (payload,) = out_dir.glob(f"{package_id}.*/content/readme.txt")
    assert payload.read_text().strip() == f"{package_id} {version}"


def test_push_semver2_prerelease_and_install(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, alice_key: str, out_dir: Path
) -> None:
    pkg = build_package("Push.SemVer2", "2.0.0-beta.1+build")
    assert_pushed(nuget.push(pkg, alice_key, server.source))
    assert flat_versions(server, "Push.SemVer2") == ["2.0.0-beta.1"]
    semver2 = registration_entries(server, "Push.SemVer2", "registration-semver2")
    assert semver2 is not None and set(semver2) == {"2.0.0-beta.1"}
    assert semver2["2.0.0-beta.1"]["version"] == "2.0.0-beta.1+build"
    # the SemVer1 hive must not show a SemVer2 version to old clients
    semver1 = registration_entries(server, "Push.SemVer2", "registration")
    assert not semver1, semver1
    # search hides it from SemVer1 clients, shows it to SemVer2 clients asking for prereleases
    assert search_hit(server, "Push.SemVer2", semver2=False) is None
    assert search_hit(server, "Push.SemVer2", prerelease=False) is None
    hit = search_hit(server, "Push.SemVer2")
    assert hit is not None and hit["version"] == "2.0.0-beta.1+build"
    assert_links_resolve(hit)  # a SemVer2 result must link into the hive that has it

    result = nuget.install(
        "Push.SemVer2", "2.0.0-beta.1", source=server.source, output_dir=out_dir, prerelease=True
    )
    assert_ok(result)
    assert installed_packages(out_dir) == {"Push.SemVer2.2.0.0-beta.1"}
    content = out_dir / "Push.SemVer2.2.0.0-beta.1" / "content" / "readme.txt"
    assert content.read_text().strip() == "Push.SemVer2 2.0.0-beta.1+build"
    # without -Version: the latest prerelease (nuget.exe reads the SemVer2 registration hive)
    latest = out_dir.with_name("latest")
    assert_ok(nuget.install("Push.SemVer2", source=server.source, output_dir=latest, prerelease=True))
    assert installed_packages(latest) == {"Push.SemVer2.2.0.0-beta.1"}


def test_prerelease_labels_ignore_case(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, alice_key: str, out_dir: Path
) -> None:
    assert_pushed(nuget.push(build_package("Push.PreCase", "1.0.0-Beta"), alice_key, server.source))
    assert flat_versions(server, "Push.PreCase") == ["1.0.0-beta"]  # flat container: lowercase
    assert_refused(nuget.push(build_package("Push.PreCase", "1.0.0-BETA"), alice_key, server.source), 409)
    result = nuget.install(
        "Push.PreCase", "1.0.0-beta", source=server.source, output_dir=out_dir, prerelease=True
    )
    assert_ok(result)
    assert_installed_one(out_dir, "Push.PreCase", "1.0.0-Beta")


# --------------------------------------------------------------------------------------------- install


def test_install_exact_version(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, alice_key: str, out_dir: Path
) -> None:
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        assert_pushed(nuget.push(build_package("Inst.Exact", version), alice_key, server.source))
    assert flat_versions(server, "Inst.Exact") == ["1.0.0", "1.1.0", "2.0.0"]
    result = nuget.install("Inst.Exact", "1.1.0", source=server.source, output_dir=out_dir)
    assert_ok(result)
    assert installed_packages(out_dir) == {"Inst.Exact.1.1.0"}
    assert (out_dir / "Inst.Exact.1.1.0" / "content" / "readme.txt").read_text().strip() == "Inst.Exact 1.1.0"
    # without a version: the latest
    latest = out_dir.with_name("latest")
    assert_ok(nuget.install("Inst.Exact", source=server.source, output_dir=latest))
    assert installed_packages(latest) == {"Inst.Exact.2.0.0"}


def test_install_resolves_dependencies(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, alice_key: str, out_dir: Path
) -> None:
    for version in ("1.0.0", "1.5.0"):
        assert_pushed(nuget.push(build_package("Inst.DepB", version), alice_key, server.source))
    app = build_package("Inst.DepA", "1.0.0", [("Inst.DepB", "[1.0, )")])
    assert_pushed(nuget.push(app, alice_key, server.source))
    entries = registration_entries(server, "Inst.DepA")
    assert entries is not None
    deps = [d for g in entries["1.0.0"].get("dependencyGroups", []) for d in g.get("dependencies", [])]
    assert [d["id"] for d in deps] == ["Inst.DepB"], entries["1.0.0"]

    result = nuget.install("Inst.DepA", "1.0.0", source=server.source, output_dir=out_dir)
    assert_ok(result)
    # nuget.exe's default DependencyBehavior is Lowest: the lowest version in [1.0, )
    assert installed_packages(out_dir) == {"Inst.DepA.1.0.0", "Inst.DepB.1.0.0"}
    highest = out_dir.with_name("highest")
    result = nuget.install(
        "Inst.DepA", source=server.source, output_dir=highest, extra=["-DependencyVersion", "Highest"]
    )
    assert_ok(result)
    assert installed_packages(highest) == {"Inst.DepA.1.0.0", "Inst.DepB.1.5.0"}


FRAMEWORK_DEPENDENCIES = """    <dependencies>
      <group targetFramework="net45"><dependency id="Inst.TfmNet" version="1.0.0" /></group>
      <group targetFramework="netstandard2.0"><dependency id="Inst.TfmStd" version="[2.0.0, 3.0.0)" /></group>
    </dependencies>
"""


def test_install_picks_the_dependency_group_of_the_framework(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, alice_key: str, out_dir: Path
) -> None:
    deps = [
        build_package("Inst.TfmNet", "1.0.0"),
        *(build_package("Inst.TfmStd", v) for v in ("2.0.0", "2.5.0", "3.0.0")),
        build_package("Inst.TfmApp", "1.0.0", extra_metadata_xml=FRAMEWORK_DEPENDENCIES),
    ]
    for pkg in deps:
        assert_pushed(nuget.push(pkg, alice_key, server.source))
    entries = registration_entries(server, "Inst.TfmApp")
    assert entries is not None
    groups = entries["1.0.0"]["dependencyGroups"]
    assert len(groups) == 2, groups

    assert_ok(
        nuget.install("Inst.TfmApp", source=server.source, output_dir=out_dir, extra=["-Framework", "net45"])
    )
    assert installed_packages(out_dir) == {"Inst.TfmApp.1.0.0", "Inst.TfmNet.1.0.0"}
    std = out_dir.with_name("netstandard")
    extra = ["-Framework", "netstandard2.0", "-DependencyVersion", "Highest"]
    assert_ok(nuget.install("Inst.TfmApp", source=server.source, output_dir=std, extra=extra))
    assert installed_packages(std) == {"Inst.TfmApp.1.0.0", "Inst.TfmStd.2.5.0"}  # [2.0.0, 3.0.0)


def test_install_unknown_package_fails(server: NugatServer, nuget: NuGetClient, out_dir: Path) -> None:
    result = nuget.install("Inst.DoesNotExist", "1.0.0", source=server.source, output_dir=out_dir)
    assert result.returncode != 0, result.output
    assert "'Inst.DoesNotExist 1.0.0' is not found" in result.output, result.output
    assert installed_packages(out_dir) == set()


# ---------------------------------------------------------------------------------------------- search


def test_search_over_http(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, alice_key: str
) -> None:
    pushes = [
        build_package("Srch.Alpha", "1.0.0", description="Alpha one", tags=["zebra"]),
        build_package("Srch.Alpha", "1.1.0", description="Alpha latest", tags=["zebra"]),
        build_package("Srch.Alpha", "2.0.0-rc1", description="Alpha prerelease"),
        build_package("Srch.Beta", "0.9.0", description="Beta"),
    ]
    for pkg in pushes:
        assert_pushed(nuget.push(pkg, alice_key, server.source))

    both = search(server, "Srch")
    assert both["totalHits"] == 2, both
    assert sorted(d["id"] for d in both["data"]) == ["Srch.Alpha", "Srch.Beta"]

    stable = search(server, "Srch.Alpha", prerelease=False)
    assert stable["totalHits"] == 1, stable
    alpha = stable["data"][0]
    assert alpha["id"] == "Srch.Alpha"
    assert alpha["version"] == "1.1.0"
    assert [v["version"] for v in alpha["versions"]] == ["1.0.0", "1.1.0"]
    assert alpha["description"] == "Alpha latest"

    pre = search_hit(server, "Srch.Alpha", prerelease=True)
    assert pre is not None
    assert pre["version"] == "2.0.0-rc1"
    assert [v["version"] for v in pre["versions"]] == ["1.0.0", "1.1.0", "2.0.0-rc1"]

    assert_links_resolve(alpha)
    assert_links_resolve(pre)

    assert search(server, "Srch.NoSuchThing")["totalHits"] == 0
    everything = search(server, "")
    assert {"Srch.Alpha", "Srch.Beta"} <= {d["id"] for d in everything["data"]}

    # paging: totalHits counts every match, skip/take select the page
    params = {"q": "Srch", "prerelease": "true", "semVerLevel": "2.0.0"}
    first = server.get_json("/v3/search", params={**params, "skip": "0", "take": "1"})
    second = server.get_json("/v3/search", params={**params, "skip": "1", "take": "1"})
    assert first["totalHits"] == second["totalHits"] == 2
    assert len(first["data"]) == len(second["data"]) == 1
    assert {first["data"][0]["id"], second["data"][0]["id"]} == {"Srch.Alpha", "Srch.Beta"}


# ------------------------------------------------------------------------------------------ delete = unlist


def test_delete_unlists(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, alice_key: str, out_dir: Path
) -> None:
    for version in ("1.0.0", "2.0.0"):
        assert_pushed(nuget.push(build_package("Unl.Pkg", version), alice_key, server.source))
    assert search_hit(server, "Unl.Pkg") is not None

    result = nuget.delete("Unl.Pkg", "2.0.0", alice_key, server.source)
    assert_ok(result)
    assert "was deleted successfully" in result.output, result.output

    # search no longer offers 2.0.0 ...
    hit = search_hit(server, "Unl.Pkg")
    assert hit is not None
    assert hit["version"] == "1.0.0"
    assert [v["version"] for v in hit["versions"]] == ["1.0.0"]
    # ... the flat container still has it, and the registration says it is unlisted
    assert flat_versions(server, "Unl.Pkg") == ["1.0.0", "2.0.0"]
    entries = registration_entries(server, "Unl.Pkg")
    assert entries is not None
    assert entries["2.0.0"]["listed"] is False
    assert entries["1.0.0"].get("listed", True) is True
    # an exact-version install still works
    # (nuget.exe 4.7.1 `install` without -Version picks the highest version even when it is unlisted,
    # although the registration says listed: false; so "latest" is not asserted here.)
    assert_ok(nuget.install("Unl.Pkg", "2.0.0", source=server.source, output_dir=out_dir))
    assert installed_packages(out_dir) == {"Unl.Pkg.2.0.0"}

    # unlisting the only remaining listed version hides the package from search altogether
    assert_ok(nuget.delete("Unl.Pkg", "1.0.0", alice_key, server.source))
    assert search_hit(server, "Unl.Pkg") is None
    assert flat_versions(server, "Unl.Pkg") == ["1.0.0", "2.0.0"]

    # unlisting again is fine (idempotent); an unknown version is 404
    assert_ok(nuget.delete("Unl.Pkg", "1.0.0", alice_key, server.source))
    assert_refused(nuget.delete("Unl.Pkg", "9.9.9", alice_key, server.source), 404, "not exist|not found")
    assert_refused(nuget.delete("Unl.NoSuchPackage", "1.0.0", alice_key, server.source), 404)


def test_relist_over_http(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, alice_key: str
) -> None:
    assert_pushed(nuget.push(build_package("Unl.Relist", "1.0.0"), alice_key, server.source))
    assert_ok(nuget.delete("Unl.Relist", "1.0.0", alice_key, server.source))
    assert search_hit(server, "Unl.Relist") is None
    resp = httpx.post(
        f"{server.url}/api/v2/package/Unl.Relist/1.0.0", headers={"X-NuGet-ApiKey": alice_key}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    assert search_hit(server, "Unl.Relist") is not None
    entries = registration_entries(server, "Unl.Relist")
    assert entries is not None and entries["1.0.0"].get("listed", True) is True


def test_ids_and_versions_as_typed(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, alice_key: str, out_dir: Path
) -> None:
    """nuget.exe sends the id and version of `delete`/`install` as the user typed them."""
    assert_pushed(nuget.push(build_package("Typed.Pkg", "1.0.0"), alice_key, server.source))
    assert_ok(nuget.install("typed.pkg", "1.0", source=server.source, output_dir=out_dir))
    assert_installed_one(out_dir, "Typed.Pkg", "1.0.0")
    assert_ok(nuget.delete("typed.PKG", "1.0", alice_key, server.source))  # DELETE .../typed.PKG/1.0
    entries = registration_entries(server, "Typed.Pkg")
    assert entries is not None and entries["1.0.0"]["listed"] is False


def test_push_to_v2_style_sources(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, alice_key: str
) -> None:
    """A source that is not a V3 index is treated as V2: nuget.exe PUTs to ``<source>/api/v2/package/``
    (bare host) or ``<source>/`` (an explicit push URL)."""
    assert_pushed(nuget.push(build_package("V2Src.Root", "1.0.0"), alice_key, server.url))
    assert_pushed(
        nuget.push(build_package("V2Src.Explicit", "1.0.0"), alice_key, f"{server.url}/api/v2/package")
    )
    assert flat_versions(server, "V2Src.Root") == ["1.0.0"]
    assert flat_versions(server, "V2Src.Explicit") == ["1.0.0"]


# ------------------------------------------------------------------------------------------- key scopes


def test_push_version_key_cannot_create_a_package_id(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, user_key: UserKey, alice_key: str
) -> None:
    versions_only = user_key(server, "alice", ["push-version"])
    result = nuget.push(build_package("Scope.PushVersion", "1.0.0"), versions_only, server.source)
    # the reason travels in X-NuGet-Warning, which nuget.exe prints as a WARNING line
    assert_refused(result, 403, reason="new versions")
    assert flat_versions(server, "Scope.PushVersion") is None

    assert_pushed(nuget.push(build_package("Scope.PushVersion", "1.0.0"), alice_key, server.source))
    assert_pushed(nuget.push(build_package("Scope.PushVersion", "1.1.0"), versions_only, server.source))
    assert flat_versions(server, "Scope.PushVersion") == ["1.0.0", "1.1.0"]


def test_push_version_key_is_limited_to_its_users_packages(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, user_key: UserKey, alice_key: str
) -> None:
    assert_pushed(nuget.push(build_package("Scope.AlicePV", "1.0.0"), alice_key, server.source))
    bob_versions = user_key(server, "bob", ["push-version"])
    result = nuget.push(build_package("Scope.AlicePV", "1.1.0"), bob_versions, server.source)
    assert_refused(result, 403, reason="not an owner")
    assert flat_versions(server, "Scope.AlicePV") == ["1.0.0"]


def test_glob_key(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, user_key: UserKey
) -> None:
    contoso = user_key(server, "carol", ["push"], globs=["Contoso.*"])
    assert_pushed(nuget.push(build_package("Contoso.Core", "1.0.0"), contoso, server.source))
    assert_pushed(
        nuget.push(build_package("contoso.core", "1.1.0"), contoso, server.source)
    )  # ids ignore case
    assert_refused(nuget.push(build_package("Other.Lib", "1.0.0"), contoso, server.source), 403, "Other.Lib")
    assert_refused(nuget.push(build_package("Contoso", "1.0.0"), contoso, server.source), 403)
    assert flat_versions(server, "Contoso.Core") == ["1.0.0", "1.1.0"]
    assert flat_versions(server, "Other.Lib") is None


def test_package_list_key(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, user_key: UserKey
) -> None:
    listed = user_key(server, "carol", ["push"], packages=["Scope.Listed"])
    assert_pushed(nuget.push(build_package("Scope.Listed", "1.0.0"), listed, server.source))
    assert_refused(nuget.push(build_package("Scope.NotListed", "1.0.0"), listed, server.source), 403)
    assert_refused(nuget.push(build_package("Scope.Listed.Extra", "1.0.0"), listed, server.source), 403)
    assert flat_versions(server, "Scope.NotListed") is None


def test_other_users_key_cannot_push_or_unlist(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, user_key: UserKey, alice_key: str
) -> None:
    assert_pushed(nuget.push(build_package("Scope.AliceOwns", "1.0.0"), alice_key, server.source))
    bob = user_key(server, "bob", ["push", "unlist"])
    result = nuget.push(build_package("Scope.AliceOwns", "1.1.0"), bob, server.source)
    assert_refused(result, 403, reason="not an owner")
    assert_refused(nuget.delete("Scope.AliceOwns", "1.0.0", bob, server.source), 403, "not an owner")
    assert flat_versions(server, "Scope.AliceOwns") == ["1.0.0"]
    entries = registration_entries(server, "Scope.AliceOwns")
    assert entries is not None and entries["1.0.0"].get("listed", True) is True
    # bob's key still works for bob's own packages
    assert_pushed(nuget.push(build_package("Scope.BobOwns", "1.0.0"), bob, server.source))


def test_unlist_needs_the_unlist_scope(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, user_key: UserKey
) -> None:
    push_only = user_key(server, "dave", ["push"])
    unlist_only = user_key(server, "dave", ["unlist"])
    assert_pushed(nuget.push(build_package("Scope.Unlist", "1.0.0"), push_only, server.source))
    assert_refused(nuget.delete("Scope.Unlist", "1.0.0", push_only, server.source), 403, "unlist")
    assert search_hit(server, "Scope.Unlist") is not None
    # an unlist-only key cannot push, not even a new version of its user's package
    assert_refused(nuget.push(build_package("Scope.Unlist", "1.1.0"), unlist_only, server.source), 403)
    assert_ok(nuget.delete("Scope.Unlist", "1.0.0", unlist_only, server.source))
    assert search_hit(server, "Scope.Unlist") is None


# ---------------------------------------------------------------------------------------- key lifecycle


def test_regenerated_key_replaces_the_old_secret(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, create_key: CreateKey
) -> None:
    info = create_key(server, "erin", ["push"])
    assert_pushed(nuget.push(build_package("Life.Regen", "1.0.0"), info["key"], server.source))
    proc = server.cli("key", "regenerate", "--user", "erin", info["id"], "--json", check=True)
    new_key = regenerated_secret(proc.stdout)
    assert new_key != info["key"]
    result = nuget.push(build_package("Life.Regen", "1.1.0"), info["key"], server.source)
    assert_refused(result, 403, f"API key {info['id']} was regenerated on ")
    assert_pushed(nuget.push(build_package("Life.Regen", "1.1.0"), new_key, server.source))


def regenerated_secret(stdout: str) -> str:
    data = json.loads(stdout)
    assert isinstance(data, dict) and isinstance(data.get("key"), str), stdout
    return str(data["key"])


def test_deleted_key_is_refused(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, create_key: CreateKey
) -> None:
    info = create_key(server, "erin", ["push"])
    assert_pushed(nuget.push(build_package("Life.Deleted", "1.0.0"), info["key"], server.source))
    server.cli("key", "delete", "--user", "erin", info["id"], check=True)
    result = nuget.push(build_package("Life.Deleted", "1.1.0"), info["key"], server.source)
    assert_refused(result, 403, f"API key {info['id']} does not exist")


def test_expired_key_is_refused(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, create_key: CreateKey
) -> None:
    info = create_key(server, "erin", ["push", "unlist"], expires_in_days=30)
    assert_pushed(nuget.push(build_package("Life.Expired", "1.0.0"), info["key"], server.source))
    set_key_expiry(server, info["id"], datetime.now(UTC) - timedelta(minutes=5))
    result = nuget.push(build_package("Life.Expired", "1.1.0"), info["key"], server.source)
    assert_refused(result, 403, reason=f"API key {info['id']} expired on ")
    assert_refused(nuget.delete("Life.Expired", "1.0.0", info["key"], server.source), 403, "expired on")
    assert flat_versions(server, "Life.Expired") == ["1.0.0"]


def test_key_about_to_expire_warns(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, create_key: CreateKey
) -> None:
    info = create_key(server, "erin", ["push"], expires_in_days=3)
    result = nuget.push(build_package("Life.Expiring", "1.0.0"), info["key"], server.source)
    assert_pushed(result)
    assert re.search(r"WARNING: .*expires", result.output), result.output


@pytest.mark.parametrize(
    "bad_key",
    [
        "garbage",
        "nugat_aaaaaaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAaaaaaaa",
    ],
    ids=["garbage", "well-formed-unknown"],
)
def test_invalid_key_is_403(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, bad_key: str
) -> None:
    result = nuget.push(build_package("Life.BadKey", "1.0.0"), bad_key, server.source)
    assert_refused(result, 403, "not a nugat API key|does not exist")
    assert flat_versions(server, "Life.BadKey") is None


def test_missing_key_is_403(server: NugatServer, build_package: BuildPackage) -> None:
    # nuget.exe without -ApiKey falls back to its config; send the request directly instead.
    pkg = build_package("Life.NoKey", "1.0.0")
    files = {"package": ("package.nupkg", pkg.read_bytes(), "application/octet-stream")}
    resp = httpx.put(f"{server.url}/api/v2/package/", files=files, timeout=30)
    assert resp.status_code == 403, resp.text
    assert "www-authenticate" not in resp.headers  # push takes a key, never credentials
    assert resp.text.startswith("No API key was sent") and resp.text.endswith(INVALID_KEY)
    assert resp.headers["x-nuget-warning"] == resp.text
    assert flat_versions(server, "Life.NoKey") is None


def test_dead_keys_in_a_terminal_never_ask_for_a_password(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, create_key: CreateKey
) -> None:
    """As a person at a terminal runs it (no -NonInteractive, a pseudo-terminal): every dead key ends
    nuget.exe promptly, non-zero, with the reason, and never with ``UserName:`` (what a 401 brought)."""
    expired = create_key(server, "erin", ["push"], expires_in_days=30)
    set_key_expiry(server, expired["id"], datetime.now(UTC) - timedelta(minutes=5))
    deleted = create_key(server, "erin", ["push"])
    server.cli("key", "delete", "--user", "erin", deleted["id"], check=True)
    regenerated = create_key(server, "erin", ["push"])
    server.cli("key", "regenerate", "--user", "erin", regenerated["id"], check=True)
    revoked = create_key(server, "erin", ["push"])
    server.cli("key", "revoke", "--owner", "erin", revoked["id"], check=True)
    disabled = create_key(server, "tess", ["push"])
    server.cli("user", "disable", "tess", check=True)
    cases = [
        ("not-a-key", "The API key is not a nugat API key"),
        (expired["key"], f"API key {expired['id']} expired on "),
        (deleted["key"], f"API key {deleted['id']} does not exist"),
        (regenerated["key"], f"API key {regenerated['id']} was regenerated on "),
        (revoked["key"], f"API key {revoked['id']} was revoked on "),
        (disabled["key"], f"API key {disabled['id']} was revoked on .*tess's account was disabled"),
    ]
    package = build_package("Life.Terminal", "1.0.0")
    for key, reason in cases:
        started = time.monotonic()
        result = nuget.run_in_terminal("push", str(package), "-Source", server.source, "-ApiKey", key)
        took = time.monotonic() - started
        assert "UserName:" not in result.output and "credentials" not in result.output, result.output
        assert result.returncode not in (0, -9), result.output  # -9: killed at a prompt or the timeout
        assert took < 60, f"{took:.0f} s"
        assert "Response status code does not indicate success: 403" in result.output, result.output
        assert re.search(f"WARNING: {reason}", result.output), result.output
        assert INVALID_KEY in result.output
    assert flat_versions(server, "Life.Terminal") is None
    # an unlist (nuget delete, answering its question) with a dead key ends the same way
    owner = create_key(server, "erin", ["push", "unlist"])
    assert_pushed(nuget.push(build_package("Life.Terminal.Unlist", "1.0.0"), owner["key"], server.source))
    server.cli("key", "revoke", "--owner", "erin", owner["id"], check=True)
    args = ["delete", "Life.Terminal.Unlist", "1.0.0", "-Source", server.source, "-ApiKey", owner["key"]]
    result = nuget.run_in_terminal(*args, confirm=True)
    assert "UserName:" not in result.output and result.returncode not in (0, -9), result.output
    assert "Response status code does not indicate success: 403" in result.output, result.output
    assert re.search(f"WARNING: API key {owner['id']} was revoked on ", result.output), result.output
