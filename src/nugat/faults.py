"""Fault injection for the crash tests: ``NUGAT_FAULT=<point>:<seconds>`` pauses a push at ``point``.

The tests kill -9 the server while it waits there, then check that the restarted server holds the
package entirely or not at all. Points: ``in-transaction`` (version row inserted, nothing stored),
``after-blob-write`` (blobs stored, not committed), ``after-commit`` (committed, documents not built);
and ``catch-up``, the start of a worker's background rebuild of stale documents (``services.catchup``).
Without the variable, as in production, ``pause`` does nothing.
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger("nugat.faults")


def seconds(point: str) -> float:
    """How long to pause at ``point`` (0 unless NUGAT_FAULT names it; then logged), for async code."""
    name, _, value = os.environ.get("NUGAT_FAULT", "").partition(":")
    if name != point:
        return 0.0
    log.warning("fault injection: pausing %s seconds at %s", value, point)
    return float(value)


def pause(point: str) -> None:
    wait = seconds(point)
    if wait:
        time.sleep(wait)
