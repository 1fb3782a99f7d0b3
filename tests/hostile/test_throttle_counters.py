"""The throttle counters under a burst: many processes' first failures of one bucket at the same moment
must all be counted, none lost and none raising (the row's first insert races on PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from hostile.harness import DATABASES
from nugat.db import Database
from nugat.services.throttle import Throttler
from support.server import postgres_database

THREADS = 12


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'throttle.db'}"
        db = Database(url)
        db.upgrade()
        yield db
        db.dispose()
        return
    with postgres_database() as url:
        db = Database(url)
        db.upgrade()
        yield db
        db.dispose()


def burst(throttler: Throttler, bucket: str) -> tuple[list[int], list[BaseException]]:
    """THREADS hits of ``bucket`` released at once; the counts they got and what they raised."""
    barrier = threading.Barrier(THREADS)
    counts: list[int] = []
    errors: list[BaseException] = []

    def hit() -> None:
        barrier.wait(timeout=30)
        try:
            counts.append(throttler.hit(bucket, timedelta(minutes=1)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hit) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return counts, errors


def test_simultaneous_first_hits_are_all_counted(database: Database) -> None:
    throttler = Throttler(database)
    for round_ in range(5):  # a race is likely, not certain, in any one round
        bucket = f"key-fail:addr:burst-{round_}"
        counts, errors = burst(throttler, bucket)
        assert errors == []
        assert sorted(counts) == list(range(1, THREADS + 1))
        assert throttler.blocked_for(bucket, THREADS, timedelta(minutes=1)) > 0
