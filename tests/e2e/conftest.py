"""Fixtures for the end-to-end tests with the real NuGet client."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from support.nugetexe import NuGetClient
from support.server import NugatServer


@pytest.fixture
def nuget(nuget_exe: Path, tmp_path: Path) -> NuGetClient:
    """nuget.exe with a private HOME/config; every command gets fresh caches."""
    return NuGetClient(nuget_exe, tmp_path / "nuget-home")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, object, object]:
    report = yield
    if isinstance(report, pytest.TestReport) and report.failed:
        server = getattr(item, "funcargs", {}).get("server")
        if isinstance(server, NugatServer):
            proc = server.process
            if proc is not None and proc.poll() is not None:
                # Every later test on this server fails with "Connection refused": say why once, loudly.
                report.sections.append(
                    ("nugat server DIED", f"pid {proc.pid} exited with {proc.returncode} during the module")
                )
            report.sections.append((f"nugat server log ({server.log_path}), tail", server.log_tail(80)))
    return report
