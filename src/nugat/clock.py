"""Time in one place: naive UTC datetimes, as stored in the database."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def isoformat(value: datetime) -> str:
    """ISO 8601 with a ``Z``, as the NuGet protocol documents show times."""
    return value.isoformat(timespec="seconds") + "Z"
