"""Download counts, gathered in memory and written in one batch, never a row update per download.

Search ranks by each id's total, copied into its entries at most once a minute (a copy moves the search
generation, so every process reads search afresh: not at every flush). Each process copies the totals of
the ids it has counted, so no pass over every entry is ever made, whatever the size of the feed. What a
process that died had not copied yet is copied with the id's next download, push or rebuild (each
rewrite of an id's entries takes its total)."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from nugat.clock import utcnow
from nugat.db import Database
from nugat.db.models import PackageRegistration, PackageVersion
from nugat.services.search_index import sync_downloads

log = logging.getLogger("nugat.downloads")

SEARCH_REFRESH = timedelta(seconds=60)


class DownloadCounter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.pending: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        self.flushing = threading.Lock()
        self.unsynced: set[int] = set()  # ids (registration ids) counted whose totals search has not taken
        self.synced_at = datetime.min

    def count(self, id_lower: str, version_lower: str) -> None:
        with self.lock:
            self.pending[(id_lower, version_lower)] += 1

    def flush(self, *, stopping: bool = False) -> int:
        """Write the counts gathered (kept for the next flush if the database cannot take them), and copy
        the totals into search if a minute has passed since the last copy, or at a stop (no other process
        copies what this one counted). The number written."""
        with self.flushing:  # the last flush of a stop may start while the periodic one runs
            with self.lock:
                batch, self.pending = self.pending, Counter()
            written = self._write(batch) if batch else 0
            if self.unsynced and (stopping or utcnow() - self.synced_at >= SEARCH_REFRESH):
                self._sync_search()
            return written

    def _write(self, batch: Counter[tuple[str, str]]) -> int:
        counted: dict[str, int] = {}  # id_lower: registration id
        try:
            with self.db.session() as s:
                per_id: Counter[str] = Counter()
                for (id_lower, version_lower), n in sorted(batch.items()):
                    reg_id = s.scalar(
                        select(PackageRegistration.id).where(PackageRegistration.id_lower == id_lower)
                    )
                    if reg_id is None:
                        continue
                    s.execute(
                        update(PackageVersion)
                        .where(
                            PackageVersion.registration_id == reg_id,
                            PackageVersion.version_lower == version_lower,
                        )
                        .values(downloads=PackageVersion.downloads + n)
                    )
                    per_id[id_lower] += n
                    counted[id_lower] = reg_id
                for id_lower, n in per_id.items():
                    s.execute(
                        update(PackageRegistration)
                        .where(PackageRegistration.id_lower == id_lower)
                        .values(total_downloads=PackageRegistration.total_downloads + n)
                    )
        except SQLAlchemyError as exc:
            log.warning("could not record downloads yet (%s); keeping them for the next flush", exc)
            with self.lock:
                self.pending.update(batch)
            return 0
        self.unsynced.update(counted.values())
        return sum(batch.values())

    def _sync_search(self) -> None:
        ids = sorted(self.unsynced)
        try:
            with self.db.transaction() as c:
                sync_downloads(c, ids)
        except SQLAlchemyError as exc:  # the ranking waits for the next flush; the counts are written
            log.warning("could not copy download totals into search yet: %s", exc)
            return
        self.unsynced.difference_update(ids)
        self.synced_at = utcnow()
