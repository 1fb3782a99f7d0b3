"""Writes an id's V3 read documents to storage whenever the id changes (push, unlist, relist).

Restore reads therefore never query the database: they are served from these stored documents, which
nginx or a CDN can serve as well. Runs under a lock on the registration row, so concurrent changes to
one id are written one after the other, each from the latest committed state.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, bindparam, select, update

from nugat.clock import isoformat, utcnow
from nugat.db import Database
from nugat.db.models import PackageRegistration, PackageVersion, table
from nugat.protocol import BASE
from nugat.protocol.v3 import flatcontainer, registration, urls
from nugat.services.prefixes import is_verified
from nugat.services.search_index import index_ids
from nugat.storage import Storage

JSON_TYPE = "application/json"
# The base URL the stored documents were written with (the placeholder when they follow each request):
# a start under other settings (NUGAT_PUBLIC_URL, NUGAT_CONTENT_URL) rewrites them all (``follow_base``).
BASE_MARKER = "documents-base"


REGS = table(PackageRegistration)
VERSIONS = table(PackageVersion)
# Built once: they run in every push (building a statement costs more than running it on SQLite).
_REGISTRATION = (
    select(REGS.c.id, REGS.c.package_id, REGS.c.trusted_only)
    .where(REGS.c.id_lower == bindparam("id_lower"))
    .with_for_update()
)
_VERSIONS_OF = select(VERSIONS).where(VERSIONS.c.registration_id == bindparam("rid"))
_LEAF_OF = (
    select(VERSIONS, REGS.c.package_id.label("registration_package_id"))
    .join(REGS, REGS.c.id == VERSIONS.c.registration_id)
    .where(REGS.c.id_lower == bindparam("id_lower"), VERSIONS.c.version_lower == bindparam("version_lower"))
)
# An added version's build reads every version's bounds, and the details only of the pages it rewrites.
_BOUNDS_OF = select(VERSIONS.c.version, VERSIONS.c.version_lower, VERSIONS.c.is_semver2).where(
    VERSIONS.c.registration_id == bindparam("rid")
)
_DETAILS_OF = select(VERSIONS).where(
    VERSIONS.c.registration_id == bindparam("rid"),
    VERSIONS.c.version_lower.in_(bindparam("wanted", expanding=True)),
)
_REVISIONS = select(REGS.c.revision, REGS.c.built_revision).where(REGS.c.id == bindparam("rid"))
_BUILT = update(REGS).where(REGS.c.id == bindparam("rid")).values(built_revision=REGS.c.revision)


class Registration(NamedTuple):
    """The registration row a build needs (the caller holds it locked)."""

    id: int
    id_lower: str
    package_id: str
    trusted_only: bool = False  # only keys minted by trusted publishing may push it


def locked_registration(c: Connection, id_lower: str) -> Registration | None:
    """The id's registration row, locked until the transaction ends (changes to one id queue on it)."""
    found = c.execute(_REGISTRATION, {"id_lower": id_lower}).first()
    return (
        None
        if found is None
        else Registration(found.id, id_lower, found.package_id, bool(found.trusted_only))
    )


def dump(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


class Materializer:
    def __init__(self, db: Database, storage: Storage, documents_url: str | None = None) -> None:
        self.db = db
        self.storage = storage
        # With a fixed URL (the content origin's, else the public one) the documents are stored final,
        # servable by nginx or a CDN as they are; without one they hold BASE, replaced per request.
        self.base = documents_url.encode() if documents_url else None

    def build(self, id_lower: str) -> None:
        """Write the documents of one id from the committed state (or remove them, if it is gone)."""
        with self.db.transaction() as c:
            reg = locked_registration(c, id_lower)
            if reg is None:
                self._remove(id_lower, keep=set())
                return
            self.build_in(c, reg)

    def build_in(self, c: Connection, reg: Registration, *, added: str | None = None) -> None:
        """Write ``reg``'s documents from the state of transaction ``c``, which holds its row locked.

        ``added``: the one version (lowercased) added since the last build, a push: when the documents
        were up to date before it, only what it changes is rewritten (``_build_added``).
        """
        index_ids(c, [reg.id])  # search follows in the same transaction
        if added is None or not self._build_added(c, reg, added):
            self._build_all(c, reg, remove_leftovers=added is None)
        c.execute(_BUILT, {"rid": reg.id})

    def _build_all(self, c: Connection, reg: Registration, *, remove_leftovers: bool = True) -> None:
        id_lower = reg.id_lower
        rows = c.execute(_VERSIONS_OF, {"rid": reg.id}).all()
        versions = cast(list[registration.VersionRecord], rows)
        commit = self._commit()
        wanted: dict[str, Any] = {}  # key: document (serialized only if written)
        if versions:
            wanted[urls.flat_index(id_lower)] = flatcontainer.version_list(versions)
        verified = is_verified(c, reg.id, reg.package_id)
        for hive in urls.HIVES:
            wanted.update(registration.build(hive, reg.package_id, versions, commit, verified=verified))
        self._write(wanted)
        # Documents no longer wanted: after a push (``remove_leftovers`` False) only pages can be, and there
        # are none below INLINE_BELOW versions, before or after. (A full build also removes the leaves that
        # nugat stored before it answered them from the database.)
        if remove_leftovers or any("/page/" in key for key in wanted):
            self._remove(id_lower, keep=wanted.keys())

    def _build_added(self, c: Connection, reg: Registration, added: str) -> bool:
        """Rewrite only what adding version ``added`` changes: the flat index, each hive's index, and the
        pages from the one it lands in (the last one, for a version above the others) to the end; pages
        whose bounds moved are removed. Returns False, doing nothing, when a full build is needed: the
        documents lagged before this change, or a hive's index inlines its pages (fewer than
        INLINE_BELOW versions, before or after)."""
        revision, built = c.execute(_REVISIONS, {"rid": reg.id}).one()
        if built != revision - 1:
            return False
        bounds = c.execute(_BOUNDS_OF, {"rid": reg.id}).all()
        if not any(b.version_lower == added for b in bounds):
            return False
        commit = self._commit()
        wanted: dict[str, Any] = {urls.flat_index(reg.id_lower): flatcontainer.version_list(bounds)}
        rewrite: dict[str, list[list[str]]] = {}  # hive: the versions of each page it rewrites
        gone: list[str] = []
        for hive in urls.HIVES:
            after = registration.in_hive(hive, bounds)
            before = [b for b in after if b.version_lower != added]
            if len(before) == len(after):
                continue  # a SemVer 2.0.0 version: the SemVer 1 hive does not change
            if len(before) < registration.INLINE_BELOW:
                return False
            old, new = registration.pages_of(before), registration.pages_of(after)
            first = next(
                (n for n, (a, b) in enumerate(zip(old, new, strict=False)) if list(a) != list(b)), len(old)
            )
            rewrite[hive] = [[v.version_lower for v in chunk] for chunk in new[first:]]
            wanted[urls.registration_index(hive, reg.id_lower)] = registration.paged_index(
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
        verified = is_verified(c, reg.id, reg.package_id)
        for hive, pages in rewrite.items():
            for page in pages:
                chunk = cast(list[registration.VersionRecord], [details[v] for v in page])
                key = registration.page_key(hive, reg.id_lower, chunk)
                wanted[key] = registration.page_document(
                    hive, reg.package_id, chunk, commit, verified=verified
                )
        self._write(wanted)
        for key in gone:
            self.storage.delete(key)
        return True

    @staticmethod
    def _commit() -> dict[str, str]:
        return {"commitId": str(uuid.uuid4()), "commitTimeStamp": isoformat(utcnow())}

    def _write(self, wanted: dict[str, Any]) -> None:
        """Store documents, pages before the indexes that point at them (put_many keeps the order)."""
        changed: list[tuple[str, bytes | Path, str]] = []
        for key in sorted(wanted, key=lambda k: k.endswith("/index.json")):
            data = dump(wanted[key])
            changed.append(
                (key, data if self.base is None else data.replace(BASE.encode(), self.base), JSON_TYPE)
            )
        self.storage.put_many(changed, durable=False)

    def _remove(self, id_lower: str, keep: Collection[str]) -> None:
        for hive in urls.HIVES:
            for key in self.storage.list_keys(f"v3/{hive}/{id_lower}"):
                if key not in keep:
                    self.storage.delete(key)
        if urls.flat_index(id_lower) not in keep:
            self.storage.delete(urls.flat_index(id_lower))

    def leaf(self, hive: str, id_lower: str, version_lower: str) -> dict[str, Any] | None:
        """The registration leaf of a version in ``hive`` (``registration.leaf``), or None."""
        with self.db.read_transaction() as c:
            row = c.execute(_LEAF_OF, {"id_lower": id_lower, "version_lower": version_lower}).first()
        if row is None or (row.is_semver2 and not urls.HIVES[hive]):
            return None
        return registration.leaf(hive, row.registration_package_id, cast(registration.VersionRecord, row))

    def stale(self) -> list[str]:
        """Ids whose documents lag behind their last change (a crash between commit and build)."""
        with self.db.reading() as s:
            return list(
                s.scalars(
                    select(PackageRegistration.id_lower).where(
                        PackageRegistration.built_revision < PackageRegistration.revision
                    )
                )
            )

    def rebuild_all(self) -> int:
        with self.db.reading() as s:
            ids = list(s.scalars(select(PackageRegistration.id_lower)))
        for id_lower in ids:
            self.build(id_lower)
        self.storage.put_bytes(BASE_MARKER, self.base or BASE.encode(), "text/plain")
        return len(ids)

    def follow_base(self) -> int | None:
        """Rewrite every document if they were written with another base URL than the settings give now
        (or by a nugat that kept no record of it); the number of ids rewritten, or None if none had to be."""
        if self.storage.get_bytes(BASE_MARKER) == (self.base or BASE.encode()):
            return None
        return self.rebuild_all()
