"""Fixed-window counters kept in the database, so every process and host sees the same counts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nugat.clock import utcnow
from nugat.db import Database
from nugat.db.models import Throttle


class Throttler:
    def __init__(self, db: Database) -> None:
        self.db = db

    def blocked_for(self, bucket: str, limit: int, window: timedelta) -> int:
        """Seconds until ``bucket`` may be used again, or 0 if it is under ``limit`` in this window."""
        with self.db.reading() as s:
            return self.blocked_in(s, bucket, limit, window)

    @staticmethod
    def blocked_in(s: Session, bucket: str, limit: int, window: timedelta) -> int:
        """``blocked_for`` within the caller's transaction (one transaction for several reads)."""
        row = s.get(Throttle, bucket)
        if row is None:
            return 0
        now = utcnow()
        if row.window_start + window <= now or row.count < limit:
            return 0
        return max(1, int((row.window_start + window - now).total_seconds()))

    def hit(self, bucket: str, window: timedelta) -> int:
        """Count one event in ``bucket``; return the count in the current window."""
        try:
            return self._hit(bucket, window)
        except IntegrityError:  # another process created the bucket's row first: now it can be locked
            return self._hit(bucket, window)

    def _hit(self, bucket: str, window: timedelta) -> int:
        now = utcnow()
        with self.db.session() as s:
            row = s.execute(select(Throttle).where(Throttle.bucket == bucket).with_for_update()).scalar()
            if row is None:
                s.add(Throttle(bucket=bucket, window_start=now, count=1))
                return 1
            if row.window_start + window <= now:
                row.window_start, row.count = now, 1
            else:
                row.count += 1
            return row.count
