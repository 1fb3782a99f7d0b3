"""A revoked read key is refused by every process of ``nugat serve --workers 2`` within the stated delay
(``services.readers.READ_CACHE_SECONDS``, in the README), on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from production.helpers import push
from support.server import NugatServer, create_key, running_server
from support.zips import package

pytestmark = pytest.mark.e2e

REVOCATION_DELAY = 1.0  # README: a revoked key may read for at most this long
REQUESTS = 60  # enough for both workers to answer many of them


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NugatServer]:
    data_dir: Path = tmp_path_factory.mktemp(f"private-{request.param}")
    env = {"NUGAT_READ_ACCESS": "users"}
    with contextlib.ExitStack() as stack:
        yield stack.enter_context(running_server(data_dir, request.param, extra_env=env, workers=2))


def statuses(server: NugatServer, key: str) -> list[int]:
    """The statuses of REQUESTS reads, each on a new connection (spread over the workers)."""
    path = f"{server.url}/v3/flatcontainer/two.procs/index.json"
    return [httpx.get(path, auth=("any", key), timeout=10).status_code for _ in range(REQUESTS)]


def test_a_revoked_key_is_refused_by_every_process_within_the_delay(server: NugatServer) -> None:
    pusher = create_key(server, "alice", ["push"])["key"]
    assert push(server, pusher, package("Two.Procs", "1.0.0")).status_code == 201
    reader = create_key(server, "alice", ["read"], ["Two.*"])
    assert set(statuses(server, reader["key"])) == {200}  # every process has the key's facts in memory
    server.cli("key", "revoke", "--owner", "alice", reader["id"], check=True)
    revoked_at = time.monotonic()
    time.sleep(max(0.0, revoked_at + REVOCATION_DELAY - time.monotonic()) + 0.05)
    answers = statuses(server, reader["key"])
    assert set(answers) == {401}, answers
    refused = httpx.get(f"{server.url}/v3/search?q=two", auth=("any", reader["key"]), timeout=10)
    assert refused.status_code == 401 and f"API key {reader['id']} was revoked" in refused.text
