"""How the pages show dates, expiry and scopes (pure: used as template filters)."""

from __future__ import annotations

import math
from datetime import datetime

from markupsafe import Markup, escape

from nugat.clock import utcnow
from nugat.keys import Scope
from nugat.versions import InvalidVersion, parse_range


def date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "never"


def datetime_utc(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def iso_utc(value: datetime) -> str:
    """A (naive UTC) time as a ``<time datetime>`` value every browser parses: ``2026-11-30T21:37:45Z``."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def expiry(expires: datetime, now: datetime | None = None) -> str:
    """``Expired``, or ``Expires in N days`` counting a part of a day as a day."""
    left = (expires - (now or utcnow())).total_seconds()
    if left <= 0:
        return "Expired"
    days = math.ceil(left / 86400)
    return f"Expires in {days} day{'' if days == 1 else 's'}"


def scope_label(scope: str) -> str:
    """A scope as the pages name it (``Scope.label``)."""
    known = Scope.named(scope)
    return known.label if known else scope


def count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def version_range(text: str | None) -> str:
    """A dependency's range as nuget.org shows it: ``>= 1.0.0``, ``>= 1.0.0 && < 2.0.0``, ``= 1.2.0``."""
    if not text:
        return "any version"
    try:
        r = parse_range(text)
    except InvalidVersion:
        return text
    low, high = r.min_version, r.max_version
    if low is not None and high is not None and low == high:
        return f"= {low.normalized}"
    parts = []
    if low is not None:
        parts.append(f"{'>=' if r.include_min else '>'} {low.normalized}")
    if high is not None:
        parts.append(f"{'<=' if r.include_max else '<'} {high.normalized}")
    return " && ".join(parts)


def detail(values: dict[str, object]) -> str:
    """An audit event's details as ``name: value`` pairs, lists comma-separated, empty ones left out."""
    shown = {k: ", ".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in values.items()}
    return "; ".join(f"{k}: {v}" for k, v in shown.items() if v and v != "None")


def breakable(package_id: str) -> Markup:
    """A package id that may wrap after each dot (``Contoso.<wbr>Json``), escaped."""
    return Markup(".<wbr>").join(escape(part) for part in package_id.split("."))
