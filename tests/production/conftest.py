"""Servers set up as in production: several worker processes, PostgreSQL, packages on S3."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from production.helpers import NO_PUSH_LIMIT, SETUPS, s3_env
from support.nugetexe import NuGetClient
from support.s3 import S3Server
from support.server import NugatServer, running_server


@pytest.fixture
def nuget(nuget_exe: Path, tmp_path: Path) -> NuGetClient:
    """nuget.exe with a private HOME/config; every command gets fresh caches."""
    return NuGetClient(nuget_exe, tmp_path / "nuget-home")


@pytest.fixture(scope="module", params=SETUPS)
def busy_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NugatServer]:
    """``nugat serve --workers 2`` on each setup, without the hourly push limit (load tests push a lot)."""
    database, _, storage = request.param.partition("-")
    env = dict(NO_PUSH_LIMIT)
    if storage == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        env |= s3_env(s3, s3.new_bucket())
    data_dir = tmp_path_factory.mktemp(f"busy-{request.param}")
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running_server(data_dir, database, extra_env=env, workers=2))
        except Exception as exc:
            pytest.fail(f"could not start nugat serve ({request.param}): {exc}", pytrace=False)
        yield server
