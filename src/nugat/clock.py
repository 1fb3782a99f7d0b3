"""Time in one place: naive UTC datetimes, as stored in the database.

``shifted`` moves this process's clock for tests of expiry (keys, policies): every ``utcnow`` inside it
is that much later. Nothing in the server calls it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def utcnow() -> datetime:
    return (datetime.now(UTC) + _offset).replace(tzinfo=None, microsecond=0)


def isoformat(value: datetime) -> str:
    """ISO 8601 with a ``Z``, as the NuGet protocol documents show times."""
    return value.replace(microsecond=0).isoformat() + "Z"


@contextlib.contextmanager
def shifted(delta: timedelta) -> Iterator[None]:
    """Run the block ``delta`` later than the real time (tests only)."""
    global _offset
    before = _offset
    _offset = before + delta
    try:
        yield
    finally:
        _offset = before
