"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, one real ``nugat serve`` (SQLite).

Never a downloaded browser: ``scripts/test`` installs Debian's ``chromium`` when ``/usr/bin/chromium`` is
missing. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from support.nugetexe import REPO_ROOT, NuGetClient
from support.server import NugatServer, running_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--mute-audio",
]
LAPTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/test` (it installs Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NugatServer]:
    """One server for every browser test: each test uses its own users and package ids."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running_server(tmp_path_factory.mktemp("browser-server"), "sqlite"))
        except Exception as exc:  # a broken server fails (never skips) the tests
            pytest.fail(f"could not start nugat serve: {exc}", pytrace=False)
        yield server


@pytest.fixture
def page(chromium: Browser, web_server: NugatServer) -> Iterator[Page]:
    """A fresh browser profile at laptop size that may use the clipboard."""
    context = chromium.new_context(base_url=web_server.url, viewport=LAPTOP)  # type: ignore[arg-type]
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web_server.url)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def nuget(nuget_exe: Path, tmp_path: Path) -> NuGetClient:
    return NuGetClient(nuget_exe, tmp_path / "nuget-home")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
