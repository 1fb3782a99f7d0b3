"""Concurrent pushes against ``nugat serve --workers 2``: on SQLite, PostgreSQL, and PostgreSQL with S3.

The requests are real HTTP requests from threads, released together by a barrier, so they land on both
worker processes; packages are small valid .nupkg files made with zipfile (fast to make by the fifty).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from nugat.versions import parse_version
from production.helpers import push, stored_keys, versions_everywhere
from support.s3 import S3Server
from support.server import NugatServer, user_key
from support.zips import package


@pytest.fixture(scope="module")
def key(busy_server: NugatServer) -> str:
    return user_key(busy_server, "racer", ["push"])


@pytest.fixture
def s3(busy_server: NugatServer, request: pytest.FixtureRequest) -> S3Server | None:
    return request.getfixturevalue("s3_server") if "NUGAT_STORAGE_URL" in busy_server.env else None


def push_together(server: NugatServer, key: str, bodies: list[bytes]) -> list[int]:
    """Push every body at once (one thread and connection each); the statuses in the same order."""
    barrier = threading.Barrier(len(bodies), timeout=60)

    def one(body: bytes) -> int:
        with httpx.Client() as client:
            barrier.wait()
            return push(server, key, body, client).status_code

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, bodies))


@pytest.mark.parametrize("new_id", [True, False], ids=["new-id", "existing-id"])
def test_two_pushes_of_one_version_one_wins_and_nothing_is_left_behind(
    busy_server: NugatServer, key: str, s3: S3Server | None, new_id: bool
) -> None:
    for round_ in range(5):
        package_id = f"Race.Same{'New' if new_id else 'Old'}{round_}"
        if not new_id:
            assert push(busy_server, key, package(package_id, "0.1.0")).status_code == 201
        body = package(package_id, "1.0.0")
        statuses = push_together(busy_server, key, [body, body])
        assert sorted(statuses) == [201, 409], f"round {round_}: {statuses}"
        id_lower = package_id.lower()
        expected = ["1.0.0"] if new_id else ["0.1.0", "1.0.0"]
        assert versions_everywhere(busy_server, package_id) == {
            "flat": expected,
            "registration": expected,
            "registration-semver2": expected,
        }
        blobs = {
            k
            for k in stored_keys(busy_server, s3, f"v3/flatcontainer/{id_lower}")
            if k.endswith((".nupkg", ".nuspec"))
        }
        assert blobs == {
            f"v3/flatcontainer/{id_lower}/{v}/{name}"
            for v in expected
            for name in (f"{id_lower}.{v}.nupkg", f"{id_lower}.nuspec")
        }, "an orphan blob was left behind"


def test_fifty_concurrent_versions_of_one_id_all_succeed_and_are_all_listed(
    busy_server: NugatServer, key: str
) -> None:
    versions = [f"1.{i // 10}.{i % 10}" for i in range(50)]
    seen: list[int] = []
    done = threading.Event()

    def read_while_pushing() -> None:
        """Readers never see half a document (each answer parses), nor a version list that shrinks."""
        with httpx.Client(base_url=busy_server.url, timeout=30) as client:
            while not done.is_set():
                for path in (
                    "/v3/flatcontainer/race.many/index.json",
                    "/v3/registration/race.many/index.json",
                ):
                    resp = client.get(path)
                    assert resp.status_code in (200, 404), resp.text
                    if resp.status_code == 200 and path.startswith("/v3/flat"):
                        seen.append(len(resp.json()["versions"]))
                    elif resp.status_code == 200:
                        assert resp.json()["count"] >= 1

    with ThreadPoolExecutor(1) as pool:
        reader = pool.submit(read_while_pushing)
        try:
            statuses = push_together(busy_server, key, [package("Race.Many", v) for v in versions])
        finally:
            done.set()
        reader.result()
    assert statuses == [201] * 50, statuses
    assert seen, "the reader never saw the id"
    if "NUGAT_STORAGE_URL" not in busy_server.env:  # on S3 each worker may lag up to NUGAT_S3_CACHE_SECONDS
        assert seen == sorted(seen), seen
    ordered = sorted(versions, key=parse_version)
    expected = {"flat": ordered, "registration": ordered, "registration-semver2": ordered}
    if "NUGAT_STORAGE_URL" in busy_server.env:
        # Each worker trusts what S3 last told it for NUGAT_S3_CACHE_SECONDS (1 s): what the reader made
        # one of them see during the pushes must expire first. (Polling until one answer matched was
        # wrong: the next answer could come from the other worker, inside its second.)
        time.sleep(2.0)
    assert versions_everywhere(busy_server, "Race.Many") == expected
