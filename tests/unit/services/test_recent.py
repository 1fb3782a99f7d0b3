"""``Recent``: an answer computed once for every caller asking at the same time, kept while the database's
generation stays the same and for a bounded time."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from nugat.services.recent import Recent


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


def test_kept_while_the_generation_stays_and_for_seconds_at_most() -> None:
    now, generation = [0.0], [1]
    recent: Recent[int] = Recent(1.0, lambda: generation[0], clock=lambda: now[0])
    compute = Counter()
    assert recent.get("q", compute) == 1
    now[0] = 0.9
    assert recent.get("q", compute) == 1  # the same answer, not computed again
    assert recent.get("other", compute) == 2  # each key its own answer
    generation[0] = 2  # a commit somewhere
    assert recent.get("q", compute) == 3
    now[0] = 2.0  # older than a second
    assert recent.get("q", compute) == 4


def test_callers_asking_at_once_share_one_computation() -> None:
    recent: Recent[int] = Recent(60, lambda: 0)
    started, release = threading.Event(), threading.Event()
    calls = Counter()

    def slow() -> int:
        started.set()
        release.wait(10)
        return calls()

    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(recent.get, "q", slow)
        assert started.wait(10)
        others = [pool.submit(recent.get, "q", slow) for _ in range(7)]
        release.set()
        assert [f.result(10) for f in [first, *others]] == [1] * 8
    assert calls.calls == 1


def test_a_failed_computation_is_not_kept_and_the_next_caller_computes_again() -> None:
    recent: Recent[int] = Recent(60, lambda: 0)

    def broken() -> int:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        recent.get("q", broken)
    assert recent.get("q", lambda: 7) == 7


def test_waiters_on_a_failed_computation_compute_on_their_own() -> None:
    recent: Recent[int] = Recent(60, lambda: 0)
    started, release = threading.Event(), threading.Event()

    def failing() -> int:
        started.set()
        release.wait(10)
        raise RuntimeError("database down")

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(recent.get, "q", failing)
        assert started.wait(10)
        waiter = pool.submit(recent.get, "q", lambda: 5)
        release.set()
        with pytest.raises(RuntimeError):
            first.result(10)
        assert waiter.result(10) == 5


def test_an_answer_computed_across_a_commit_is_not_kept_for_the_new_generation() -> None:
    generation = [1]
    recent: Recent[str] = Recent(60, lambda: generation[0])

    def read_then_commit() -> str:
        answer = "before"  # read from the database...
        generation[0] = 2  # ...while another transaction commits
        return answer

    assert recent.get("q", read_then_commit) == "before"
    assert recent.get("q", lambda: "after") == "after"


def test_what_is_kept_weighs_no_more_than_the_budget() -> None:
    recent: Recent[bytes] = Recent(60, lambda: 0, weigh=len, budget=100)
    for n in range(50):
        body = bytes(n % 40)
        assert recent.get(n, lambda body=body: body) == body  # type: ignore[misc]
        assert recent.weight == sum(len(kept[2]) for kept in recent.kept.values()) <= 100
    assert recent.get("huge", lambda: bytes(101)) == bytes(101)  # answered, never kept
    assert "huge" not in recent.kept
    generation = [0]
    again: Recent[bytes] = Recent(60, lambda: generation[0], weigh=len, budget=100)
    for n in range(20):
        generation[0] = n  # the same key computed again and again: its old weight goes with it
        again.get("q", lambda: bytes(30))
    assert again.weight == 30


def test_a_caller_of_a_newer_generation_does_not_join_a_computation_begun_before_it() -> None:
    generation = [1]
    recent: Recent[str] = Recent(60, lambda: generation[0])
    started, release = threading.Event(), threading.Event()

    def read_before_the_commit() -> str:
        started.set()
        release.wait(10)
        return "before"

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(recent.get, "q", read_before_the_commit)
        assert started.wait(10)
        generation[0] = 2  # a commit while the first one reads
        assert pool.submit(recent.get, "q", lambda: "after").result(10) == "after"  # not waiting for it
        release.set()
        assert first.result(10) == "before"


def test_a_generation_given_is_used_instead_of_asking() -> None:
    asked = Counter()
    recent: Recent[str] = Recent(60, asked)
    assert recent.get("q", lambda: "first", 5) == "first"
    assert recent.get("q", lambda: "again", 5) == "first"
    assert recent.get("q", lambda: "moved", 6) == "moved"
    assert asked.calls == 0
