"""Fixtures of the page tests: a fresh application in process per test, with the user alice."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from nugat.app import create_app
from nugat.core import Core
from nugat.services import accounts
from nugat.settings import Settings
from web.helpers import PASSWORD, MakeSite, Site


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its smallest costs: these tests sign in many times and are not about hash strength."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def make_site(tmp_path: Path) -> Iterator[MakeSite]:
    """``make_site(**settings)``: a fresh application with the user alice (password ``PASSWORD``)."""
    with contextlib.ExitStack() as stack:
        made = 0

        def make(**overrides: object) -> Site:
            nonlocal made
            made += 1
            settings = Settings(data_dir=tmp_path / f"site{made}", **overrides)  # type: ignore[arg-type]
            core = Core(settings)
            stack.callback(core.close)
            core.db.upgrade()
            core.accounts.create_user("alice", "alice@example.test", PASSWORD)
            # Behind a proxy, the client comes from the loopback (a trusted proxy by default), whose
            # X-Forwarded-* headers are believed; else it is starlette's "testclient".
            peer = ("127.0.0.1", 50000) if settings.trust_forwarded else ("testclient", 50000)
            app = create_app(settings)
            client = stack.enter_context(TestClient(app, base_url="http://127.0.0.1", client=peer))
            return Site(client, core, settings)

        yield make


@pytest.fixture
def site(make_site: MakeSite) -> Site:
    return make_site()


@pytest.fixture
def alice(site: Site) -> Site:
    """The site, with alice signed in."""
    site.sign_in("alice")
    return site
