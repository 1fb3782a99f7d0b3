"""Fault injection for the crash tests: ``NUGAT_FAULT=<point>:<seconds>`` pauses a push at ``point``.

The tests kill -9 the server while it waits there, then check that the restarted server holds the
package entirely or not at all. Points: ``in-transaction`` (version row inserted, nothing stored),
``after-blob-write`` (blobs stored, not committed), ``after-commit`` (committed, documents not built).
Without the variable, as in production, ``pause`` does nothing.
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger("nugat.faults")


def pause(point: str) -> None:
    name, _, seconds = os.environ.get("NUGAT_FAULT", "").partition(":")
    if name == point:
        log.warning("fault injection: pausing %s seconds at %s", seconds, point)
        time.sleep(float(seconds))
