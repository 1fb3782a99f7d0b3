"""Brings stale documents up to date while the server serves, instead of before it does.

After a crash of the machine (or a start under another base URL) every id's documents are marked
stale in the database (``Materializer.forget_all``): rebuilding 100,000 ids before serving took
minutes. Instead, while any id is stale, the workers build stale ids in the background, batch by
batch (on PostgreSQL every process and host shares the work: a batch skips the ids another one holds;
on SQLite one process does it), and the read path asks ``ensure`` before it serves an id's document,
which builds that id first if it is stale. A restore therefore never gets a lost or outdated document;
it may wait for one id's build. Meanwhile the storage holds a marker (``mark_documents_stale``) that
tells nginx to leave documents to nugat.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time

from nugat.services.materialize import Materializer

log = logging.getLogger("nugat")

# Smaller than a rebuild's batches: a read of an id in a batch under way waits for the batch's commit
# (on SQLite, any read that has to build waits for the batch under way: the single writer).
BATCH = 50
SQLITE_BATCH = 10


class Catchup:
    def __init__(self, materializer: Materializer) -> None:
        self.materializer = materializer
        # Until ``check`` has asked the database, assume documents may be stale: never serve one unchecked.
        self.active = True
        self.after = 0  # the background's cursor (``Materializer.build_stale_batch``)
        # SQLite has one writer at a time, and its waiting writers poll: backgrounds that took the lock
        # back at once could keep a read's rebuild (in another process) waiting for seconds. There one
        # process builds in the background (the holder of a lock on a file beside the database), in
        # small batches, resting as long as each took (``pause``): the lock is free half the time.
        self.shares_writer = materializer.db.url.startswith("sqlite")
        self.pause = 0.0
        self.batch = SQLITE_BATCH if self.shares_writer else BATCH
        self._builder_lock: int | None = None

    def check(self) -> bool:
        """Ask the database whether any id is stale (at a worker's start); whether there is work."""
        self.active = self.materializer.any_stale()
        if not self.active:  # a process that ended the catch-up may have died before saying so
            self.materializer.storage.mark_documents_stale(False)
        return self.active

    def ensure(self, id_lower: str) -> None:
        """Before one of the id's documents is served: build them if they lag behind the database."""
        if self.active and self.materializer.is_stale(id_lower):
            self.materializer.build_if_stale(id_lower)

    def step(self) -> int | None:
        """Build one batch of stale ids: how many were built (0: other processes hold the rest), or None
        once none is left (then the documents are synced, and reads are no longer checked). The caller
        waits ``pause`` seconds before the next."""
        if self._builds_here():
            began = time.monotonic()
            built, cursor = self.materializer.build_stale_batch(self.after, self.batch)
            if cursor == self.after and self.after:  # at the end: once more from the start (ids others held)
                self.after = 0
                built, cursor = self.materializer.build_stale_batch(0, self.batch)
            self.pause = time.monotonic() - began if self.shares_writer else 0.0
            if cursor != self.after:
                self.after = cursor
                return built
        if self.materializer.any_stale():
            return 0
        self.active = False
        if self._builder_lock is not None:
            os.close(self._builder_lock)  # which releases the lock
            self._builder_lock = None
        self.materializer.storage.settle()
        self.materializer.storage.mark_documents_stale(False)
        log.info("every stale document is rebuilt")
        return None

    def _builds_here(self) -> bool:
        """Whether this process builds in the background: always on PostgreSQL (batches lock their own
        rows); on SQLite, if it holds (or now takes) the lock of the background builder."""
        if not self.shares_writer or self._builder_lock is not None:
            return True
        fd = os.open(
            f"{self.materializer.db.engine.url.database}.catchup",
            os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
            0o600,
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._builder_lock = fd
        return True
