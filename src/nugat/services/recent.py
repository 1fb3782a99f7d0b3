"""Answers kept for a moment: many clients asking the same question at once cost one computation.

A search page is a few indexed queries (milliseconds of a core); the same page asked by many clients at
once (a CI fleet restoring, a busy search box) would repeat them all. ``Recent`` keeps each answer for
``seconds`` at most, and only while ``generation`` (the database's: ``Database.generation``) stays the
same, so a change committed by any process is seen at the next read; callers that ask while an answer
is being computed wait for that one computation instead of starting their own (if it began in the
generation they read: one begun before a change they must see is not theirs to share).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Pending:
    """An answer being computed: the callers asking for it meanwhile wait on ``done``."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: object = None
        self.failed = False


class Recent(Generic[T]):
    def __init__(
        self,
        seconds: float,
        generation: Callable[[], Hashable],
        weigh: Callable[[T], int] = lambda _: 1,
        budget: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.generation = generation
        # What the kept answers may weigh together (``weigh``: bytes, rows...); all are dropped when an answer
        # would go over it (a bound on memory, not an LRU: answers live a second at most anyway).
        self.weigh = weigh
        self.budget = budget
        self.weight = 0
        self.clock = clock
        self.lock = threading.Lock()
        # key: (when computed, generation, answer, weight)
        self.kept: dict[Hashable, tuple[float, Hashable, T, int]] = {}
        self.pending: dict[Hashable, _Pending] = {}

    def get(self, key: Hashable, compute: Callable[[], T], generation: Hashable | None = None) -> T:
        """The answer for ``key``: kept if fresh, else computed once for every caller asking meanwhile.

        ``generation``: the database's as the caller read it before anything ``compute`` reads (a round
        trip saved where one request goes through several of these); else it is read here."""
        asked = generation is None
        while True:
            generation, now = self.generation() if asked else generation, self.clock()
            with self.lock:
                known = self.kept.get(key)
                if known is not None and known[1] == generation and now - known[0] < self.seconds:
                    return known[2]
                # A computation begun in an older generation may have read before a change this caller
                # must see: it is only joined by callers of the same generation.
                pending = self.pending.get((key, generation))
                if pending is None:
                    pending = self.pending[(key, generation)] = _Pending()
                    break
            pending.done.wait()
            if not pending.failed:
                return pending.value  # type: ignore[return-value]
            # That computation failed: the next caller computes it again (and meets its own error, if any).
        try:
            value = compute()
        except BaseException:
            pending.failed = True
            raise
        else:
            pending.value = value
            weight = self.weigh(value)
            with self.lock:
                old = self.kept.pop(key, None)
                self.weight -= old[3] if old is not None else 0
                if self.weight + weight > self.budget:
                    self.kept.clear()
                    self.weight = 0
                if weight <= self.budget:
                    self.kept[key] = (now, generation, value, weight)
                    self.weight += weight
            return value
        finally:
            with self.lock:
                del self.pending[(key, generation)]
            pending.done.set()
