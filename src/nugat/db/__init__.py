"""Database access: engine, sessions and migrations."""

from __future__ import annotations

import contextlib
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Integer, any_, bindparam, create_engine, event, make_url
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import Boolean

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "search_postings"
"""The newest migration's revision (a unit test checks it against Alembic's head)."""


Tx = Session | Connection
"""A unit of work: an ORM session, or a plain connection in a transaction (the hot paths use these: the
ORM's bookkeeping costs more than their statements)."""


class InIds(ColumnElement[bool]):
    """``column IN (:name)`` for a list of integer ids given at execution. On PostgreSQL it is sent as
    ``column = ANY(:name)`` with the list as one array: the statement's text is then the same whatever
    the list's length (an IN list of 200 ids is rendered, and parsed by the driver, at each execution:
    a tenth of ``nugat rebuild``'s CPU)."""

    inherit_cache = True
    _is_implicitly_boolean = True  # a condition as it is (not ``= 1`` on SQLite)
    type = Boolean()
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("name", InternalTraversal.dp_string),
    ]

    def __init__(self, column: ColumnElement[int], name: str) -> None:
        self.column, self.name = column, name


@compiles(InIds)
def _in_list(element: InIds, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column.in_(bindparam(element.name, expanding=True)), **kw))


@compiles(InIds, "postgresql")
def _any_of_array(element: InIds, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column == any_(bindparam(element.name, type_=ARRAY(Integer))), **kw))


def conn(tx: Tx) -> Connection:
    return tx.connection() if isinstance(tx, Session) else tx


SEARCH_CHANGED = "nugat.search_changed"
SEARCH_SLOTS = 16  # the rows of ``search_changes``
_BUMPS = [f"UPDATE search_changes SET n = n + 1 WHERE slot = {slot}" for slot in range(SEARCH_SLOTS)]  # noqa: S608


def search_changed(c: Connection) -> None:
    """Note that this transaction changes what search finds: it bumps ``search_changes`` as it commits
    (``Database.generation`` moves, and every process reads search afresh)."""
    c.info[SEARCH_CHANGED] = True


def _count_search_change(conn: Connection) -> None:
    # Last in the transaction: the row stays locked only while the transaction commits (no lock order to
    # keep with the rest, and concurrent changes pick different rows mostly).
    if conn.info.pop(SEARCH_CHANGED, False):
        conn.exec_driver_sql(_BUMPS[random.randrange(SEARCH_SLOTS)])


def _forget_search_change(conn: Connection) -> None:
    if not conn.invalidated:  # a lost connection's notes went with it
        conn.info.pop(SEARCH_CHANGED, None)


def _count_search_changes(engine: Engine) -> Engine:
    event.listen(engine, "commit", _count_search_change)
    event.listen(engine, "rollback", _forget_search_change)
    return engine


# Each SQLite connection keeps its own page cache (2 MiB by default), and a worker's two pools hold up to
# 15 connections each: the readers' caches alone grew a worker by ~40 MB under 16 concurrent searches. The
# pages are in the operating system's cache anyway; a reader keeps a quarter of the default.
READER_CACHE_KIB = 512


def make_engine(url: str, *, writer: bool = True) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = _count_search_changes(
            create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers go on while a push writes; foreign keys are off by default in SQLite.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            if not writer:
                cur.execute(f"PRAGMA cache_size=-{READER_CACHE_KIB}")
            cur.close()
            # Let SQLAlchemy emit BEGIN itself so that BEGIN IMMEDIATE serializes writers.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

        return engine
    # orjson reads the JSON columns (package metadata) several times faster: ``nugat rebuild`` reads them all.
    engine = create_engine(
        url,
        pool_size=5,
        max_overflow=10,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        json_deserializer=orjson.loads,
        connect_args=_connect_defaults(url),
    )
    from nugat.db.silence import connect_watched  # psycopg: imported only for a PostgreSQL database

    event.listen(engine, "do_connect", connect_watched)
    return _ping_when_idle(_count_search_changes(engine))


def _connect_defaults(url: str) -> dict[str, str]:
    named = make_url(url).query
    return {k: v for k, v in PG_CONNECT_DEFAULTS.items() if k not in named}


PG_CONNECT_DEFAULTS = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "20000",
}
"""libpq parameters of every PostgreSQL connection unless the database URL's query names them
(``postgresql://host/db?keepalives_idle=30``). A database that stops answering (a network partition, a
host gone) is then noticed instead of waited for forever: a connection is given up after 5 s; an idle
or waiting one whose peer stops acknowledging keepalives after 10 + 3 x 5 = 25 s; one whose sent bytes
stay unacknowledged after 20 s (``tcp_user_timeout``, in milliseconds). The request then fails with the
usual 503 "database unavailable". No ``statement_timeout``: long work (migrations, ``nugat rebuild``)
is legitimate."""

POOL_TIMEOUT_SECONDS = 10
"""How long a request waits for a pooled connection when all 15 are in use."""


IDLE_PING_SECONDS = 1.0
"""A pooled PostgreSQL connection idle this long is pinged before it is used again: it may have been cut
meanwhile (a restart of the database, a proxy's idle timeout), and is then replaced at once. One used
since is not: a push takes three connections in turn, and each ping is a round trip."""


def _ping_when_idle(engine: Engine) -> Engine:
    @event.listens_for(engine.pool, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["used"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        used = record.info.get("used")  # None: a connection made just now
        if used is not None and time.monotonic() - used >= IDLE_PING_SECONDS:
            try:
                engine.dialect.do_ping(dbapi_conn)
            except engine.dialect.loaded_dbapi.Error as exc:
                raise DisconnectionError(str(exc)) from exc  # the pool connects anew

    return engine


def _driver_pragma(connection: Connection, pragma: str) -> None:
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(pragma)
    finally:
        cursor.close()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time, and a writer that finds it busy polls with growing sleeps (up to
        # 100 ms): threads of one process queue on a lock instead, and are served at once in turn.
        self.write_lock = threading.RLock() if url.startswith("sqlite") else contextlib.nullcontext()
        # SQLite serializes writers with BEGIN IMMEDIATE; read-only work (search, pages) need not queue there.
        self.reader = make_engine(url, writer=False) if url.startswith("sqlite") else self.engine
        self.read_sessions = sessionmaker(self.reader, expire_on_commit=False)
        self.watch_lock = threading.Lock()
        self.watch: sqlite3.Connection | Connection | None = None  # the connection ``generation`` asks

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any exception."""
        with self.write_lock, self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """``session`` as a plain connection: committed on success, rolled back on any exception."""
        with self.write_lock, self.engine.begin() as connection:
            yield connection

    @contextmanager
    def read_transaction(self) -> Iterator[Connection]:
        """``reading`` as a plain connection."""
        with self.reader.begin() as connection:
            yield connection

    @contextmanager
    def statements(self) -> Iterator[Connection]:
        """Statements that need no common snapshot, each its own transaction: on PostgreSQL outside a
        transaction (no BEGIN and COMMIT: two trips to the server fewer; a write commits alone); on SQLite,
        ``read_transaction`` (reads only)."""
        if self.url.startswith("sqlite"):
            with self.read_transaction() as connection:
                yield connection
            return
        with self.reader.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A unit of work for reads (on SQLite it does not queue behind writers)."""
        with self.read_sessions() as session, session.begin():
            yield session

    def is_current(self) -> bool:
        try:
            with self.reader.connect() as conn:
                return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD
        except SQLAlchemyError:
            return False

    def upgrade(self) -> None:
        """Apply Alembic migrations up to head (a no-op costing one query when already there)."""
        if self.is_current():
            return
        from alembic import command  # imported only when there is work: it costs a third of a second
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        sqlite = self.url.startswith("sqlite")
        with self.engine.connect() as conn:
            if sqlite:
                # Alembic alters a SQLite table by copying it to a new one and dropping the old: with
                # foreign keys on, that drop would delete every row that references the table (an
                # account's keys, memberships, owned packages). The pragma only takes effect outside a
                # transaction, so it is set on the driver's connection before BEGIN.
                _driver_pragma(conn, "PRAGMA foreign_keys=OFF")
            try:
                with conn.begin():
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                    if sqlite:
                        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
                        if broken is not None:
                            raise RuntimeError(f"migration left a dangling foreign key: {tuple(broken)}")
            finally:
                if sqlite:
                    _driver_pragma(conn, "PRAGMA foreign_keys=ON")
        logging.getLogger("nugat.db").info("database schema upgraded to %s", HEAD)

    def generation(self) -> Hashable:
        """A value that differs whenever any process has committed a change to what search finds since it
        was taken (``search_changed``): a search page read before it may still be used while it stays the
        same (``services.recent``). Asked on a connection kept for it, in autocommit: one round trip."""
        with self.watch_lock:
            if self.watch is None:
                self.watch = self._watcher()
            try:
                return self._watched(self.watch)
            except (sqlite3.Error, SQLAlchemyError):  # a connection lost (a database restart): once more
                self._close_watch()
                self.watch = self._watcher()
                return self._watched(self.watch)

    def _watcher(self) -> sqlite3.Connection | Connection:
        if self.reader.dialect.name == "sqlite":
            return sqlite3.connect(
                self.reader.url.database or "", check_same_thread=False, isolation_level=None
            )
        return self.reader.execution_options(isolation_level="AUTOCOMMIT").connect()

    @staticmethod
    def _watched(watch: sqlite3.Connection | Connection) -> Hashable:
        query = "SELECT sum(n) FROM search_changes"
        if isinstance(watch, sqlite3.Connection):
            return int(watch.execute(query).fetchone()[0])
        return int(watch.exec_driver_sql(query).scalar_one())

    def _close_watch(self) -> None:
        if self.watch is not None:
            with contextlib.suppress(sqlite3.Error, SQLAlchemyError):
                self.watch.close()
            self.watch = None

    def ping(self) -> None:
        with self.reader.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        self.engine.dispose()
        self.reader.dispose()
        with self.watch_lock:
            self._close_watch()
