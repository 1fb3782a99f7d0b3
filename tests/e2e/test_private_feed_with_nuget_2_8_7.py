"""End to end: private reads with Debian's legacy ``nuget`` 2.8.7 (V2 only), credentials in its NuGet.Config.

NuGet 2.x asks for a source's credentials only when the first GET of the source (the V2 service document)
answers 401; its queries then carry them, and a 401 to a query fails the client ("Could not connect to the
feed"). It follows a download's redirect without them. So on a ``users`` site the service document asks
for credentials, and a download sent with credentials is the .nupkg itself. On a public site, the
credentialed source ``/private/api/v2/`` serves a private organization's package to a member's key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest

from support.nugetexe import LegacyNuGetClient, NuGetClient, NuGetExeMissing, installed_packages
from support.server import NugatServer, create_key, running_server

pytestmark = pytest.mark.e2e

BuildPackage = Callable[..., Path]


def legacy_client(home: Path, source: str, password: str | None) -> LegacyNuGetClient:
    """2.8.7 with source ``x`` (and the key as its password, in clear text) in its NuGet.Config."""
    try:
        legacy = LegacyNuGetClient(home)
    except NuGetExeMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    credentials = ""
    if password is not None:
        credentials = (
            "<packageSourceCredentials><x>"
            '<add key="Username" value="any" />'
            f'<add key="ClearTextPassword" value={quoteattr(password)} />'
            "</x></packageSourceCredentials>"
        )
    legacy.config_file.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<configuration>'
        f'<packageSources><clear /><add key="x" value={quoteattr(source)} /></packageSources>'
        f'{credentials}<config><add key="http_proxy" value="" /></config></configuration>\n'
    )
    return legacy


@pytest.fixture(scope="module")
def users_site(
    tmp_path_factory: pytest.TempPathFactory, nuget_exe: Path, build_package: BuildPackage
) -> Iterator[tuple[NugatServer, str]]:
    """A ``users`` site with Old.Lib and Old.App (depending on it), and a read key covering them."""
    with running_server(
        tmp_path_factory.mktemp("users-site"), extra_env={"NUGAT_READ_ACCESS": "users"}
    ) as server:
        pusher = NuGetClient(nuget_exe, tmp_path_factory.mktemp("pusher"))
        key = create_key(server, "alice", ["push"])["key"]
        for package in (
            build_package("Old.Lib", "1.0.0"),
            build_package("Old.App", "1.0.0", [("Old.Lib", "[1.0, )")]),
        ):
            result = pusher.push(package, key, server.source)
            assert result.ok, result.output
        yield server, create_key(server, "alice", ["read"], ["Old.*"])["key"]


def test_nuget_2_8_7_installs_from_a_users_site_with_the_sources_credentials(
    users_site: tuple[NugatServer, str], tmp_path: Path
) -> None:
    server, reader = users_site
    legacy = legacy_client(tmp_path / "home", f"{server.url}/api/v2/", reader)
    out = tmp_path / "out"
    result = legacy.install("Old.App", source="x", output_dir=out)
    assert result.ok, result.output
    assert installed_packages(out) == {"Old.App.1.0.0", "Old.Lib.1.0.0"}  # the dependency too


def test_nuget_2_8_7_without_credentials_or_with_a_key_for_other_ids_installs_nothing(
    users_site: tuple[NugatServer, str], tmp_path: Path
) -> None:
    server, _ = users_site
    other = create_key(server, "bob", ["read"], ["Other.*"])["key"]
    for name, password in (("stranger", None), ("other", other)):
        legacy = legacy_client(tmp_path / name, f"{server.url}/api/v2/", password)
        result = legacy.install("Old.Lib", source="x", output_dir=tmp_path / f"out-{name}")
        assert result.returncode != 0, result.output
        assert installed_packages(tmp_path / f"out-{name}") == set()


def test_nuget_2_8_7_installs_a_private_organizations_package_through_the_credentialed_source(
    tmp_path_factory: pytest.TempPathFactory, nuget_exe: Path, build_package: BuildPackage, tmp_path: Path
) -> None:
    with running_server(tmp_path_factory.mktemp("public-site")) as server:
        create_key(server, "dana", ["read"])  # makes dana
        server.cli("org", "create", "corp", "--admin", "dana", check=True)
        push = server.cli("key", "create", "--user", "dana", "--name", "corp-push", "--owner", "corp",
                          "--scope", "push", "--glob", "*", "--json", check=True)  # fmt: skip
        pusher = NuGetClient(nuget_exe, tmp_path / "pusher")
        pushed = pusher.push(
            build_package("Corp.Old", "1.0.0"), json.loads(push.stdout)["key"], server.source
        )
        assert pushed.ok, pushed.output
        server.cli("org", "private", "corp", "on", check=True)
        member = create_key(server, "dana", ["read"], ["Corp.*"])["key"]

        legacy = legacy_client(tmp_path / "member", f"{server.url}/private/api/v2/", member)
        result = legacy.install("Corp.Old", source="x", output_dir=tmp_path / "out")
        assert result.ok, result.output
        assert installed_packages(tmp_path / "out") == {"Corp.Old.1.0.0"}
