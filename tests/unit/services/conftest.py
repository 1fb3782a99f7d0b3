"""Fixtures of the service tests: a ``Site`` (a ``Core`` on SQLite with the in-memory storage) per test,
on a copy of one migrated database, with the clock stopped (``clock.advance`` moves it) and argon2 at its
smallest cost (the production cost, 64 MiB and three passes, takes a second a password on a busy machine)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

import nugat.clock
from nugat.core import Core, import_all
from support.memory import MemoryStorage
from support.services import MAILING, Clock, Site, copy_database, migrated_template


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Every nugat module that reads the time reads this clock."""
    stopped = Clock()
    real = nugat.clock.utcnow
    import_all()  # ``Core`` imports a service's module when the service is first used
    for name, module in list(sys.modules.items()):
        if (name == "nugat" or name.startswith("nugat.")) and getattr(module, "utcnow", None) is real:
            monkeypatch.setattr(module, "utcnow", stopped)
    return stopped


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "nugat.services.accounts._hasher", PasswordHasher(time_cost=1, memory_cost=256, parallelism=1)
    )


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def make_site(tmp_path: Path, template_db: Path, storage: MemoryStorage) -> Iterator[Callable[..., Site]]:
    """``make_site(**settings)``: a Site with these settings (``push_limit_per_hour=3``, ``public_url=``)."""
    made: list[Site] = []

    def make(**settings: Any) -> Site:
        data_dir = tmp_path / f"site{len(made)}"
        copy_database(template_db, data_dir)
        made.append(Site(data_dir, storage, **settings))
        return made[-1]

    yield make
    for site in made:
        site.close()


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site()


@pytest.fixture
def core(site: Site) -> Core:
    return site.core


@pytest.fixture
def mailing(make_site: Callable[..., Site]) -> Site:
    """A Site that queues mail (``support.services.MAILING``); ``Site.mails`` reads the outbox."""
    return make_site(**MAILING)
