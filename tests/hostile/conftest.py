"""Fixtures of the hostile-input tests: a real ``nugat serve`` with tight limits, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hostile.harness import DATABASES, HOSTILE_ENV, Feed, started
from support.server import NugatServer, user_key


@pytest.fixture(scope="module", params=DATABASES)
def hostile_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NugatServer]:
    """A server with a 2 MiB package limit and upload timeouts of a few seconds."""
    with started(tmp_path_factory, "hostile", request.param, HOSTILE_ENV) as server:
        yield server


@pytest.fixture(scope="module")
def feed(hostile_server: NugatServer) -> Iterator[Feed]:
    feed = Feed(hostile_server, user_key(hostile_server, "alice", ["push", "unlist"]))
    yield feed
    feed.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The secret grep reads what every server of the session wrote: it runs after all other tests."""
    last = [i for i in items if i.path.name == "test_zz_no_secrets_leaked.py"]
    items[:] = [i for i in items if i not in last] + last
