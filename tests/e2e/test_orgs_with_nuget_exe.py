"""End to end: organizations, their keys, reserved prefixes and co-owners, with the real nuget.exe 4.7.1.

Every test runs once per database (``[sqlite]`` and ``[postgres]``) against one ``nugat serve`` per module;
each test uses its own organization, users and package ids. What is decided here lives in the database, not
in the package storage, so the ``postgres-s3`` setup (the feed tests' concern) is left out to save time.
Organizations, members, prefixes and owners are managed through the ``nugat`` command, as an operator
would; pushes and deletes go through nuget.exe.

The issue's "co-ownership request accepted in the browser" is accepted here through the owners service on
the server's own database: the pages for it are built with the web pages work (their browser tests).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nugat.core import Core
from nugat.keys import parse_key
from nugat.settings import Settings
from support.nugetexe import NuGetClient, NuGetResult
from support.server import NugatServer, ensure_user

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.parametrize("server", ["sqlite", "postgres"], indirect=True, scope="module"),
]

BuildPackage = Callable[..., Path]
PUSHED = "Your package was pushed"


def assert_pushed(result: NuGetResult) -> None:
    assert result.returncode == 0 and PUSHED in result.output, result.output


def assert_refused(result: NuGetResult, status: int, reason: str) -> None:
    """nuget.exe failed with HTTP ``status``, printing the server's reason (X-NuGet-Warning)."""
    assert result.returncode != 0, f"nuget.exe unexpectedly succeeded:\n{result.output}"
    assert f"Response status code does not indicate success: {status}" in result.output, result.output
    warning = rf"WARNING: .*{re.escape(reason)}"
    assert re.search(warning, result.output), f"no WARNING with {reason!r}:\n{result.output}"


def cli_json(server: NugatServer, *args: str) -> Any:
    return json.loads(server.cli(*args, "--json", check=True).stdout)


def cli_fails(server: NugatServer, *args: str) -> str:
    proc = server.cli(*args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return str(proc.stderr)


_key_names = itertools.count(1)


def new_key(server: NugatServer, user: str, *scopes: str, owner: str, glob: str = "*") -> dict[str, Any]:
    """A key of ``user`` acting for ``owner`` (the user itself or one of its organizations)."""
    ensure_user(server, user)
    name = f"{user}-{owner}-{next(_key_names)}"  # a user's key names are unique
    args = ["key", "create", "--user", user, "--name", name, "--owner", owner, "--glob", glob]
    for scope in scopes:
        args += ["--scope", scope]
    info: dict[str, Any] = cli_json(server, *args)
    assert info["owner"] == owner and info["key"].startswith("nugat_")
    return info


def create_org(server: NugatServer, org: str, admin: str, **members: str) -> None:
    ensure_user(server, admin)
    server.cli("org", "create", org, "--admin", admin, check=True)
    for user, role in members.items():
        ensure_user(server, user)
        server.cli("org", "add-member", org, user, "--role", role, check=True)


def owners(server: NugatServer, package_id: str) -> list[tuple[str, str]]:
    return [(o["name"], o["kind"]) for o in cli_json(server, "owner", "list", package_id)]


def flat_versions(server: NugatServer, package_id: str) -> list[str] | None:
    resp = server.get(f"/v3/flatcontainer/{package_id.lower()}/index.json")
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    versions: list[str] = resp.json()["versions"]
    return versions


def audit(server: NugatServer, *args: str) -> list[dict[str, Any]]:
    """Audit events, oldest first."""
    events: list[dict[str, Any]] = cli_json(server, "audit", *args)
    return events[::-1]


def steps(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["action"], e["actor"], e["account"], e["package"], e["version"]) for e in events]


@pytest.fixture(scope="module")
def operator(server: NugatServer) -> Iterator[Core]:
    """The services on the server's own data folder and database (for what only the web pages offer)."""
    core = Core(Settings(data_dir=server.data_dir, database_url=server.database_url))
    yield core
    core.close()


# -------------------------------------------------------------------------------------------- the issue


def test_org_keys_from_creation_to_removal(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage
) -> None:
    # alice creates Contoso and adds bob as a collaborator
    create_org(server, "Contoso", "alice", bob="collaborator")
    orgs = cli_json(server, "org", "list")
    contoso = next(o for o in orgs if o["name"] == "Contoso")
    assert contoso["members"] == [{"name": "alice", "role": "admin"}, {"name": "bob", "role": "collaborator"}]

    # bob's key owned by Contoso pushes Contoso.Lib, owned by the org, then a new version
    bob = new_key(server, "bob", "push", "unlist", owner="Contoso", glob="Contoso.*")
    assert_pushed(nuget.push(build_package("Contoso.Lib", "1.0.0"), bob["key"], server.source))
    assert owners(server, "Contoso.Lib") == [("Contoso", "org")]
    assert_pushed(nuget.push(build_package("Contoso.Lib", "1.1.0"), bob["key"], server.source))
    assert flat_versions(server, "Contoso.Lib") == ["1.0.0", "1.1.0"]

    # carol is not a member: she cannot make a key for Contoso, and her own key cannot push its package
    ensure_user(server, "carol")
    refused = ["key", "create", "--user", "carol", "--name", "x", "--owner", "Contoso", "--scope", "push"]
    assert "not a member" in cli_fails(server, *refused, "--glob", "*")
    carol = new_key(server, "carol", "push", "unlist", owner="carol")
    result = nuget.push(build_package("Contoso.Lib", "1.2.0"), carol["key"], server.source)
    assert_refused(result, 403, "carol is not an owner of Contoso.Lib")

    # bob leaves the org: his org key is revoked for good, for pushes and deletes alike
    server.cli("org", "remove-member", "Contoso", "bob", check=True)
    result = nuget.push(build_package("Contoso.Lib", "1.2.0"), bob["key"], server.source)
    assert_refused(result, 403, f"API key {bob['id']} was revoked on ")
    assert "bob is no longer a member of Contoso" in result.output
    result = nuget.delete("Contoso.Lib", "1.1.0", bob["key"], server.source)
    assert_refused(result, 403, "bob is no longer a member of Contoso")
    # re-adding bob does not revive it (issue 10): its list shows it revoked, with the reason
    server.cli("org", "add-member", "Contoso", "bob", "--role", "collaborator", check=True)
    result = nuget.push(build_package("Contoso.Lib", "1.2.0"), bob["key"], server.source)
    assert_refused(result, 403, "bob is no longer a member of Contoso")
    [listed] = [k for k in cli_json(server, "key", "list", "--user", "bob") if k["id"] == bob["id"]]
    assert (listed["state"], listed["revoked_reason"]) == ("revoked", "bob is no longer a member of Contoso")
    server.cli("org", "remove-member", "Contoso", "bob", check=True)
    assert flat_versions(server, "Contoso.Lib") == ["1.0.0", "1.1.0"]
    # the org itself goes on: alice's key for Contoso pushes
    alice = new_key(server, "alice", "push", owner="Contoso")
    assert_pushed(nuget.push(build_package("Contoso.Lib", "1.2.0"), alice["key"], server.source))

    # every step is in the audit log, with who, for whom, from where and through which key
    everything = audit(server)
    events = [e for e in everything if "Contoso" in (e["actor"], e["account"])]
    assert steps(events) == [
        ("org.create", None, "Contoso", None, None),
        ("org.member_add", None, "Contoso", None, None),
        ("key.create", "bob", "Contoso", None, None),
        ("package.push", "bob", "Contoso", "Contoso.Lib", "1.0.0"),
        ("package.push", "bob", "Contoso", "Contoso.Lib", "1.1.0"),
        ("org.member_remove", None, "Contoso", None, None),
        ("key.revoke", None, "Contoso", None, None),
        ("key.use_failed", "bob", "Contoso", None, None),
        ("key.use_failed", "bob", "Contoso", None, None),
        ("org.member_add", None, "Contoso", None, None),
        ("key.use_failed", "bob", "Contoso", None, None),
        ("org.member_remove", None, "Contoso", None, None),
        ("key.create", "alice", "Contoso", None, None),
        ("package.push", "alice", "Contoso", "Contoso.Lib", "1.2.0"),
    ]
    assert events[1]["detail"] == {"member": "bob", "role": "collaborator"}
    assert events[5]["detail"] == {"member": "bob", "role": "collaborator"}
    pushes = [e for e in events if e["action"] == "package.push" and e["actor"] == "bob"]
    assert {(e["key_id"], e["address"]) for e in pushes} == {(bob["id"], "127.0.0.1")}
    assert events[6]["detail"] == {"name": bob["name"], "creator_id": events[6]["detail"]["creator_id"]} | {
        "reason": "bob is no longer a member of Contoso"
    }
    assert "bob is no longer a member of Contoso" in events[8]["detail"]["reason"]
    carol_failures = [e for e in everything if e["action"] == "key.use_failed" and e["actor"] == "carol"]
    assert [(e["account"], e["package"], e["key_id"]) for e in carol_failures] == [
        ("carol", "Contoso.Lib", carol["id"])
    ]
    dumped = json.dumps(everything)
    for secret in (bob["key"], carol["key"], alice["key"]):
        parsed = parse_key(secret)
        assert parsed is not None and parsed.secret not in dumped


def test_push_version_and_glob_rules_hold_for_org_keys(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage
) -> None:
    create_org(server, "Fabrikam", "frank", grace="collaborator")
    full = new_key(server, "frank", "push", owner="Fabrikam")
    versions_only = new_key(server, "grace", "push-version", owner="Fabrikam")
    glob = new_key(server, "grace", "push", owner="Fabrikam", glob="Fabrikam.Tools.*")

    result = nuget.push(build_package("Fabrikam.Core", "1.0.0"), versions_only["key"], server.source)
    assert_refused(result, 403, "may only push new versions")
    assert_pushed(nuget.push(build_package("Fabrikam.Core", "1.0.0"), full["key"], server.source))
    assert_pushed(nuget.push(build_package("Fabrikam.Core", "1.1.0"), versions_only["key"], server.source))

    assert_pushed(nuget.push(build_package("Fabrikam.Tools.Cli", "1.0.0"), glob["key"], server.source))
    result = nuget.push(build_package("Fabrikam.Core", "1.2.0"), glob["key"], server.source)
    assert_refused(result, 403, "matches no package or glob")

    assert flat_versions(server, "Fabrikam.Core") == ["1.0.0", "1.1.0"]
    assert owners(server, "Fabrikam.Tools.Cli") == [("Fabrikam", "org")]


def test_reserved_prefix_blocks_new_ids_of_others(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage
) -> None:
    create_org(server, "Northwind", "nora", oscar="collaborator")
    outsider = new_key(server, "mallory", "push", owner="mallory")
    # before the reservation, mallory already owns an id under the prefix: it stays hers
    assert_pushed(nuget.push(build_package("Northwind.Legacy", "1.0.0"), outsider["key"], server.source))
    reserve = server.cli("prefix", "reserve", "Northwind.", "--owner", "Northwind", check=True)
    assert "reserved Northwind.* for Northwind" in reserve.stdout
    assert {"prefix": "Northwind.*", "owners": ["Northwind"]} in cli_json(server, "prefix", "list")

    result = nuget.push(build_package("Northwind.Data", "1.0.0"), outsider["key"], server.source)
    assert_refused(result, 409, "Northwind.Data is in a reserved prefix")
    assert flat_versions(server, "Northwind.Data") is None
    assert_pushed(nuget.push(build_package("Northwind.Legacy", "1.1.0"), outsider["key"], server.source))

    oscar_org = new_key(server, "oscar", "push", owner="Northwind")
    assert_pushed(nuget.push(build_package("Northwind.Data", "1.0.0"), oscar_org["key"], server.source))

    # search and registration mark the org's package verified; mallory's older one is not
    hits = {h["id"]: h for h in server.get_json("/v3/search", params={"q": "Northwind"})["data"]}
    assert (hits["Northwind.Data"]["verified"], hits["Northwind.Legacy"]["verified"]) == (True, False)
    for package_id, verified in (("Northwind.Data", True), ("Northwind.Legacy", False)):
        index = server.get_json(f"/v3/registration-semver2/{package_id.lower()}/index.json")
        entries = [leaf["catalogEntry"] for page in index["items"] for leaf in page["items"]]
        assert {e["verified"] for e in entries} == {verified}

    reserved = [e for e in audit(server, "--user", "Northwind") if e["action"] == "prefix.reserve"]
    assert [(e["actor"], e["detail"]) for e in reserved] == [(None, {"prefix": "Northwind.*"})]
    refusals = [e for e in audit(server, "--package", "Northwind.Data") if e["action"] == "key.use_failed"]
    assert [(e["actor"], e["key_id"], e["address"]) for e in refusals] == [
        ("mallory", outsider["id"], "127.0.0.1")
    ]


def test_accepted_co_ownership_is_honoured_by_push(
    server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, operator: Core
) -> None:
    owner = new_key(server, "olga", "push", owner="olga")
    peter = new_key(server, "peter", "push", owner="peter")
    assert_pushed(nuget.push(build_package("Olga.Utils", "1.0.0"), owner["key"], server.source))

    operator.owners.invite("Olga.Utils", "peter", by="olga")
    result = nuget.push(build_package("Olga.Utils", "1.1.0"), peter["key"], server.source)
    assert_refused(result, 403, "peter is not an owner of Olga.Utils")  # invited is not yet an owner
    operator.owners.accept("Olga.Utils", "peter", by="peter")  # the web page's "Accept" (see the docstring)
    assert owners(server, "Olga.Utils") == [("olga", "user"), ("peter", "user")]
    assert_pushed(nuget.push(build_package("Olga.Utils", "1.1.0"), peter["key"], server.source))

    # the last owner cannot be removed; an operator removes one of two directly
    server.cli("owner", "remove", "Olga.Utils", "olga", check=True)
    assert "last owner" in cli_fails(server, "owner", "remove", "Olga.Utils", "peter")
    result = nuget.push(build_package("Olga.Utils", "1.2.0"), owner["key"], server.source)
    assert_refused(result, 403, "olga is not an owner")

    assert steps(audit(server, "--package", "Olga.Utils")) == [
        ("package.push", "olga", "olga", "Olga.Utils", "1.0.0"),
        ("owner.invite", "olga", "peter", "Olga.Utils", None),
        ("key.use_failed", "peter", "peter", "Olga.Utils", "1.1.0"),
        ("owner.add", "peter", "peter", "Olga.Utils", None),
        ("package.push", "peter", "peter", "Olga.Utils", "1.1.0"),
        ("owner.remove", None, "olga", "Olga.Utils", None),
        ("key.use_failed", "olga", "olga", "Olga.Utils", "1.2.0"),
    ]
