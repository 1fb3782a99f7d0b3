"""Writes an id's V3 read documents to storage whenever the id changes (push, unlist, relist).

Restore reads therefore never query the database: they are served from these stored documents, which
nginx or a CDN can serve as well. Runs under a lock on the registration row, so concurrent changes to
one id are written one after the other, each from the latest committed state.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import Connection, bindparam, func, or_, select, update
from sqlalchemy.exc import OperationalError

from nugat.clock import isoformat, utcnow
from nugat.db import Database, InIds
from nugat.db.models import DocumentEpoch, PackageOwner, PackageRegistration, PackageVersion, table
from nugat.feed import BASE, flatcontainer, layout, registration
from nugat.prefixes import reserving_owners
from nugat.services.bounds import KeptBounds, Sorted
from nugat.services.reservations import is_verified, reservations
from nugat.services.search_index import Listed, index_added, index_ids, index_new
from nugat.storage import Storage, StorageError
from nugat.storage.base import Same

JSON_TYPE = "application/json"
# The base URL the stored documents were written with (the placeholder when they follow each request):
# a start under other settings (NUGAT_PUBLIC_URL, NUGAT_CONTENT_URL) rewrites them all (``follow_base``).
BASE_MARKER = "documents-base"

log = logging.getLogger("nugat.materialize")


SEMVER1, SEMVER2 = layout.HIVES  # the hive without SemVer 2.0.0 versions, the hive with them
_SEMVER1_KEY, _SEMVER2_KEY = f"v3/{SEMVER1}/", f"v3/{SEMVER2}/"
_SEMVER1_URL, _SEMVER2_URL = (layout.absolute(key).encode() for key in (_SEMVER1_KEY, _SEMVER2_KEY))

REGS = table(PackageRegistration)
VERSIONS = table(PackageVersion)
OWNERS = table(PackageOwner)
EPOCHS = table(DocumentEpoch)
# The documents' epoch now (``DocumentEpoch``): a build records the one it read as it began, so that a
# declaration of staleness made while it wrote leaves it stale.
EPOCH = select(EPOCHS.c.epoch).where(EPOCHS.c.id == 1).scalar_subquery()
# Built once: they run in every push (building a statement costs more than running it on SQLite).
_REGISTRATION = (
    select(
        REGS.c.id,
        REGS.c.package_id,
        REGS.c.trusted_only,
        REGS.c.revision,
        REGS.c.built_revision,
        REGS.c.built_epoch,
        EPOCH.label("epoch"),
    )
    .where(REGS.c.id_lower == bindparam("id_lower"))
    .with_for_update(of=REGS)
)
_VERSIONS_OF = select(VERSIONS).where(VERSIONS.c.registration_id == bindparam("rid"))
_LEAF_OF = (
    select(VERSIONS, REGS.c.package_id.label("registration_package_id"))
    .join(REGS, REGS.c.id == VERSIONS.c.registration_id)
    .where(REGS.c.id_lower == bindparam("id_lower"), VERSIONS.c.version_lower == bindparam("version_lower"))
)
# An added version's build reads every version's bounds (``services.bounds``), and the details only of the
# pages it rewrites.
_DETAILS_OF = select(VERSIONS).where(
    VERSIONS.c.registration_id == bindparam("rid"),
    VERSIONS.c.version_lower.in_(bindparam("wanted", expanding=True)),
)
# A push's change and its documents land in one transaction: both revisions move together.
_PUSHED = (
    update(REGS)
    .where(REGS.c.id == bindparam("rid"))
    .values(revision=REGS.c.revision + 1, built_revision=REGS.c.revision + 1, built_epoch=bindparam("epoch"))
)
REBUILD_BATCH = 200
_LOCK_MANY = (
    select(REGS.c.id, REGS.c.id_lower, REGS.c.package_id, EPOCH.label("epoch"))
    .where(InIds(REGS.c.id, "rids"))
    .with_for_update(of=REGS)
)
_NEXT_EPOCH = update(EPOCHS).where(EPOCHS.c.id == 1).values(epoch=EPOCHS.c.epoch + 1)
_IDS = select(func.count()).select_from(REGS)


class _Version(NamedTuple):
    """A version as a batch's documents read it (a ``registration.VersionRecord``): a plain tuple, whose
    fields cost a tenth of a database row's (each leaf reads a dozen of them)."""

    registration_id: int
    version: str
    version_lower: str
    full_version: str
    is_semver2: bool
    listed: bool
    published_at: Any
    metadata_json: dict[str, Any]
    id: int  # these two for search (``search_index.Listed``)
    is_prerelease: bool


_VERSIONS_OF_MANY = select(*(VERSIONS.c[name] for name in _Version._fields)).where(
    InIds(VERSIONS.c.registration_id, "rids")
)
_OWNERS_OF_MANY = select(OWNERS.c.registration_id, OWNERS.c.account_id).where(
    InIds(OWNERS.c.registration_id, "rids")
)
_BUILT_MANY = (
    update(REGS)
    .where(InIds(REGS.c.id, "rids"))
    .values(built_revision=REGS.c.revision, built_epoch=bindparam("epoch"))
)
_BUILT = (
    update(REGS)
    .where(REGS.c.id == bindparam("rid"))
    .values(built_revision=REGS.c.revision, built_epoch=bindparam("epoch"))
)
_STALE = or_(REGS.c.built_revision < REGS.c.revision, REGS.c.built_epoch < EPOCH)
_IS_STALE = select(_STALE).where(REGS.c.id_lower == bindparam("id_lower"))
_ANY_STALE = select(REGS.c.id).where(_STALE).limit(1)
# The next batch in id order after a cursor (found by the primary key, however many are built already);
# ids another process is building are skipped (PostgreSQL; SQLite has one writer at a time anyway).
_CLAIM_STALE = (
    select(REGS.c.id)
    .where(_STALE, REGS.c.id > bindparam("after"))
    .order_by(REGS.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
STALE_WAIT_SECONDS = 0.2  # while other processes build the last stale ids


class Registration(NamedTuple):
    """The registration row a build needs (the caller holds it locked)."""

    id: int
    id_lower: str
    package_id: str
    trusted_only: bool = False  # only keys minted by trusted publishing may push it
    # As read with the lock: the documents are current when both pairs are equal.
    revision: int = 0
    built_revision: int = 0
    built_epoch: int = 0
    epoch: int = 0  # ``DocumentEpoch`` as the lock was taken: what a build of it records

    @property
    def current(self) -> bool:
        """Whether the id's documents were current when its row was locked."""
        return self.built_revision == self.revision and self.built_epoch == self.epoch


def locked_registration(c: Connection, id_lower: str) -> Registration | None:
    """The id's registration row, locked until the transaction ends (changes to one id queue on it)."""
    found = c.execute(_REGISTRATION, {"id_lower": id_lower}).first()
    return (
        None
        if found is None
        else Registration(
            found.id,
            id_lower,
            found.package_id,
            bool(found.trusted_only),
            found.revision,
            found.built_revision,
            found.built_epoch,
            found.epoch,
        )
    )


class PushedVersion(NamedTuple):
    """A version a push has just inserted, as it inserted it (a ``registration.VersionRecord``): its
    documents and search entry are written from these values, not read back."""

    id: int
    version: str
    version_lower: str
    full_version: str
    is_prerelease: bool
    is_semver2: bool
    listed: bool
    published_at: Any
    metadata_json: dict[str, Any]
    search_text: str


def dump(doc: Any) -> bytes:
    """A document's compact UTF-8 JSON. orjson writes the same bytes as ``json.dumps`` with these options
    for what documents hold (strings, booleans, integers, lists, objects), 5-10 times faster; what it
    refuses (an integer beyond 64 bits) the standard library writes."""
    try:
        return orjson.dumps(doc)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


# A document's commit as builds write it (every object of a document carries the same one).
_COMMIT = re.compile(rb'"commitId":"[0-9a-f-]{36}","commitTimeStamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"')


def unchanged_but_commit(stored: bytes, new: bytes) -> bool:
    """Whether a stored document is the new one but for its commit (an earlier build's, which the bytes
    then go on showing): a rebuild leaves it as it is, after a crash as well, since these are the bytes
    read back. Exact: the pattern matches only a commit's own fields (quotes inside a JSON string are
    escaped), and once the stored commit is replaced by the new one every byte must be equal."""
    now = _COMMIT.search(new)
    if now is None:
        return stored == new
    old = _COMMIT.search(stored)
    return old is not None and stored.replace(old.group(), now.group()) == new


class Materializer:
    def __init__(self, db: Database, storage: Storage, documents_url: str | None = None) -> None:
        self.db = db
        self.storage = storage
        # With a fixed URL (the content origin's, else the public one) the documents are stored final,
        # servable by nginx or a CDN as they are; without one they hold BASE, replaced per request.
        self.base = documents_url.encode() if documents_url else None
        self.bounds = KeptBounds()

    def build(self, id_lower: str) -> None:
        """Write the documents of one id from the committed state (or remove them, if it is gone)."""
        with self.db.transaction() as c:
            reg = locked_registration(c, id_lower)
            if reg is None:
                self._remove(id_lower, keep=set())
                return
            self.build_in(c, reg)

    def build_committed(self, id_lowers: Sequence[str]) -> None:
        """After a change has committed: write the documents of its ids, or leave them for later. The ids
        are marked stale in the change's transaction, so ``recover`` (at start) or ``nugat rebuild``
        writes what storage or the database refused now."""
        for id_lower in id_lowers:
            try:
                self.build(id_lower)
            except (StorageError, OperationalError) as exc:
                log.error("could not write the documents of %s yet: %s", id_lower, exc)

    def build_in(self, c: Connection, reg: Registration) -> None:
        """Write ``reg``'s documents from the state of transaction ``c``, which holds its row locked."""
        index_ids(c, [reg.id])  # search follows in the same transaction
        self._build_all(c, reg)
        c.execute(_BUILT, {"rid": reg.id, "epoch": reg.epoch})

    def build_pushed(
        self,
        c: Connection,
        reg: Registration,
        added: PushedVersion,
        *,
        created: bool,
        verified: bool,
        owner_name: str,
    ) -> tuple[int, Sorted] | None:
        """After a push inserted version ``added`` in transaction ``c`` (which holds ``reg`` locked, as it
        was before the push): its search entries and documents, and the id's revision and built revision
        moved together. ``created``: the push created the id (its row was inserted with both revisions at
        1: its one version's documents are written from ``added`` alone). When the documents were current
        before the push, only what it changes is rewritten (``_build_added``). ``verified``: as
        ``reservations.is_verified`` answers (the push has read the reservations and owners already);
        ``owner_name``: the pushing key's owner, a created id's one owner.

        Returns the id's sorted bounds read for ``_build_added``: the caller keeps them once ``c`` has
        committed (``bounds.keep``), and the next push to the id reads only what was added since."""
        if created:
            index_new(c, reg.id, reg.package_id, reg.id_lower, added, [owner_name])
            self._write_all(reg.id_lower, reg.package_id, [added], verified, remove_leftovers=False)
            return None
        index_added(c, reg.id, added)
        found = None
        if reg.current:
            found = self._build_added(c, reg, added.version_lower, verified)
        if found is None:
            self._build_all(c, reg, remove_leftovers=False, verified=verified)
        c.execute(_PUSHED, {"rid": reg.id, "epoch": reg.epoch})
        return None if found is None else (reg.id, found)

    def _build_all(
        self, c: Connection, reg: Registration, *, remove_leftovers: bool = True, verified: bool | None = None
    ) -> None:
        rows = c.execute(_VERSIONS_OF, {"rid": reg.id}).all()
        if verified is None:
            verified = is_verified(c, reg.id, reg.package_id)
        self._write_all(reg.id_lower, reg.package_id, rows, verified, remove_leftovers=remove_leftovers)

    def _write_all(
        self, id_lower: str, package_id: str, rows: Sequence[Any], verified: bool, *, remove_leftovers: bool
    ) -> None:
        self._store(id_lower, self._documents(id_lower, package_id, rows, verified), remove_leftovers)

    def _documents(
        self,
        id_lower: str,
        package_id: str,
        rows: Sequence[Any],
        verified: bool,
        commit: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Every document of the id, by storage key: the flat index, and each hive's index and pages.
        ``commit``: the commit they belong to (one per batch of a rebuild), else a new one."""
        versions = cast(list[registration.VersionRecord], rows)
        commit = commit or self._commit()
        wanted: dict[str, Any] = {}  # key: document (serialized only if written), or its bytes
        if versions:
            wanted[layout.flat_index(id_lower)] = flatcontainer.version_list(versions)
        if versions and not any(v.is_semver2 for v in versions):
            # Both hives show the same versions: the SemVer 1 hive's documents are the other's, but for
            # the hive in their URLs (built and serialized once: 30% less of the documents' CPU).
            for key, doc in registration.build(
                SEMVER2, package_id, versions, commit, verified=verified
            ).items():
                wanted[key] = data = dump(doc)
                wanted[key.replace(_SEMVER2_KEY, _SEMVER1_KEY, 1)] = data.replace(_SEMVER2_URL, _SEMVER1_URL)
        else:
            for hive in layout.HIVES:
                wanted.update(registration.build(hive, package_id, versions, commit, verified=verified))
        return wanted

    def _store(
        self, id_lower: str, wanted: dict[str, Any], remove_leftovers: bool, *, keep_unchanged: bool = False
    ) -> None:
        """``keep_unchanged`` (a rebuild, where most documents are as stored): documents stored as they
        would be written, but for their commit, are left as they are (``unchanged_but_commit``)."""
        made = self._write(wanted, unchanged_but_commit if keep_unchanged else None)
        # Documents no longer wanted: after a push (``remove_leftovers`` False) only pages can be, and there
        # are none below INLINE_BELOW versions, before or after. (A full build also removes the leaves that
        # nugat stored before it answered them from the database.) None in a folder the write made.
        if remove_leftovers or any("/page/" in key for key in wanted):
            self._remove(id_lower, keep=wanted.keys(), made=made)

    def _build_added(self, c: Connection, reg: Registration, added: str, verified: bool) -> Sorted | None:
        """Rewrite only what adding version ``added`` changes to documents that were current before it:
        the flat index, each hive's index, and the pages from the one it lands in (the last one, for a
        version above the others) to the end; pages whose bounds moved are removed. Returns the id's
        sorted bounds, or None, doing nothing, when a full build is needed: a hive's index inlines its
        pages (fewer than INLINE_BELOW versions, before or after)."""
        # Sorted once: each hive's versions are a part of the list in the same order, read by position
        # over thousands of them (a column read by name costs more than the query).
        found = self.bounds.read(c, reg.id)
        bounds = found.bounds
        lowers = list(map(itemgetter(1), bounds))
        if added not in lowers:
            return None
        at = lowers.index(added)
        commit = self._commit()
        wanted: dict[str, Any] = {layout.flat_index(reg.id_lower): {"versions": lowers}}
        rewrite: dict[str, list[list[str]]] = {}  # hive: the versions of each page it rewrites
        gone: list[str] = []
        # Without SemVer 2.0.0 versions both hives show the same: the SemVer 1 hive's documents are the
        # other's but for the hive in their URLs (built and serialized once, as ``_documents`` does).
        same = not any(map(itemgetter(2), bounds))
        for hive, with_semver2 in ({SEMVER2: True} if same else layout.HIVES).items():
            if with_semver2:
                after, before, place = bounds, bounds[:at] + bounds[at + 1 :], at
            else:
                after = [b for b in bounds if not b[2]]
                before = [b for b in after if b[1] != added]
                place = sum(not b[2] for b in bounds[:at])
            if len(before) == len(after):
                continue  # a SemVer 2.0.0 version: the SemVer 1 hive does not change
            if len(before) < registration.INLINE_BELOW:
                return None
            old, new = registration.pages_of(before), registration.pages_of(after)
            # The pages before the one the version lands in hold the same versions as before.
            first = place // registration.PAGE_SIZE
            rewrite[hive] = [[v[1] for v in chunk] for chunk in new[first:]]
            wanted[layout.registration_index(hive, reg.id_lower)] = registration.paged_index(
                hive, reg.id_lower, new, commit
            )
            kept = {registration.page_key(hive, reg.id_lower, chunk) for chunk in new}
            gone += [
                k
                for k in (registration.page_key(hive, reg.id_lower, c) for c in old[first:])
                if k not in kept
            ]
        needed = sorted({v for pages in rewrite.values() for page in pages for v in page})
        details = {r.version_lower: r for r in c.execute(_DETAILS_OF, {"rid": reg.id, "wanted": needed})}
        for hive, pages in rewrite.items():
            for page in pages:
                chunk = cast(list[registration.VersionRecord], [details[v] for v in page])
                key = registration.page_key(hive, reg.id_lower, chunk)
                wanted[key] = registration.page_document(
                    hive, reg.package_id, chunk, commit, verified=verified
                )
        if same:
            for key in [k for k in wanted if k.startswith(_SEMVER2_KEY)]:
                wanted[key] = data = dump(wanted[key])
                wanted[key.replace(_SEMVER2_KEY, _SEMVER1_KEY, 1)] = data.replace(_SEMVER2_URL, _SEMVER1_URL)
            gone += [key.replace(_SEMVER2_KEY, _SEMVER1_KEY, 1) for key in gone]
        self._write(wanted)
        for key in gone:
            self.storage.delete(key)
        return found

    @staticmethod
    def _commit() -> dict[str, str]:
        return {"commitId": str(uuid.uuid4()), "commitTimeStamp": isoformat(utcnow())}

    def _write(self, wanted: dict[str, Any], same: Same | None = None) -> Collection[str]:
        """Store documents, pages before the indexes that point at them (put_many keeps the order): the
        folders made (``Storage.put_many``)."""
        changed: list[tuple[str, bytes | Path, str]] = []
        for key in sorted(wanted, key=lambda k: k.endswith("/index.json")):
            doc = wanted[key]
            data = doc if isinstance(doc, bytes) else dump(doc)
            changed.append(
                (key, data if self.base is None else data.replace(BASE.encode(), self.base), JSON_TYPE)
            )
        return self.storage.put_many(changed, durable=False, same=same)

    def _remove(self, id_lower: str, keep: Collection[str], made: Collection[str] = ()) -> None:
        """Delete the id's documents but those in ``keep``; nothing is looked for in the ``made`` folders
        (made by the write of those kept: nothing else is in them)."""
        for hive in layout.HIVES:
            folder = f"v3/{hive}/{id_lower}"
            if folder in made:
                continue
            for key in self.storage.list_keys(folder):
                if key not in keep:
                    self.storage.delete(key)
        if layout.flat_index(id_lower) not in keep:
            self.storage.delete(layout.flat_index(id_lower))

    def leaf(self, hive: str, id_lower: str, version_lower: str) -> dict[str, Any] | None:
        """The registration leaf of a version in ``hive`` (``registration.leaf``), or None."""
        with self.db.read_transaction() as c:
            row = c.execute(_LEAF_OF, {"id_lower": id_lower, "version_lower": version_lower}).first()
        if row is None or (row.is_semver2 and not layout.HIVES[hive]):
            return None
        return registration.leaf(hive, row.registration_package_id, cast(registration.VersionRecord, row))

    def is_stale(self, id_lower: str) -> bool:
        """Whether the id's documents lag behind the database (one indexed read, no lock)."""
        with self.db.read_transaction() as c:
            return bool(c.execute(_IS_STALE, {"id_lower": id_lower}).scalar())

    def build_if_stale(self, id_lower: str) -> bool:
        """Build the id's documents if they lag, under its row lock (waiting for a build under way)."""
        with self.db.transaction() as c:
            reg = locked_registration(c, id_lower)
            if reg is None or not c.execute(_IS_STALE, {"id_lower": id_lower}).scalar():
                return False
            self.build_in(c, reg)
            return True

    def any_stale(self) -> bool:
        """Whether any id's documents lag (committed state: ids being built elsewhere count)."""
        with self.db.read_transaction() as c:
            return c.execute(_ANY_STALE).first() is not None

    def build_stale_batch(self, after: int = 0, limit: int = REBUILD_BATCH) -> tuple[int, int]:
        """Build up to ``limit`` stale ids above id ``after`` that no other process is building: how many
        were built, and the cursor for the next batch (the last id built; ``after`` if none was)."""
        with self.db.transaction() as c:
            ids = list(c.execute(_CLAIM_STALE, {"after": after, "limit": limit}).scalars())
            return (self._build_many(c, ids), ids[-1]) if ids else (0, after)

    def build_stale(self) -> int:
        """Build every stale id, batch by batch; several processes may run this at once, each taking the
        batches that the others have not (PostgreSQL). How many ids this process built."""
        count, after = 0, 0
        while True:
            built, cursor = self.build_stale_batch(after)
            count += built
            if cursor != after:
                after = cursor
            elif after:
                after = 0  # once more from the start: ids skipped while others held them
            elif self.any_stale():
                time.sleep(STALE_WAIT_SECONDS)  # the last ones are being built by other processes
            else:
                return count

    def forget_all(self) -> int:
        """Mark every id's documents stale (they may be lost or carry another base URL): they are built
        again in the background, or on their first read (``services.catchup``). One statement, whatever the
        number of ids (``DocumentEpoch``). The number of ids."""
        self.storage.mark_documents_stale(True)  # first: nginx must not serve them from now on
        with self.db.transaction() as c:
            c.execute(_NEXT_EPOCH)
            return int(c.execute(_IDS).scalar_one())

    def stale(self) -> list[str]:
        """Ids whose documents lag behind their last change (a crash between commit and build, a build
        that failed); not those ``forget_all`` marked, which ``services.catchup`` builds while serving."""
        with self.db.reading() as s:
            return list(
                s.scalars(
                    select(REGS.c.id_lower).where(
                        REGS.c.built_revision < REGS.c.revision, REGS.c.built_epoch >= EPOCH
                    )
                )
            )

    def rebuild_all(self, alongside: Callable[[], None] | None = None) -> int:
        """Rewrite every id's documents and search entries where they differ from what they should be (a
        document that differs only by its commit stays as stored), REBUILD_BATCH ids a transaction (their
        rows locked, as ``build`` locks one): a few queries a batch instead of a few an id. Every id is marked
        stale first, so that ``alongside`` (which starts other processes running ``build_stale``) can
        share the work, and an interrupted rebuild is finished by the server (``services.catchup``).
        The number of ids."""
        count = self.forget_all()
        if alongside is not None:
            alongside()
        self.build_stale()
        self.storage.mark_documents_stale(False)
        self.record_base()
        return count

    def record_base(self) -> None:
        """Note the base URL the documents are written with (``follow_base``)."""
        self.storage.put_bytes(BASE_MARKER, self.base or BASE.encode(), "text/plain")

    def _build_many(self, c: Connection, reg_ids: list[int]) -> int:
        regs = c.execute(_LOCK_MANY, {"rids": reg_ids}).all()  # with the epoch, as ``locked_registration``
        found = [r.id for r in regs]
        rows: dict[int, list[_Version]] = {}
        listed: dict[int, list[Listed]] = {}  # what search reads of them: not read again
        for row in c.execute(_VERSIONS_OF_MANY, {"rids": found}).all():  # fetchall: a fetch a row costs
            version = _Version._make(row)
            rows.setdefault(version.registration_id, []).append(version)
            if version.listed:
                listed.setdefault(version.registration_id, []).append(
                    Listed(
                        version.id,
                        version.registration_id,
                        version.version,
                        version.is_prerelease,
                        version.is_semver2,
                    )
                )
        index_ids(c, found, keep_unchanged=True, listed=listed)
        owners: dict[int, set[int]] = {}
        for reg_id, account_id in c.execute(_OWNERS_OF_MANY, {"rids": found}):
            owners.setdefault(reg_id, set()).add(account_id)
        held = reservations(c)
        commit = self._commit()  # one for the batch, which commits as one
        # Written by this thread as they are built: writer threads would spend more on passing the GIL back
        # and forth (each write is a few system calls) than they would save, now that a rewrite neither
        # creates nor removes a file (``FileSystemStorage``); processes share the CPU instead. All are
        # written before the batch commits (or none commits).
        for reg in regs:
            holders = reserving_owners(reg.package_id, held) if held else frozenset()
            verified = not holders.isdisjoint(owners.get(reg.id, set()))
            docs = self._documents(reg.id_lower, reg.package_id, rows.get(reg.id, []), verified, commit)
            self._store(reg.id_lower, docs, True, keep_unchanged=True)
        c.execute(_BUILT_MANY, {"rids": found, "epoch": regs[0].epoch if regs else 0})
        return len(found)

    def follow_base(self) -> int | None:
        """Mark every id's documents stale if they were written with another base URL than the settings
        give now (or by a nugat that kept no record of it): ``services.catchup`` rewrites them while the
        server serves. The number of ids, or None if none had to be."""
        if self.storage.get_bytes(BASE_MARKER) == (self.base or BASE.encode()):
            return None
        count = self.forget_all()  # before the marker: a crash between the two only redoes this
        self.record_base()
        return count
