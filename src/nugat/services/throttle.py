"""Fixed-window counters kept in the database, so every process and host sees the same counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import DateTime, bindparam, case, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from nugat.clock import utcnow
from nugat.db import Database, Tx, conn
from nugat.db.models import Throttle, table

THROTTLES = table(Throttle)
_WINDOW = select(THROTTLES.c.window_start, THROTTLES.c.count).where(THROTTLES.c.bucket == bindparam("b"))
_ENDED = THROTTLES.c.window_start <= bindparam("ended", type_=DateTime)
# Counted in the row's window, or a new window begun if that one has ended.
_NEW_WINDOW = {
    "window_start": case((_ENDED, bindparam("now", type_=DateTime)), else_=THROTTLES.c.window_start),
    "count": case((_ENDED, 1), else_=THROTTLES.c.count + 1),
}
_HIT = (
    update(THROTTLES)
    .where(THROTTLES.c.bucket == bindparam("b"))
    .values(**_NEW_WINDOW)
    .returning(THROTTLES.c.count)
)
_WINDOWS = select(THROTTLES.c.bucket, THROTTLES.c.window_start, THROTTLES.c.count).where(
    THROTTLES.c.bucket.in_(bindparam("bs", expanding=True))
)
_NEW = insert(THROTTLES)
_RELEASE = (
    update(THROTTLES)
    .where(THROTTLES.c.bucket.in_(bindparam("bs", expanding=True)), THROTTLES.c.count > 0)
    .values(count=THROTTLES.c.count - 1)
)
COUNT_POSTGRESQL = (
    postgresql.insert(THROTTLES)
    .values(bucket=bindparam("b"), window_start=bindparam("now", type_=DateTime), count=1)
    .on_conflict_do_update(index_elements=[THROTTLES.c.bucket], set_=_NEW_WINDOW)
    .returning(THROTTLES.c.count)
)
"""PostgreSQL: ``hit_in`` as one statement (counted in the row's window, a new window begun, or the row
made), which can be part of a larger one (``WITH``): the count in the window. Parameters: ``count_params``."""


def count_params(bucket: str, window: timedelta) -> dict[str, Any]:
    now = utcnow()
    return {"b": bucket, "now": now, "ended": now - window}


def _wait(row: Any, limit: int, window: timedelta) -> int:
    """Seconds a bucket whose row is (window start, count) is blocked for, or 0."""
    if row is None:
        return 0
    start, count = row  # unpacked: a row's ``count`` attribute is the tuple method
    now = utcnow()
    if start + window <= now or count < limit:
        return 0
    return max(1, int((start + window - now).total_seconds()))


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
        return _wait(conn(s).execute(_WINDOW, {"b": bucket}).first(), limit, window)

    @staticmethod
    def blocked_each(s: Tx, checks: Sequence[tuple[str, int, timedelta]]) -> list[int]:
        """``blocked_in`` for each (bucket, limit, window), in one statement."""
        found = conn(s).execute(_WINDOWS, {"bs": [bucket for bucket, _, _ in checks]})
        rows = {bucket: (start, count) for bucket, start, count in found}
        return [_wait(rows.get(bucket), limit, window) for bucket, limit, window in checks]

    def hit(self, bucket: str, window: timedelta) -> int:
        """Count one event in ``bucket``; return the count in the current window."""
        try:
            return self._hit(bucket, window)
        except IntegrityError:  # another process created the bucket's row first: now it can be locked
            return self._hit(bucket, window)

    def _hit(self, bucket: str, window: timedelta) -> int:
        with self.db.session() as s:
            return self.hit_in(s, bucket, window)

    def attempt(self, checks: Sequence[tuple[str, int, timedelta]]) -> int:
        """Count an attempt in each (bucket, limit, window) before it is tried, and return 0 if every count
        is within its limit, else the seconds to wait. Counted first, so that attempts made at the same
        time cannot all pass a check none of them has been counted in yet (a burst of guesses); one that
        succeeds is uncounted (``release``): only failures stay."""
        wait = 0
        for bucket, limit, window in checks:
            if self.hit(bucket, window) > limit:
                wait = max(wait, self.blocked_for(bucket, limit, window), 1)
        return wait

    def release(self, buckets: Sequence[str]) -> None:
        """Uncount an attempt ``attempt`` counted in ``buckets``, once it succeeded."""
        with self.db.session() as s:
            conn(s).execute(_RELEASE, {"bs": list(buckets)})

    @staticmethod
    def hit_in(s: Tx, bucket: str, window: timedelta) -> int:
        """``hit`` within the caller's transaction (an IntegrityError at commit: retry it)."""
        c = conn(s)
        params = count_params(bucket, window)
        count = c.execute(_HIT, params).scalar()
        if count is None:
            c.execute(_NEW, {"bucket": bucket, "window_start": params["now"], "count": 1})
            return 1
        return int(count)
