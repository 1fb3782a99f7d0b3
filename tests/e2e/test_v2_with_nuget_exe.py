"""End to end: ``nuget list`` (V2 search through the index's LegacyGallery) and install from the V2 feed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from support.nugetexe import NuGetClient, installed_packages
from support.server import NugatServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.parametrize("server", ["sqlite"], indirect=True, scope="module"),
]


def listed(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.startswith("V2List.")]


def test_list_shows_latest_versions_and_hides_unlisted(
    server: NugatServer, nuget: NuGetClient, build_package: Callable[..., Path], user_key: Callable[..., str]
) -> None:
    key = user_key(server, "v2user", ["push", "unlist"], globs=["V2List.*"])
    for package_id, version in [
        ("V2List.Alpha", "1.0.0"),
        ("V2List.Alpha", "1.1.0"),
        ("V2List.Alpha", "2.0.0-beta"),
        ("V2List.Beta", "0.5.0"),
        ("V2List.Gone", "1.0.0"),
    ]:
        result = nuget.push(build_package(package_id, version, tags=["v2test"]), key, server.source)
        assert result.ok, result.output
    assert nuget.delete("V2List.Gone", "1.0.0", key, server.source).ok

    latest = nuget.list("V2List", source=server.source)
    assert latest.ok, latest.output
    assert listed(latest.output) == ["V2List.Alpha 1.1.0", "V2List.Beta 0.5.0"]

    every = nuget.list("V2List.Alpha", source=server.source, extra=["-AllVersions", "-Prerelease"])
    assert every.ok, every.output
    # nuget.exe prints an id's versions newest first
    assert listed(every.output) == ["V2List.Alpha 2.0.0-beta", "V2List.Alpha 1.1.0", "V2List.Alpha 1.0.0"]

    direct = nuget.list("V2List", source=f"{server.url}/api/v2")  # a V2-only source works as well
    assert listed(direct.output) == ["V2List.Alpha 1.1.0", "V2List.Beta 0.5.0"]


def test_install_from_the_v2_feed_resolves_the_latest_and_exact_versions(
    server: NugatServer,
    nuget: NuGetClient,
    build_package: Callable[..., Path],
    user_key: Callable[..., str],
    tmp_path: Path,
) -> None:
    key = user_key(server, "v2user", ["push"], globs=["V2Inst.*"])
    for version in ("1.0.0", "1.2.0"):
        assert nuget.push(build_package("V2Inst.Lib", version), key, server.source).ok
    v2 = f"{server.url}/api/v2"
    latest = nuget.install("V2Inst.Lib", source=v2, output_dir=tmp_path / "a")
    assert latest.ok, latest.output
    assert installed_packages(tmp_path / "a") == {"V2Inst.Lib.1.2.0"}
    exact = nuget.install("V2Inst.Lib", "1.0.0", source=v2, output_dir=tmp_path / "b")
    assert exact.ok, exact.output
    assert installed_packages(tmp_path / "b") == {"V2Inst.Lib.1.0.0"}
