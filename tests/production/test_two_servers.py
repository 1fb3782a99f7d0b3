"""Two ``nugat serve`` processes (two hosts, as far as nugat can tell: separate data folders) sharing one
PostgreSQL database and one S3 bucket: what either does, the other serves.

Key management goes through the ``nugat`` command with the first server's settings (straight to the shared
database, as the web pages of the first server would); the second server must refuse the old secret on the
very next request, since keys are checked against the database on every push.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from production.helpers import push, s3_env
from support.nugetexe import NuGetClient, installed_packages
from support.s3 import S3Server
from support.server import NugatServer, create_key, postgres_database, running_server, user_key
from support.zips import package

pytestmark = pytest.mark.e2e

CACHE_SECONDS = 1.0  # NUGAT_S3_CACHE_SECONDS: how long a server may answer from what it saw before


@pytest.fixture(scope="module")
def servers(
    s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[NugatServer, NugatServer]]:
    env = s3_env(s3_server, s3_server.new_bucket()) | {
        "NUGAT_SECRET_KEY": secrets.token_urlsafe(32),  # every process must hash keys alike
        "NUGAT_S3_CACHE_SECONDS": str(CACHE_SECONDS),
    }
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database())
        a, b = (
            stack.enter_context(
                running_server(
                    tmp_path_factory.mktemp(f"host-{name}"), "postgres", extra_env=env, database_url=url
                )
            )
            for name in "ab"
        )
        yield a, b


def eventually(check: Callable[[], bool], what: str, within: float = CACHE_SECONDS + 4) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{what} within {within} s"
        time.sleep(0.1)


def flat_status(server: NugatServer, id_lower: str) -> int:
    return server.get(f"/v3/flatcontainer/{id_lower}/index.json").status_code


def test_a_push_through_one_is_restorable_through_the_other(
    servers: tuple[NugatServer, NugatServer],
    nuget: NuGetClient,
    build_package: Callable[..., Path],
    tmp_path: Path,
) -> None:
    a, b = servers
    key = user_key(a, "hosts", ["push", "unlist"])
    assert flat_status(b, "two.hosts") == 404  # b now remembers "not there" for up to CACHE_SECONDS
    result = nuget.push(build_package("Two.Hosts", "1.0.0"), key, a.source)
    assert result.ok and "Your package was pushed" in result.output, result.output
    eventually(lambda: flat_status(b, "two.hosts") == 200, "b serves the version a took")
    assert b.get_json("/v3/flatcontainer/two.hosts/index.json") == {"versions": ["1.0.0"]}
    result = nuget.install("Two.Hosts", "1.0.0", source=b.source, output_dir=tmp_path / "out")
    assert result.ok, result.output
    assert installed_packages(tmp_path / "out") == {"Two.Hosts.1.0.0"}

    # an unlist through b shows in a's registration documents
    assert nuget.delete("Two.Hosts", "1.0.0", key, b.source).ok

    def unlisted_on_a() -> bool:
        index = a.get_json("/v3/registration/two.hosts/index.json")
        return index["items"][0]["items"][0]["catalogEntry"]["listed"] is False

    eventually(unlisted_on_a, "a shows the unlist b made")


def test_a_key_changed_through_one_is_refused_by_the_other_at_once(
    servers: tuple[NugatServer, NugatServer],
) -> None:
    a, b = servers
    info = create_key(a, "hosts", ["push"])
    old = str(info["key"])
    assert push(b, old, package("Two.Keys", "1.0.0")).status_code == 201
    regenerated = a.cli("key", "regenerate", "--user", "hosts", str(info["id"]), "--json", check=True)
    new_key = str(json.loads(regenerated.stdout)["key"])
    assert push(b, old, package("Two.Keys", "1.1.0")).status_code == 403
    assert push(b, new_key, package("Two.Keys", "1.1.0")).status_code == 201
    a.cli("key", "delete", "--user", "hosts", str(info["id"]), check=True)
    refused = push(b, new_key, package("Two.Keys", "1.2.0"))
    assert refused.status_code == 403, refused.text
    assert a.get_json("/v3/flatcontainer/two.keys/index.json") == {"versions": ["1.0.0", "1.1.0"]}


def test_a_user_disabled_through_one_is_refused_by_the_other_at_once(
    servers: tuple[NugatServer, NugatServer],
) -> None:
    a, b = servers
    revoked = create_key(a, "leaver", ["push"])
    kept = create_key(a, "leaver", ["push"])
    assert push(b, str(kept["key"]), package("Two.Leaver", "1.0.0")).status_code == 201
    a.cli("key", "revoke", "--owner", "leaver", str(revoked["id"]), check=True)
    refused = push(b, str(revoked["key"]), package("Two.Leaver", "1.1.0"))
    assert refused.status_code == 403 and "was revoked on" in refused.headers["x-nuget-warning"]
    a.cli("user", "disable", "leaver", check=True)
    refused = push(b, str(kept["key"]), package("Two.Leaver", "1.1.0"))
    assert (
        refused.status_code == 403 and "leaver's account was disabled" in refused.headers["x-nuget-warning"]
    )
