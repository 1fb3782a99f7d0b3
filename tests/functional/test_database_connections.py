"""Pooled PostgreSQL connections: one idle for a while is checked before use (it may have been cut), one
used just now is not (a push takes three in turn, and each check is a round trip)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from nugat import db as nugat_db
from nugat.db import Database
from support.server import POSTGRES_ADMIN_DSN, postgres_database


@pytest.fixture
def database() -> Iterator[Database]:
    with postgres_database() as url:
        database = Database(url)
        try:
            yield database
        finally:
            database.engine.dispose()


def counting_pings(database: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    real = database.engine.dialect.do_ping

    def ping(dbapi_connection: Any) -> bool:
        pings.append(1)
        return bool(real(dbapi_connection))

    monkeypatch.setattr(database.engine.dialect, "do_ping", ping)
    return pings


def one(database: Database) -> int:
    with database.transaction() as c:
        return int(c.execute(text("SELECT 1")).scalar_one())


def test_a_connection_used_just_now_is_not_pinged_one_idle_is(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings = counting_pings(database, monkeypatch)
    for _ in range(3):
        one(database)
    assert pings == []
    monkeypatch.setattr(nugat_db, "IDLE_PING_SECONDS", 0.0)
    for _ in range(3):
        one(database)
    assert len(pings) == 3


def test_an_idle_connection_the_database_cut_is_replaced_before_use(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    one(database)
    name = database.engine.url.database
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
        cut = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", [name]
        ).fetchone()
    assert cut is not None and cut[0] >= 1
    monkeypatch.setattr(nugat_db, "IDLE_PING_SECONDS", 0.0)  # it has been idle long enough
    assert one(database) == 1
