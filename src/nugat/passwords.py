"""Common passwords (pure): a password on a list of the most used ones is refused at sign-up and change.

The list is the one zxcvbn ships (the maintained Python port of Dropbox's password strength estimator): the
30,000 most frequent passwords of a corpus of ten million leaked ones, ``password12``, ``qwertyuiop`` and
``iloveyou`` among them. Only the list is read, from the package's data file, never the estimator: its
scoring takes seconds for some 72-character passwords (symbols that stand for letters), which anyone could
send to the sign-up page in a loop, and importing it costs 14 MB and 0.7 s. A set lookup costs
microseconds; the list is loaded at the first check (about 3 MB).

A password is common when, in lower case, it is on the list; or when its core is: the password without the
digits, symbols and spaces at its start and end (``Password1!``, ``2024 summer``), if four letters or more
are left, as is or with the usual symbols for letters read back (``P@ssw0rd1``).
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

MIN_CORE = 4
_LIST = re.compile(r'"passwords":\s*"([^"]*)"')
_LOOKALIKES = [str.maketrans("@4$5031!7+", "aassoeiitt"), str.maketrans("@4$5031!7+", "aassoelitt")]


def _list_file() -> Path:
    spec = importlib.util.find_spec("zxcvbn")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the zxcvbn package (the list of common passwords) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "frequency_lists.py"


@functools.cache
def common_passwords() -> frozenset[str]:
    """The list, lowercased; read once per process."""
    found = _LIST.search(_list_file().read_text(encoding="utf-8"))
    if found is None:
        raise RuntimeError(
            "the zxcvbn package's data file has no list of passwords: is its version supported?"
        )
    return frozenset(found.group(1).lower().split(","))


def _core(lowered: str) -> str:
    start, end = 0, len(lowered)
    while start < end and not lowered[start].isalpha():
        start += 1
    while end > start and not lowered[end - 1].isalpha():
        end -= 1
    return lowered[start:end]


def is_common(password: str) -> bool:
    """Whether ``password`` is a common password, or one with digits or symbols added (module docstring)."""
    known = common_passwords()
    lowered = password.lower()
    if lowered in known:
        return True
    core = _core(lowered)
    if len(core) < MIN_CORE:
        return False
    return any(form in known for form in (core, *(core.translate(table) for table in _LOOKALIKES)))
