"""Brings stale documents up to date while the server serves, instead of before it does.

After a crash of the machine (or a start under another base URL) every id's documents are marked
stale in the database (``Materializer.forget_all``): rebuilding 100,000 ids before serving took
minutes. Instead each worker, while any id is stale, builds stale ids in the background, batch by
batch (several processes and hosts share the work: a batch skips the ids another one holds), and the
read path asks ``ensure`` before it serves an id's document, which builds that id first if it is
stale. A restore therefore never gets a lost or outdated document; it may wait for one id's build.
"""

from __future__ import annotations

import logging
import time

from nugat.services.materialize import Materializer

log = logging.getLogger("nugat")

# Smaller than a rebuild's batches: a read of an id in a batch under way waits for the batch's commit.
BATCH = 50


class Catchup:
    def __init__(self, materializer: Materializer) -> None:
        self.materializer = materializer
        # Until ``check`` has asked the database, assume documents may be stale: never serve one unchecked.
        self.active = True
        self.after = 0  # the background's cursor (``Materializer.build_stale_batch``)
        # SQLite has one writer at a time, and its waiting writers poll: a background that took the lock
        # back at once could keep a read's rebuild (in another process) waiting for seconds. There it
        # rests as long as each batch took (``pause``), so that at least half the time the lock is free.
        self.shares_writer = materializer.db.url.startswith("sqlite")
        self.pause = 0.0

    def check(self) -> bool:
        """Ask the database whether any id is stale (at a worker's start); whether there is work."""
        self.active = self.materializer.any_stale()
        return self.active

    def ensure(self, id_lower: str) -> None:
        """Before one of the id's documents is served: build them if they lag behind the database."""
        if self.active and self.materializer.is_stale(id_lower):
            self.materializer.build_if_stale(id_lower)

    def step(self) -> int | None:
        """Build one batch of stale ids: how many were built (0: other processes hold the rest), or None
        once none is left (then the documents are synced, and reads are no longer checked). The caller
        waits ``pause`` seconds before the next."""
        began = time.monotonic()
        built, cursor = self.materializer.build_stale_batch(self.after, BATCH)
        if cursor == self.after and self.after:  # at the end: once more from the start (ids others held)
            self.after = 0
            built, cursor = self.materializer.build_stale_batch(0, BATCH)
        self.pause = time.monotonic() - began if self.shares_writer else 0.0
        if cursor != self.after:
            self.after = cursor
            return built
        if self.materializer.any_stale():
            return 0
        self.active = False
        self.materializer.storage.settle()
        log.info("every stale document is rebuilt")
        return None
