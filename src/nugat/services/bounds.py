"""The bounds of an id's versions in version order: what a push to an id of many versions reads to find the
registration pages it changes and to write the flat index.

Reading thousands of rows and sorting them is most of such a push's own cost, so a process keeps the
sorted bounds of the ids it pushed to last, once their push has committed, and then reads only the
versions added since (by any process: versions are never deleted, and the versions of one id are inserted
one push at a time under its row lock, so later ones have higher ids). What it kept is used only if the
id's count and sum of version ids say that it and the versions added since are every version of the id.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, and_, bindparam, func, select

from nugat.db.models import PackageVersion, table
from nugat.versions import version_key

KEPT_BOUNDS = 60_000
"""Bounds kept per process, over all ids (about 200 bytes each with their keys): 20 ids of 3,000 versions."""

VERSIONS = table(PackageVersion)
_EVERY = VERSIONS.alias("every_version")
_OF_ID = VERSIONS.c.registration_id == bindparam("rid")
_COLUMNS = (VERSIONS.c.version, VERSIONS.c.version_lower, VERSIONS.c.is_semver2, VERSIONS.c.id)
_ALL = select(*_COLUMNS).where(_OF_ID)
# The versions added after ``after`` (none: one row of NULLs), each with the id's count and sum of version
# ids (one scan of the id's index, joined: not a subquery a column).
_TOTALS = (
    select(func.count().label("total"), func.sum(_EVERY.c.id).label("id_sum"))
    .where(_EVERY.c.registration_id == bindparam("rid"))
    .subquery("totals")
)
_SINCE = select(*_COLUMNS, _TOTALS.c.total, _TOTALS.c.id_sum).select_from(
    _TOTALS.outerjoin(VERSIONS, and_(_OF_ID, VERSIONS.c.id > bindparam("after")))
)


class Bound(NamedTuple):
    """What a registration page's place needs of a version (``registration.Bounds``), and its row id."""

    version: str
    version_lower: str
    is_semver2: bool
    id: int


class Sorted(NamedTuple):
    """Every version's bounds of an id, in version order, with their version keys in the same order."""

    bounds: list[Bound]
    keys: list[Any]
    last_id: int  # the highest version id among them
    id_sum: int


class KeptBounds:
    """The sorted bounds of the ids this process pushed to last (the one pushed to longest ago dropped
    first)."""

    def __init__(self, limit: int = KEPT_BOUNDS) -> None:
        self.limit = limit
        self._kept: OrderedDict[int, Sorted] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()

    def read(self, c: Connection, reg_id: int) -> Sorted:
        """Every version's bounds of the id as transaction ``c`` sees them, in version order."""
        with self._lock:
            known = self._kept.get(reg_id)
        if known is not None:
            found = c.execute(_SINCE, {"rid": reg_id, "after": known.last_id}).all()
            added = [row for row in found if row[3] is not None]
            if added and _completes(known, added):
                return _with(known, added)
        rows = cast(Sequence[Bound], c.execute(_ALL, {"rid": reg_id}).all())
        keys = list(map(version_key, map(itemgetter(0), rows)))
        order = sorted(range(len(rows)), key=keys.__getitem__)
        ids = list(map(itemgetter(3), rows))
        return Sorted([rows[n] for n in order], [keys[n] for n in order], max(ids, default=0), sum(ids))

    def keep(self, reg_id: int, found: Sorted) -> None:
        """Keep what ``read`` returned for the id (the push's own version among them), once the push that
        read it has committed."""
        with self._lock:
            old = self._kept.pop(reg_id, None)
            self._weight -= 0 if old is None else len(old.bounds)
            if len(found.bounds) > self.limit:
                return
            self._kept[reg_id] = found
            self._weight += len(found.bounds)
            while self._weight > self.limit:
                _, dropped = self._kept.popitem(last=False)
                self._weight -= len(dropped.bounds)


def _completes(known: Sorted, added: Sequence[Any]) -> bool:
    """Whether the versions kept and those added since are every version of the id."""
    total, id_sum = added[0][4], added[0][5]
    return bool(len(known.bounds) + len(added) == total and known.id_sum + sum(r[3] for r in added) == id_sum)


def _with(known: Sorted, added: Sequence[Any]) -> Sorted:
    bounds, keys = list(known.bounds), list(known.keys)
    last_id, id_sum = known.last_id, known.id_sum
    for version, version_lower, is_semver2, version_id, *_ in added:
        key = version_key(version)
        at = bisect.bisect(keys, key)
        keys.insert(at, key)
        bounds.insert(at, Bound(version, version_lower, bool(is_semver2), version_id))
        last_id, id_sum = max(last_id, version_id), id_sum + version_id
    return Sorted(bounds, keys, last_id, id_sum)
