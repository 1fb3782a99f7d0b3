"""``services.throttle``: fixed-window counters in the database, shared by every process."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nugat.services import TooManyRequests
from nugat.services.throttle import Throttler
from support.services import Clock, Site, at_once

WINDOW = timedelta(minutes=10)


@pytest.fixture
def throttle(site: Site) -> Throttler:
    return Throttler(site.core.db)


def test_hits_are_counted_per_bucket_within_the_window(throttle: Throttler, clock: Clock) -> None:
    assert [throttle.hit("a", WINDOW) for _ in range(3)] == [1, 2, 3]
    assert throttle.hit("b", WINDOW) == 1
    clock.advance(minutes=9, seconds=59)
    assert throttle.hit("a", WINDOW) == 4
    clock.advance(seconds=1)  # the window started at the first hit has passed: a new one starts
    assert throttle.hit("a", WINDOW) == 1


def test_a_bucket_is_blocked_at_its_limit_until_its_window_ends(throttle: Throttler, clock: Clock) -> None:
    assert throttle.blocked_for("a", 3, WINDOW) == 0  # never used
    throttle.hit("a", WINDOW)
    clock.advance(minutes=4)
    throttle.hit("a", WINDOW)
    assert throttle.blocked_for("a", 3, WINDOW) == 0
    throttle.hit("a", WINDOW)
    assert throttle.blocked_for("a", 3, WINDOW) == 6 * 60  # seconds left in the window
    assert throttle.blocked_for("a", 4, WINDOW) == 0  # a higher limit is not reached
    assert throttle.blocked_for("b", 3, WINDOW) == 0
    clock.advance(minutes=5, seconds=59)
    assert throttle.blocked_for("a", 3, WINDOW) == 1
    clock.advance(seconds=1)
    assert throttle.blocked_for("a", 3, WINDOW) == 0


def test_another_process_sees_the_same_counts(site: Site, throttle: Throttler) -> None:
    throttle.hit("shared", WINDOW)
    other = site.restart()
    assert Throttler(other.core.db).hit("shared", WINDOW) == 2
    assert Throttler(other.core.db).blocked_for("shared", 2, WINDOW) > 0


def test_hits_in_a_transaction_that_rolls_back_are_not_counted(site: Site, throttle: Throttler) -> None:
    with pytest.raises(RuntimeError), site.core.db.session() as s:
        Throttler.hit_in(s, "tx", WINDOW)
        raise RuntimeError("the caller's transaction fails")
    assert throttle.hit("tx", WINDOW) == 1


def test_an_attempt_is_counted_before_it_is_tried_and_uncounted_once_it_succeeds(
    throttle: Throttler, clock: Clock
) -> None:
    checks = [("a", 2, WINDOW), ("b", 5, WINDOW)]
    assert [throttle.attempt(checks) for _ in range(2)] == [0, 0]
    throttle.release(["a", "b"])  # the second one succeeded: only the first stays a failure
    assert throttle.attempt(checks) == 0
    clock.advance(minutes=4)
    assert throttle.attempt(checks) == 6 * 60  # "a" is past its limit for the rest of its window
    assert throttle.attempt([("b", 5, WINDOW)]) == 0  # "b" holds 4 of its 5
    throttle.release(["never-used"])
    clock.advance(minutes=6)
    assert throttle.attempt(checks) == 0


def test_attempts_made_at_the_same_time_pass_only_up_to_the_limit(throttle: Throttler) -> None:
    def attempt(_: int) -> None:
        if throttle.attempt([("burst", 5, WINDOW)]):
            raise TooManyRequests("over", 1)

    assert at_once(24, attempt) == [200] * 5 + [429] * 19
