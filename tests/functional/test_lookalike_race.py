"""Two look-alike new ids pushed at the same moment by different owners: one wins, the other is refused
(issue 16). The first push is held inside its transaction, after its look-alike check, while the second
one runs; the second must wait for it and then see its id, on PostgreSQL and on SQLite."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from functional.test_feed_http import nupkg
from nugat import faults
from nugat.core import Core
from nugat.db.models import PackageRegistration
from nugat.services import ServiceError
from nugat.settings import Settings
from support.server import postgres_database


@contextlib.contextmanager
def two_processes(tmp_path: Path, database: str) -> Iterator[tuple[Core, Core]]:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if database == "postgres" else None
        url = url or f"sqlite:///{tmp_path / 'nugat.db'}"
        first = Core(Settings(data_dir=tmp_path / "one", database_url=url))
        stack.callback(first.close)
        first.db.upgrade()
        second = Core(Settings(data_dir=tmp_path / "one", database_url=url))
        stack.callback(second.close)
        yield first, second


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_two_lookalike_pushes_at_once_one_wins(
    tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with two_processes(tmp_path, database) as (first, second):
        grants = {}
        for name in ("alice", "mallory"):
            first.accounts.create_user(name, f"{name}@example.test", None)
            _, key = first.accounts.create_key(name, "k", ["push"], ["*"], [], 30)
            grants[name], _ = first.accounts.verify_key(key, "127.0.0.1")
        held, release = threading.Event(), threading.Event()
        real_pause = faults.pause

        def pause(point: str) -> None:  # only alice's push stops, after its checks, inside its transaction
            if point == "in-transaction" and threading.current_thread().name == "alice":
                held.set()
                assert release.wait(30)
            real_pause(point)

        monkeypatch.setattr(faults, "pause", pause)
        outcome: dict[str, object] = {}

        def push(core: Core, who: str, package_id: str) -> None:
            upload = tmp_path / f"{who}.nupkg"
            upload.write_bytes(nupkg(package_id, "1.0.0"))
            try:
                outcome[who] = core.packages.push(upload, grants[who]).package_id
            except ServiceError as exc:
                outcome[who] = exc

        alice = threading.Thread(target=push, args=(first, "alice", "Race.Json"), name="alice")
        mallory = threading.Thread(target=push, args=(second, "mallory", "Race-J5on"), name="mallory")
        alice.start()
        assert held.wait(30)
        mallory.start()
        mallory.join(1.0)  # without the lock it would pass its check now, alice's id not yet committed
        release.set()
        alice.join(60)
        mallory.join(60)
        assert not alice.is_alive() and not mallory.is_alive()
        assert outcome["alice"] == "Race.Json"
        refused = outcome["mallory"]
        assert isinstance(refused, ServiceError) and refused.status == 409, refused
        assert "too similar to the existing package Race.Json" in refused.message
        with first.db.reading() as s:
            assert list(s.scalars(select(PackageRegistration.package_id))) == ["Race.Json"]
