"""Download counts, gathered in memory and written in one batch, never a row update per download."""

from __future__ import annotations

import logging
import threading
from collections import Counter

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from nugat.db import Database
from nugat.db.models import PackageRegistration, PackageVersion

log = logging.getLogger("nugat.downloads")


class DownloadCounter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.pending: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()

    def count(self, id_lower: str, version_lower: str) -> None:
        with self.lock:
            self.pending[(id_lower, version_lower)] += 1

    def flush(self) -> int:
        with self.lock:
            batch, self.pending = self.pending, Counter()
        if not batch:
            return 0
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
        return sum(batch.values())
