"""The silence watch of PostgreSQL connections (``SilenceWatch``): its own module, so that psycopg is
imported only by a process that uses PostgreSQL (``nugat --help`` and SQLite feeds do not pay for it)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import weakref
from typing import Any

import psycopg

SILENCE_SECONDS = 10.0
"""A statement waiting this long for PostgreSQL's answer has the database probed (``SilenceWatch``)."""


class _Watched(psycopg.Connection[Any]):
    """A psycopg connection that notes since when it waits for the server (``SilenceWatch``)."""

    probe: dict[str, Any]
    waiting_since: float | None = None

    def wait(self, *args: Any, **kwargs: Any) -> Any:
        self.waiting_since = time.monotonic()
        try:
            return super().wait(*args, **kwargs)
        finally:
            self.waiting_since = None


def connect_watched(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> _Watched:
    connection = _Watched.connect(*cargs, **cparams)
    connection.probe = {k: v for k, v in cparams.items() if isinstance(v, str | int | float)}
    SILENCE.add(connection)
    return connection


class SilenceWatch:
    """Keepalives notice a peer whose host stops acknowledging, not one that acknowledges and never
    answers: a proxy (pgbouncer, HAProxy, a cloud SQL proxy) cut from the database, a frozen server.
    A statement that waits ``SILENCE_SECONDS`` has this thread open a new connection to the same
    database: if that times out (``connect_timeout``), the waiting connections to it are shut down, and
    their statements fail at once (the pool then replaces them). If the database answers, the statement
    is merely long (a migration, ``nugat rebuild``) and goes on."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connections: weakref.WeakSet[_Watched] = weakref.WeakSet()
        self.thread: threading.Thread | None = None

    def add(self, connection: _Watched) -> None:
        with self.lock:
            self.connections.add(connection)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="nugat-db-silence", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(SILENCE_SECONDS / 4)
            now = time.monotonic()
            with self.lock:
                waiting = [c for c in self.connections if now - (c.waiting_since or now) >= SILENCE_SECONDS]
            groups: dict[str, list[_Watched]] = {}
            for connection in waiting:
                groups.setdefault(repr(sorted(connection.probe.items())), []).append(connection)
            for stuck in groups.values():
                if not _answers(stuck[0].probe):
                    for connection in stuck:
                        _shut(connection)


def _answers(params: dict[str, Any]) -> bool:
    try:
        psycopg.connect(**params).close()
    except psycopg.errors.ConnectionTimeout:
        return False
    except psycopg.Error:
        pass  # refused or an error: the host or the server answered
    return True


def _shut(connection: _Watched) -> None:
    if connection.waiting_since is None:
        return
    with contextlib.suppress(OSError, psycopg.Error):
        with socket.socket(fileno=os.dup(connection.pgconn.socket)) as sock:
            sock.shutdown(socket.SHUT_RDWR)  # the waiting statement reads an end of file
        logging.getLogger("nugat.db").error(
            "PostgreSQL has not answered for %.0f s and does not accept connections: connection given up",
            time.monotonic() - (connection.waiting_since or time.monotonic()),
        )


SILENCE = SilenceWatch()
