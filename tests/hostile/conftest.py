"""Fixtures of the hostile-input tests: a real ``nugat serve`` with tight limits, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from hostile.harness import Feed
from support.server import NugatServer, running_server, user_key
from support.zips import MIB

DATABASES = ("sqlite", "postgres")

LIMIT = 2 * MIB  # NUGAT_MAX_PACKAGE_BYTES of the hostile server
IDLE_TIMEOUT = 2  # seconds without upload data before a push is dropped
UPLOAD_TIMEOUT = 5  # seconds an upload may take in all
HOSTILE_ENV = {
    "NUGAT_MAX_PACKAGE_BYTES": str(LIMIT),
    "NUGAT_UPLOAD_IDLE_TIMEOUT": str(IDLE_TIMEOUT),
    "NUGAT_UPLOAD_TIMEOUT": str(UPLOAD_TIMEOUT),
}


@contextlib.contextmanager
def started(
    tmp_path_factory: pytest.TempPathFactory, name: str, database: str, env: dict[str, str]
) -> Iterator[NugatServer]:
    data_dir = tmp_path_factory.mktemp(f"{name}-{database}")
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running_server(data_dir, database, extra_env=env))
        except Exception as exc:  # a broken server or an unreachable PostgreSQL fails (never skips) tests
            pytest.fail(f"could not start nugat serve ({database}): {exc}", pytrace=False)
        yield server


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
