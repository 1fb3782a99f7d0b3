"""Fixed-window counters kept in the database, so every process and host sees the same counts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from nugat.clock import utcnow
from nugat.db import Database, Tx, conn
from nugat.db.models import Throttle, table

THROTTLES = table(Throttle)
_WINDOW = select(THROTTLES.c.window_start, THROTTLES.c.count).where(THROTTLES.c.bucket == bindparam("b"))
_WINDOW_LOCKED = _WINDOW.with_for_update()
_NEW = insert(THROTTLES)
_RESTART = (
    update(THROTTLES)
    .where(THROTTLES.c.bucket == bindparam("b"))
    .values(window_start=bindparam("now"), count=1)
)
_COUNT = update(THROTTLES).where(THROTTLES.c.bucket == bindparam("b")).values(count=THROTTLES.c.count + 1)


class Throttler:
    def __init__(self, db: Database) -> None:
        self.db = db

    def blocked_for(self, bucket: str, limit: int, window: timedelta) -> int:
        """Seconds until ``bucket`` may be used again, or 0 if it is under ``limit`` in this window."""
        with self.db.reading() as s:
            return self.blocked_in(s, bucket, limit, window)

    @staticmethod
    def blocked_in(s: Tx, bucket: str, limit: int, window: timedelta) -> int:
        """``blocked_for`` within the caller's transaction (one transaction for several reads)."""
        row = conn(s).execute(_WINDOW, {"b": bucket}).first()
        if row is None:
            return 0
        start, count = row  # unpacked: a row's ``count`` attribute is the tuple method
        now = utcnow()
        if start + window <= now or count < limit:
            return 0
        return max(1, int((start + window - now).total_seconds()))

    def hit(self, bucket: str, window: timedelta) -> int:
        """Count one event in ``bucket``; return the count in the current window."""
        try:
            return self._hit(bucket, window)
        except IntegrityError:  # another process created the bucket's row first: now it can be locked
            return self._hit(bucket, window)

    def _hit(self, bucket: str, window: timedelta) -> int:
        with self.db.session() as s:
            return self.hit_in(s, bucket, window)

    @staticmethod
    def hit_in(s: Tx, bucket: str, window: timedelta) -> int:
        """``hit`` within the caller's transaction (an IntegrityError at commit: retry it)."""
        now = utcnow()
        c = conn(s)
        row = c.execute(_WINDOW_LOCKED, {"b": bucket}).first()
        if row is None:
            c.execute(_NEW, {"bucket": bucket, "window_start": now, "count": 1})
            return 1
        start, count = row
        if start + window <= now:
            c.execute(_RESTART, {"b": bucket, "now": now})
            return 1
        c.execute(_COUNT, {"b": bucket})
        return int(count) + 1
