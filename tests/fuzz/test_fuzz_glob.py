"""Bounded differential fuzzing of the key glob matcher against a plain dynamic-programming matcher,
over any text (regex metacharacters, backslashes, unicode, many stars), with a time bound per match."""

from __future__ import annotations

import os
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from nugat.keys import glob_matches

EXAMPLES = int(os.environ.get("NUGAT_FUZZ_EXAMPLES", "400"))
ALPHABET = st.sampled_from([*"aAbB.*-_\\[](){}?+^$|ıİß\u0430", "\x00"])


def oracle(pattern: str, text: str) -> bool:
    """``*`` matches any run of characters; everything else itself; case-insensitive (str.lower)."""
    p, t = pattern.lower(), text.lower()
    # matches[j]: the pattern read so far matches t[:j]
    matches = [True] + [False] * len(t)
    for c in p:
        if c == "*":
            for j in range(1, len(t) + 1):
                matches[j] = matches[j] or matches[j - 1]
        else:
            matches = [False] + [matches[j - 1] and t[j - 1] == c for j in range(1, len(t) + 1)]
    return matches[len(t)]


@settings(max_examples=EXAMPLES * 5, deadline=None)
@given(st.text(ALPHABET, max_size=30), st.text(ALPHABET, max_size=60))
def test_glob_matcher_agrees_with_the_oracle(pattern: str, text: str) -> None:
    start = time.perf_counter()
    assert glob_matches(pattern, text) == oracle(pattern, text)
    assert time.perf_counter() - start < 2  # linear: milliseconds; a backtracking matcher: hours


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.text(ALPHABET, max_size=3), min_size=2, max_size=60), st.text("aA", max_size=100))
def test_many_stars_stay_fast(pieces: list[str], text: str) -> None:
    pattern = "*".join(pieces)
    start = time.perf_counter()
    assert glob_matches(pattern, text) == oracle(pattern, text)
    assert time.perf_counter() - start < 2  # linear: milliseconds; a backtracking matcher: hours
