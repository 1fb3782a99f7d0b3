"""Fixtures shared by all test suites: the real nuget.exe, real packages and a real ``nugat serve``.

The helpers live in ``tests/support`` (importable as ``support``):

* ``nuget_exe``: path of nuget.exe 4.7.1 (``$NUGAT_NUGET_EXE`` or ``.tools/nuget.exe``).
* ``build_package(id, version, dependencies=[(id, range)], description=, authors=, tags=,
  extra_metadata_xml=, nuspec_version=)``: a .nupkg made by ``mono nuget.exe pack``, built once per session.
* ``server``: a running ``nugat serve`` per test module, on SQLite, and on a fresh PostgreSQL database with
  the packages in an S3 bucket (parameter ids ``sqlite`` / ``postgres-s3``; ``postgres`` also works);
  ``.url``, ``.source``, ``.data_dir``, ``.env``, ``.cli(*args, input=None)``, ``.db_url``, ``.log_path``.
* ``s3_server``: a local S3-protocol server (moto) for the session: ``.endpoint``, ``.new_bucket()``,
  ``.storage_url(bucket)``, ``.client()``.
* ``user_key(server, user, scopes, globs=(), packages=(), expires_in_days=None)``: secret of a new API key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.nugetexe import NuGetExeMissing, find_mono, find_nuget_exe
from support.packages import PackageBuilder
from support.s3 import CREDENTIALS, S3Server, moto_server
from support.server import LOG_FILES, NugatServer, running_server
from support.server import create_key as _create_key
from support.server import user_key as _user_key

# The embedded default, and the production setup: PostgreSQL with the packages in an S3 bucket (a local
# moto server). PostgreSQL with the local folder runs in tests/hostile and tests/production; adding
# "postgres" here runs the whole end-to-end suite once more on it (minutes of nuget.exe).
SERVERS = ("sqlite", "postgres-s3")


@pytest.fixture(scope="session")
def nuget_exe() -> Path:
    try:
        find_mono()
        return find_nuget_exe()
    except NuGetExeMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def package_builder(nuget_exe: Path, tmp_path_factory: pytest.TempPathFactory) -> PackageBuilder:
    return PackageBuilder(nuget_exe, tmp_path_factory.mktemp("packages"))


@pytest.fixture(scope="session")
def build_package(package_builder: PackageBuilder) -> Callable[..., Path]:
    return package_builder.build


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A local S3-protocol server (moto) on 127.0.0.1, started the first time a test needs it."""
    try:
        with moto_server(tmp_path_factory.mktemp("moto")) as s3:
            yield s3
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NugatServer]:
    """One real server per test module and setup; tests sharing it must use distinct package ids."""
    database, _, storage = request.param.partition("-")
    data_dir = tmp_path_factory.mktemp(f"server-{request.param}")
    env = {}
    if storage == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        env = {**CREDENTIALS, "NUGAT_STORAGE_URL": s3.storage_url(s3.new_bucket())}
    with contextlib.ExitStack() as stack:
        try:
            srv = stack.enter_context(running_server(data_dir, database, extra_env=env))
        except Exception as exc:  # a broken server or an unreachable PostgreSQL fails (never skips) tests
            pytest.fail(f"could not start nugat serve ({request.param}): {exc}", pytrace=False)
        yield srv


@pytest.fixture(scope="session")
def user_key() -> Callable[..., str]:
    """``user_key(server, user, scopes, globs=(), packages=(), expires_in_days=None) -> secret``."""
    return _user_key


@pytest.fixture(scope="session")
def create_key() -> Callable[..., dict[str, object]]:
    """Like ``user_key`` but returns the whole ``nugat key create --json`` answer (``id``, ``key``, ...)."""
    return _create_key


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    logs = [p for p in map(Path, LOG_FILES) if p.exists()]
    if logs:
        terminalreporter.write_line(f"nugat server logs kept: {', '.join(str(p) for p in logs)}")
