"""Keeps ``search_entries`` (what search reads) in step with the ids: one call per change, in its transaction.

For each id: its listed versions, the latest of them in each of search's four views (prerelease or not,
SemVer 2.0.0 or not), and one row per distinct latest version, flagged with the views it is the latest of
(most ids have one row). The database's text index (``pg_trgm`` on PostgreSQL, FTS5 on SQLite) follows
the rows, so every process sees a change as soon as it commits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from nugat.db import InIds, search_changed
from nugat.db.models import (
    Account,
    PackageOwner,
    PackageRegistration,
    PackageVersion,
    SearchEntry,
    table,
)
from nugat.versions import version_key

REGS = table(PackageRegistration)
VERSIONS = table(PackageVersion)
OWNERS = table(PackageOwner)
ACCOUNTS = table(Account)
ENTRIES = table(SearchEntry)

# (prerelease, semver2) of each view, and the column flagging it.
VIEWS = {(False, False): "in_release", (True, False): "in_prerelease", (False, True): "in_semver2"}
VIEWS[(True, True)] = "in_all"
BATCH = 500

_DROP = delete(ENTRIES).where(InIds(ENTRIES.c.registration_id, "rids"))
_REGS = select(REGS.c.id, REGS.c.package_id, REGS.c.id_lower, REGS.c.total_downloads).where(
    InIds(REGS.c.id, "rids")
)
_OWNERS = (
    select(OWNERS.c.registration_id, ACCOUNTS.c.name)
    .join(ACCOUNTS, ACCOUNTS.c.id == OWNERS.c.account_id)
    .where(InIds(OWNERS.c.registration_id, "rids"))
)


class Listed(NamedTuple):
    """A listed version as search reads it (a row of ``_LISTED``): a plain tuple (a database row's field
    costs ten times a tuple's)."""

    id: int
    registration_id: int
    version: str
    is_prerelease: bool
    is_semver2: bool


_LISTED = select(*(VERSIONS.c[name] for name in Listed._fields)).where(
    InIds(VERSIONS.c.registration_id, "rids"), VERSIONS.c.listed.is_(True)
)
_DETAILS = select(VERSIONS.c.id, VERSIONS.c.search_text, VERSIONS.c.metadata_json).where(
    InIds(VERSIONS.c.id, "vids")
)
_ADD = insert(ENTRIES)
_ENTRY_COLUMNS = [column for column in ENTRIES.c if column.name != "id"]
_ENTRY_NAMES = [column.name for column in _ENTRY_COLUMNS]
_EXISTING = select(*_ENTRY_COLUMNS).where(InIds(ENTRIES.c.registration_id, "rids"))


def words(values: Sequence[str]) -> str:
    """Lowercased words between spaces, with a space at each end (`` json parser ``): a whole word is
    found as `` word ``."""
    return " " + " ".join(v.lower() for v in values if v) + " "


def _entry(
    reg: Any, version_id: int, views: list[str], text: str, meta: dict[str, Any], owners: list[str]
) -> dict[str, Any]:
    types = [p["name"] for p in meta.get("package_types", []) if p.get("name")]
    return {
        "registration_id": reg.id,
        "version_id": version_id,
        **{column: column in views for column in VIEWS.values()},
        "package_id": reg.package_id,
        "id_lower": reg.id_lower,
        "search_text": text,
        "title": (meta.get("title") or "").lower(),
        "description": (meta.get("description") or "").lower(),
        "authors": "\n".join(a.lower() for a in meta.get("authors", [])),
        "tags": words([t for tag in meta.get("tags", []) for t in tag.split()]),
        "owners": words(owners),
        "package_types": words(types),
        "downloads": reg.total_downloads,
    }


def index_ids(
    c: Connection,
    reg_ids: Sequence[int],
    *,
    keep_unchanged: bool = False,
    listed: Mapping[int, Sequence[Listed]] | None = None,
) -> None:
    """Rewrite the search entries of these ids from the state of transaction ``c``.

    ``keep_unchanged`` (``nugat rebuild``, where nearly every id's entries are already right): the
    entries are read first, and only the ids whose entries differ from what they should be are rewritten
    (a read instead of a delete and an insert, and the text index's update, for each of the others).
    ``listed``: the listed versions of each id, if the caller has read them in ``c`` (a rebuild reads
    every version of its batch for the documents): they are not read again."""
    for start in range(0, len(reg_ids), BATCH):
        _index(c, list(reg_ids[start : start + BATCH]), keep_unchanged, listed)


def _index(
    c: Connection,
    reg_ids: list[int],
    keep_unchanged: bool = False,
    known: Mapping[int, Sequence[Listed]] | None = None,
) -> None:
    if not keep_unchanged:
        search_changed(c)
        c.execute(_DROP, {"rids": reg_ids})
    listed: dict[int, list[Listed]] = {}
    if known is None:
        for row in c.execute(_LISTED, {"rids": reg_ids}).all():
            listed.setdefault(row[1], []).append(Listed._make(row))
    else:
        listed = {rid: list(known[rid]) for rid in reg_ids if rid in known}
    latest: dict[int, dict[int, list[str]]] = {}  # reg id: version id: the views it is the latest of
    for reg_id, versions in listed.items():
        versions.sort(key=lambda r: version_key(r.version))
        for (prerelease, semver2), column in VIEWS.items():
            chosen = next(
                (
                    r
                    for r in reversed(versions)
                    if (prerelease or not r.is_prerelease) and (semver2 or not r.is_semver2)
                ),
                None,
            )
            if chosen is not None:
                latest.setdefault(reg_id, {}).setdefault(chosen.id, []).append(column)
    if not keep_unchanged:
        _add(c, latest)
        return
    wanted = _rows(c, latest)
    existing: dict[int, set[tuple[Any, ...]]] = {}
    for row in c.execute(_EXISTING, {"rids": reg_ids}).all():
        existing.setdefault(row.registration_id, set()).add(tuple(row))
    computed: dict[int, set[tuple[Any, ...]]] = {}
    for entry in wanted:
        computed.setdefault(entry["registration_id"], set()).add(tuple(entry[n] for n in _ENTRY_NAMES))
    changed = [rid for rid in reg_ids if existing.get(rid, set()) != computed.get(rid, set())]
    if changed:
        search_changed(c)
        c.execute(_DROP, {"rids": changed})
        kept = set(changed)
        rows = [entry for entry in wanted if entry["registration_id"] in kept]
        if rows:
            c.execute(_ADD, rows)


def _add(c: Connection, latest: dict[int, dict[int, list[str]]]) -> None:
    """Insert the entries of these ids: for each, its latest versions and the views they are latest in."""
    rows = _rows(c, latest)
    if rows:
        c.execute(_ADD, rows)


def _rows(c: Connection, latest: dict[int, dict[int, list[str]]]) -> list[dict[str, Any]]:
    """The entries of these ids (``_add``)."""
    wanted = [vid for views in latest.values() for vid in views]
    if not wanted:
        return []
    reg_ids = list(latest)
    regs = {r.id: r for r in c.execute(_REGS, {"rids": reg_ids})}
    owners: dict[int, list[str]] = {}
    for reg_id, name in c.execute(_OWNERS, {"rids": reg_ids}):
        owners.setdefault(reg_id, []).append(name)
    details = {vid: (text, meta) for vid, text, meta in c.execute(_DETAILS, {"vids": wanted}).all()}
    return [
        _entry(regs[reg_id], vid, views, *details[vid], sorted(owners.get(reg_id, []), key=str.lower))
        for reg_id, by_version in latest.items()
        if reg_id in regs
        for vid, views in by_version.items()
    ]


_CURRENT = (
    select(ENTRIES, VERSIONS.c.version, REGS.c.total_downloads)
    .join(VERSIONS, VERSIONS.c.id == ENTRIES.c.version_id)
    .join(REGS, REGS.c.id == ENTRIES.c.registration_id)
    .where(ENTRIES.c.registration_id == bindparam("rid"))
)
_KEPT = [column.name for column in ENTRIES.c if column.name != "id"]


class Added(Protocol):
    """A version a push has just inserted, with the values it inserted (``materialize.PushedVersion``)."""

    @property
    def id(self) -> int: ...
    @property
    def version(self) -> str: ...
    @property
    def is_prerelease(self) -> bool: ...
    @property
    def is_semver2(self) -> bool: ...
    @property
    def listed(self) -> bool: ...
    @property
    def search_text(self) -> str: ...
    @property
    def metadata_json(self) -> dict[str, Any]: ...


class _Reg(NamedTuple):
    id: int
    package_id: str
    id_lower: str
    total_downloads: int


def _views_of(added: Added) -> list[str]:
    return [
        column
        for (prerelease, semver2), column in VIEWS.items()
        if (prerelease or not added.is_prerelease) and (semver2 or not added.is_semver2)
    ]


def index_new(
    c: Connection, reg_id: int, package_id: str, id_lower: str, added: Added, owners: Sequence[str]
) -> None:
    """The entry of an id a push has just created with version ``added``, owned by ``owners`` (names):
    nothing to read."""
    if not added.listed:
        index_ids(c, [reg_id])
        return
    reg = _Reg(reg_id, package_id, id_lower, 0)
    owned = sorted(owners, key=str.lower)
    search_changed(c)
    c.execute(_ADD, [_entry(reg, added.id, _views_of(added), added.search_text, added.metadata_json, owned)])


def index_added(c: Connection, reg_id: int, added: Added) -> None:
    """After a push of version ``added`` to an existing id (whose entries are current: every change
    rewrites them in its transaction): the new version becomes the latest of the views where it sorts
    above the latest. Neither the id's other versions nor its owners are read (a push to an id of
    thousands of versions stays cheap): the current entries hold what the rewritten ones need."""
    if not added.listed:
        index_ids(c, [reg_id])
        return
    current = c.execute(_CURRENT, {"rid": reg_id}).all()
    if not current:  # no listed version before this one
        index_ids(c, [reg_id])
        return
    latest: dict[str, tuple[int, str]] = {}  # view column: (version id, version)
    for row in current:
        for column in VIEWS.values():
            if row._mapping[column]:
                latest[column] = (row.version_id, row.version)
    key = version_key(added.version)
    won = [col for col in _views_of(added) if col not in latest or key > version_key(latest[col][1])]
    if not won:
        return
    kept = []
    for row in current:
        entry = {name: row._mapping[name] for name in _KEPT}
        entry["downloads"] = row.total_downloads
        for column in won:
            entry[column] = False
        if any(entry[column] for column in VIEWS.values()):
            kept.append(entry)
    first = current[0]._mapping
    reg = _Reg(reg_id, first["package_id"], first["id_lower"], first["total_downloads"])
    new = _entry(reg, added.id, won, added.search_text, added.metadata_json, [])
    new["owners"] = first["owners"]
    search_changed(c)
    c.execute(_DROP, {"rids": [reg_id]})
    c.execute(_ADD, [*kept, new])


def all_ids(c: Connection) -> Iterator[list[int]]:
    """Every registration id, in batches (bounded memory whatever the feed's size)."""
    last = 0
    while True:
        ids = list(
            c.execute(select(REGS.c.id).where(REGS.c.id > last).order_by(REGS.c.id).limit(5000)).scalars()
        )
        if not ids:
            return
        yield ids
        last = ids[-1]


def index_all(c: Connection) -> int:
    """Rewrite every id's entries (``nugat rebuild``, the migration, data put straight into the database)."""
    count = 0
    for ids in all_ids(c):
        index_ids(c, ids)
        count += len(ids)
    return count


# UPDATE ... FROM: one join of the two tables (a correlated subquery per entry took ~8x as long).
_SYNC_DOWNLOADS = (
    update(ENTRIES)
    .where(
        ENTRIES.c.registration_id == REGS.c.id,
        InIds(REGS.c.id, "rids"),
        ENTRIES.c.downloads != REGS.c.total_downloads,
    )
    .values(downloads=REGS.c.total_downloads)
)


def sync_downloads(c: Connection, reg_ids: Sequence[int]) -> int:
    """Copy these ids' download totals into the entries that rank by them (those a flush has just
    counted: never a pass over every entry); the number of entries changed."""
    changed = int(c.execute(_SYNC_DOWNLOADS, {"rids": list(reg_ids)}).rowcount or 0)
    if changed:
        search_changed(c)
    return changed


def count(c: Connection) -> int:
    return int(c.execute(select(func.count()).select_from(ENTRIES)).scalar_one())
