"""End to end: private reads with the real NuGet client (nuget.exe 4.7.1 on mono).

A ``NUGAT_READ_ACCESS=users`` server: the source is added as a user would (``nuget sources add`` with any
user name and a read key as the password, stored in the clear in a NuGet.Config), then ``install`` with a
dependency, ``list`` (V2) and ``restore`` of a packages.config; and what the client shows without
credentials, with a key covering other ids, and with a revoked key. Then a private organization on a public
server: a member's read key installs its package, while to anyone else it does not exist.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.nugetexe import NuGetClient, NuGetResult, installed_packages
from support.server import NugatServer, create_key, free_port, running_server

pytestmark = pytest.mark.e2e

BuildPackage = Callable[..., Path]
PUSHED = "Your package was pushed"
NEEDS_CREDENTIALS = "This feed needs credentials"
NOT_FOUND = "is not found in the following primary source(s)"


def _any_time(text: str) -> str:
    """``text`` with its Atom ``<updated>`` times blanked."""
    return re.sub(r"<updated>[^<]*</updated>", "<updated/>", text)


def assert_ok(result: NuGetResult) -> None:
    assert result.returncode == 0, f"nuget.exe failed (exit {result.returncode}):\n{result.output}"


def assert_failed(result: NuGetResult, *texts: str) -> None:
    assert result.returncode != 0, f"nuget.exe unexpectedly succeeded:\n{result.output}"
    for text in texts:
        assert text in result.output, f"{text!r} not in:\n{result.output}"


def add_source(nuget: NuGetClient, source: str, password: str | None) -> str:
    """Add the feed as source ``x`` to the client's NuGet.Config (with the key as its password)."""
    args = ["sources", "add", "-Name", "x", "-Source", source]
    if password is not None:
        args += ["-Username", "any", "-Password", password, "-StorePasswordInClearText"]
    assert_ok(nuget.run(*args, "-ConfigFile", str(nuget.config_file)))
    return "x"


def client(tmp_path: Path, nuget_exe: Path, name: str, source: str, password: str | None) -> NuGetClient:
    made = NuGetClient(nuget_exe, tmp_path / name)
    add_source(made, source, password)
    return made


@pytest.fixture(scope="module")
def private_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NugatServer]:
    with running_server(
        tmp_path_factory.mktemp("users-site"), extra_env={"NUGAT_READ_ACCESS": "users"}
    ) as server:
        yield server


@pytest.fixture(scope="module")
def pushed(
    private_site: NugatServer,
    nuget_exe: Path,
    build_package: BuildPackage,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """Priv.Lib 1.0.0 and Priv.App 1.0.0 (depending on Priv.Lib), pushed by alice with only an API key:
    ``nuget push`` reads the service index, which needs no credentials."""
    pusher = NuGetClient(nuget_exe, tmp_path_factory.mktemp("pusher"))
    key = create_key(private_site, "alice", ["push"])["key"]
    for package in (
        build_package("Priv.Lib", "1.0.0"),
        build_package("Priv.App", "1.0.0", [("Priv.Lib", "[1.0, )")]),
    ):
        result = pusher.push(package, key, private_site.source)
        assert_ok(result)
        assert PUSHED in result.output
    return {"reader": create_key(private_site, "alice", ["read"], ["Priv.*"])}


def test_a_read_key_installs_lists_and_restores(
    private_site: NugatServer, pushed: dict[str, Any], nuget_exe: Path, tmp_path: Path
) -> None:
    nuget = client(tmp_path, nuget_exe, "reader", private_site.source, pushed["reader"]["key"])
    out = tmp_path / "installed"
    assert_ok(nuget.install("Priv.App", "1.0.0", source="x", output_dir=out))
    assert installed_packages(out) == {"Priv.App.1.0.0", "Priv.Lib.1.0.0"}  # the dependency resolved too

    listed = nuget.list("Priv", source="x")
    assert_ok(listed)
    assert "Priv.App 1.0.0" in listed.output and "Priv.Lib 1.0.0" in listed.output

    project = tmp_path / "project"
    project.mkdir()
    config = project / "packages.config"
    entry = '<package id="Priv.Lib" version="1.0.0" targetFramework="net45" />'
    config.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<packages>{entry}</packages>\n')
    restored = project / "packages"
    assert_ok(nuget.run("restore", str(config), "-PackagesDirectory", str(restored), "-Source", "x"))
    assert installed_packages(restored) == {"Priv.Lib.1.0.0"}


def test_without_credentials_the_client_fails_with_401_and_the_reason(
    private_site: NugatServer, pushed: dict[str, Any], nuget_exe: Path, tmp_path: Path
) -> None:
    nuget = client(tmp_path, nuget_exe, "stranger", private_site.source, None)
    result = nuget.install("Priv.Lib", "1.0.0", source="x", output_dir=tmp_path / "out")
    assert_failed(result, "401", NEEDS_CREDENTIALS)
    assert installed_packages(tmp_path / "out") == set()


def test_a_key_covering_other_ids_finds_nothing(
    private_site: NugatServer, pushed: dict[str, Any], nuget_exe: Path, tmp_path: Path
) -> None:
    other = create_key(private_site, "bob", ["read"], ["Other.*"])["key"]
    nuget = client(tmp_path, nuget_exe, "other", private_site.source, other)
    result = nuget.install("Priv.Lib", "1.0.0", source="x", output_dir=tmp_path / "out")
    assert_failed(result, f"Package 'Priv.Lib 1.0.0' {NOT_FOUND}")
    listed = nuget.list("Priv", source="x")
    assert_ok(listed)
    assert "Priv." not in listed.output


def test_a_revoked_key_is_refused_with_its_reason(
    private_site: NugatServer, pushed: dict[str, Any], nuget_exe: Path, tmp_path: Path
) -> None:
    info = create_key(private_site, "carol", ["read"], ["Priv.*"])
    nuget = client(tmp_path, nuget_exe, "revoked", private_site.source, info["key"])
    assert_ok(nuget.install("Priv.Lib", "1.0.0", source="x", output_dir=tmp_path / "before"))
    private_site.cli("key", "revoke", "--owner", "carol", info["id"], check=True)
    time.sleep(1.1)  # the revocation delay (README: at most a second)
    result = nuget.install("Priv.Lib", "1.0.0", source="x", output_dir=tmp_path / "after")
    assert_failed(result, "401", f"API key {info['id']} was revoked")


# A private organization on a public server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def public_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NugatServer]:
    """With ``NUGAT_PUBLIC_URL``: documents stored with their final URLs, served on ``/private`` too."""
    port = free_port()
    env = {"NUGAT_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    with running_server(tmp_path_factory.mktemp("public-site"), extra_env=env, port=port) as server:
        yield server


@pytest.fixture(scope="module")
def org_package(
    public_site: NugatServer,
    nuget_exe: Path,
    build_package: BuildPackage,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """Corp.Secret 1.0.0 of the private organization corp (dana a member), pushed with corp's key."""
    create_key(public_site, "dana", ["read"])  # makes dana
    public_site.cli("org", "create", "corp", "--admin", "dana", check=True)
    push = public_site.cli("key", "create", "--user", "dana", "--name", "corp-push", "--owner", "corp",
                           "--scope", "push", "--glob", "*", "--json", check=True)  # fmt: skip
    push_key = json.loads(push.stdout)["key"]
    pusher = NuGetClient(nuget_exe, tmp_path_factory.mktemp("corp-pusher"))
    assert_ok(pusher.push(build_package("Corp.Secret", "1.0.0"), push_key, public_site.source))
    public_site.cli("org", "private", "corp", "on", check=True)
    listed = json.loads(public_site.cli("org", "list", "--json", check=True).stdout)
    assert [o["private"] for o in listed if o["name"] == "corp"] == [True]
    time.sleep(1.1)
    member = create_key(public_site, "dana", ["read"], ["Corp.*"])["key"]
    outsider = create_key(public_site, "erin", ["read", "push"], ["*"])["key"]
    return {"member": member, "outsider": outsider, "push": push_key}


def private_source(server: NugatServer) -> str:
    """The credentialed source: the NuGet client sends a source's password only when a 401 asks for it,
    which the public URL never does for an id it hides."""
    return f"{server.url}/private/v3/index.json"


def test_a_members_key_installs_the_private_package(
    public_site: NugatServer, org_package: dict[str, str], nuget_exe: Path, tmp_path: Path
) -> None:
    nuget = client(tmp_path, nuget_exe, "member", private_source(public_site), org_package["member"])
    out = tmp_path / "out"
    assert_ok(nuget.install("Corp.Secret", "1.0.0", source="x", output_dir=out))
    assert installed_packages(out) == {"Corp.Secret.1.0.0"}


def test_a_member_installs_a_private_package_with_its_dependency_through_the_credentialed_source(
    public_site: NugatServer,
    org_package: dict[str, str],
    nuget_exe: Path,
    tmp_path: Path,
    build_package: BuildPackage,
) -> None:
    pusher = NuGetClient(nuget_exe, tmp_path / "pusher")
    app = build_package("Corp.App", "1.0.0", [("Corp.Secret", "1.0.0")])
    assert_ok(pusher.push(app, org_package["push"], public_site.source))
    time.sleep(1.1)  # the private ids, kept 1 s
    member = ("any", org_package["member"])
    links = public_site.get("/private/v3/registration/corp.app/index.json", auth=member)
    assert links.status_code == 200
    assert f"{public_site.url}/v3/" not in links.text  # every feed URL stays on the credentialed source
    assert f"{public_site.url}/private/v3/flatcontainer/corp.app/1.0.0/corp.app.1.0.0.nupkg" in links.text
    nuget = client(tmp_path, nuget_exe, "member", private_source(public_site), org_package["member"])
    out = tmp_path / "out"
    assert_ok(nuget.install("Corp.App", "1.0.0", source="x", output_dir=out))
    assert installed_packages(out) == {"Corp.App.1.0.0", "Corp.Secret.1.0.0"}


@pytest.mark.parametrize("credentials", ["none", "outsider key"])
def test_to_anyone_else_the_private_package_does_not_exist(
    public_site: NugatServer,
    org_package: dict[str, str],
    nuget_exe: Path,
    tmp_path: Path,
    build_package: BuildPackage,
    credentials: str,
) -> None:
    password = org_package["outsider"] if credentials == "outsider key" else None
    source = private_source(public_site) if password else public_site.source
    nuget = client(tmp_path, nuget_exe, "outsider", source, password)
    result = nuget.install("Corp.Secret", "1.0.0", source="x", output_dir=tmp_path / "out")
    assert_failed(result, f"Package 'Corp.Secret 1.0.0' {NOT_FOUND}")
    never = nuget.install("Corp.Never", "1.0.0", source="x", output_dir=tmp_path / "out")
    assert result.output.replace("Corp.Secret", "X") == never.output.replace("Corp.Never", "X")
    listed = nuget.list("Corp", source="x")
    assert_ok(listed)
    assert "Corp.Secret" not in listed.output
    auth = ("any", password) if password else None
    prefix = "/private" if password else ""
    for path in (
        "/v3/flatcontainer/corp.secret/index.json",
        "/v3/registration/corp.secret/index.json",
        "/api/v2/FindPackagesById()?id='Corp.Secret'",
        "/packages/Corp.Secret",
        "/v3/search?q=Corp",
    ):
        never_path = path.replace("corp.secret", "corp.never").replace("Corp.Secret", "Corp.Never")
        feed = "" if path.startswith("/packages/") else prefix  # pages are not on the credentialed source
        seen = public_site.get(feed + path, auth=auth)
        absent = public_site.get(feed + never_path, auth=auth)
        assert seen.status_code == absent.status_code
        # The two requests may straddle a second: an empty V2 feed's <updated> is the time of the answer.
        assert _any_time(
            seen.text.replace("Corp.Secret", "Corp.Never").replace("corp.secret", "corp.never")
        ) == _any_time(absent.text) or (path.startswith("/v3/search") and "Corp.Secret" not in seen.text)
    # Pushing the id as an outsider is refused as before the org was private: the id exists, it is not theirs.
    if password is not None:
        pushed = nuget.push(build_package("Corp.Secret", "2.0.0"), password, public_site.source)
        assert_failed(pushed, "403", "erin is not an owner of Corp.Secret")


def test_service_index_needs_no_credentials_on_either_site(
    private_site: NugatServer, public_site: NugatServer
) -> None:
    for server in (private_site, public_site):
        assert httpx.get(server.source, timeout=10).status_code == 200
