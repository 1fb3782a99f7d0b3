"""NuGet version and version-range semantics (parsing, normalization, ordering).

Mirrors NuGet.Versioning's ``NuGetVersion.TryParse``, ``VersionComparer.Default`` and
``VersionRange.TryParse`` (without floating ranges such as ``1.0.*``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

__all__ = [
    "InvalidVersion",
    "NuGetVersion",
    "VersionRange",
    "parse_range",
    "parse_version",
]

_INT32_MAX = 2**31 - 1
_INT32_MIN = -(2**31)
_DIGITS = re.compile(r"[0-9]+")
_IDENTIFIER = re.compile(r"[0-9A-Za-z-]+")
# What .NET's int.TryParse accepts within [0-9A-Za-z-]; NuGet compares such labels numerically.
_NUMERIC_LABEL = re.compile(r"-?[0-9]+")

_LabelKey = tuple[int, int, str]
_VersionKey = tuple[int, int, int, int, int, tuple[_LabelKey, ...]]


class InvalidVersion(ValueError):
    """A version or version range string that NuGet would reject."""


def _label_key(label: str) -> _LabelKey:
    """Sort key for one prerelease label, following NuGet's ``CompareRelease``.

    NuGet decides "numeric" with ``int.TryParse``, so a label such as ``-1`` is the number -1
    and a label too large for int32 is compared as text (after every numeric label).
    """
    if _NUMERIC_LABEL.fullmatch(label) and len(label.lstrip("-0")) <= 10:
        value = int(label)
        if _INT32_MIN <= value <= _INT32_MAX:
            return (0, value, "")
    # Labels are restricted to [0-9A-Za-z-], so ordinal-ignore-case is ordinal on the upper-cased text.
    return (1, 0, label.upper())


@dataclass(frozen=True, eq=False)
class NuGetVersion:
    major: int
    minor: int
    patch: int
    revision: int
    release_labels: tuple[str, ...]
    metadata: str | None
    original: str

    @classmethod
    def parse(cls, text: str) -> NuGetVersion:
        def fail(reason: str) -> InvalidVersion:
            return InvalidVersion(f"{text!r} is not a valid version: {reason}")

        stripped = text.strip()
        if not stripped:
            raise fail("it is empty")
        head, plus, metadata = stripped.partition("+")
        numbers, dash, prerelease = head.partition("-")

        parts = numbers.split(".")
        if len(parts) > 4:
            raise fail(f"it has {len(parts)} numeric parts, at most 4 are allowed")
        values: list[int] = []
        for part in parts:
            if not _DIGITS.fullmatch(part):
                raise fail(f"numeric part {part!r} is not a non-negative integer")
            # Past int32 by its length alone (Python also refuses int() of over 4,300 digits).
            value = int(part) if len(part.lstrip("0")) <= 10 else _INT32_MAX + 1
            if value > _INT32_MAX:
                raise fail(f"numeric part {part!r} is larger than {_INT32_MAX}")
            values.append(value)
        values += [0] * (4 - len(values))

        labels = tuple(prerelease.split(".")) if dash else ()
        for label in labels:
            if not label:
                raise fail("it has an empty prerelease label")
            if not _IDENTIFIER.fullmatch(label):
                raise fail(f"prerelease label {label!r} contains characters other than [0-9A-Za-z-]")
            if len(label) > 1 and label[0] == "0" and label.isdigit():
                raise fail(f"numeric prerelease label {label!r} has a leading zero")

        if plus:
            for part in metadata.split("."):
                if not part:
                    raise fail("it has an empty build metadata part")
                if not _IDENTIFIER.fullmatch(part):
                    raise fail(f"build metadata part {part!r} contains characters other than [0-9A-Za-z-]")

        major, minor, patch, revision = values
        return cls(major, minor, patch, revision, labels, metadata if plus else None, stripped)

    @property
    def normalized(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.revision:
            text += f".{self.revision}"
        if self.release_labels:
            text += "-" + ".".join(self.release_labels)
        return text

    @property
    def full(self) -> str:
        return self.normalized if self.metadata is None else f"{self.normalized}+{self.metadata}"

    @property
    def is_prerelease(self) -> bool:
        return bool(self.release_labels)

    @property
    def is_semver2(self) -> bool:
        return len(self.release_labels) > 1 or self.metadata is not None

    @cached_property
    def _key(self) -> _VersionKey:
        # A release sorts after all of its prereleases; tuple order gives "fewer labels first".
        labels = tuple(_label_key(label) for label in self.release_labels)
        return (self.major, self.minor, self.patch, self.revision, 0 if labels else 1, labels)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NuGetVersion):
            return NotImplemented
        return self._key == other._key

    def __lt__(self, other: NuGetVersion) -> bool:
        if not isinstance(other, NuGetVersion):
            return NotImplemented
        return self._key < other._key

    def __le__(self, other: NuGetVersion) -> bool:
        if not isinstance(other, NuGetVersion):
            return NotImplemented
        return self._key <= other._key

    def __gt__(self, other: NuGetVersion) -> bool:
        if not isinstance(other, NuGetVersion):
            return NotImplemented
        return self._key > other._key

    def __ge__(self, other: NuGetVersion) -> bool:
        if not isinstance(other, NuGetVersion):
            return NotImplemented
        return self._key >= other._key


@functools.lru_cache(maxsize=4096)  # versions are parsed again on every change of their id
def parse_version(text: str) -> NuGetVersion:
    return NuGetVersion.parse(text)


@functools.lru_cache(maxsize=16384)  # a push to an id sorts its thousands of versions: one C call each
def version_key(text: str) -> tuple[Any, ...]:
    """A sort key of a valid version's text, in version order (a plain tuple: sorting thousands of versions
    compares tuples in C rather than calling ``NuGetVersion.__lt__``)."""
    return parse_version(text)._key


@dataclass(frozen=True)
class VersionRange:
    min_version: NuGetVersion | None
    include_min: bool
    max_version: NuGetVersion | None
    include_max: bool

    def __post_init__(self) -> None:
        # As in NuGet, a missing bound is never inclusive; normalizing keeps equality meaningful.
        if self.min_version is None:
            object.__setattr__(self, "include_min", False)
        if self.max_version is None:
            object.__setattr__(self, "include_max", False)

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        def fail(reason: str) -> InvalidVersion:
            return InvalidVersion(f"{text!r} is not a valid version range: {reason}")

        def bound(part: str) -> NuGetVersion | None:
            part = part.strip()
            if not part:
                return None
            try:
                return NuGetVersion.parse(part)
            except InvalidVersion as exc:
                raise fail(str(exc)) from exc

        stripped = text.strip()
        if not stripped:
            raise fail("it is empty")
        if stripped[0] not in "[(":
            return cls(bound(stripped), True, None, False)
        if len(stripped) < 2 or stripped[-1] not in "])":
            raise fail("it must end with ']' or ')'")
        include_min, include_max = stripped[0] == "[", stripped[-1] == "]"
        parts = stripped[1:-1].split(",")
        if len(parts) > 2:
            raise fail("it has more than one comma")
        if len(parts) == 1:
            if not (include_min and include_max):
                raise fail("an exact version must be written as '[version]'")
            parts.append(parts[0])
        low, high = bound(parts[0]), bound(parts[1])
        if low is None and high is None:
            raise fail("it has neither a lower nor an upper bound")
        if low is not None and high is not None:
            if low > high:
                raise fail("the minimum version is greater than the maximum version")
            if low == high and not (include_min and include_max):
                raise fail("it cannot contain any version")
        return cls(low, include_min, high, include_max)

    def __str__(self) -> str:
        low, high = self.min_version, self.max_version
        if low is not None and high is not None and low == high and self.include_min and self.include_max:
            return f"[{low.normalized}]"
        return (
            ("[" if self.include_min else "(")
            + (low.normalized if low is not None else "")
            + ", "
            + (high.normalized if high is not None else "")
            + ("]" if self.include_max else ")")
        )

    def contains(self, version: NuGetVersion) -> bool:
        low, high = self.min_version, self.max_version
        if low is not None and not (low <= version if self.include_min else low < version):
            return False
        return high is None or (version <= high if self.include_max else version < high)

    @property
    def is_semver2(self) -> bool:
        return any(v is not None and v.is_semver2 for v in (self.min_version, self.max_version))


def parse_range(text: str) -> VersionRange:
    return VersionRange.parse(text)
