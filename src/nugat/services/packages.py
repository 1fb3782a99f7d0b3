"""Push, unlist and relist: the write side of the feed.

A push is all or nothing. The version row is inserted first (its unique constraint decides which of
two concurrent pushes of one version wins, before either writes a byte to storage), then the blobs are
written, then the transaction commits. A crash between blob write and commit leaves a note in
``pending_uploads`` (written before the blob), which ``recover`` uses to delete the orphan at start.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, insert, select, text, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from nugat import authz, confusables, faults, nuspec
from nugat.clock import utcnow
from nugat.db import Database
from nugat.db.models import PackageOwner, PackageRegistration, PackageVersion, PendingUpload, table
from nugat.feed import layout
from nugat.keys import KeyGrant
from nugat.prefixes import reservation_of, reserving_owners
from nugat.services import Conflict, InsufficientStorage, NotFound, ServiceError, Unavailable
from nugat.services.accounts import acts_for, count_push, push_count_params, push_limit_reached, touch_key
from nugat.services.actors import By, actor_id, resolve
from nugat.services.audit import record, record_key_failure
from nugat.services.materialize import EPOCH, Materializer, PushedVersion, Registration, locked_registration
from nugat.services.readers import PRIVATE_REGISTRATIONS
from nugat.services.reservations import mark_changed, owner_ids, reservations
from nugat.services.throttle import COUNT_POSTGRESQL
from nugat.storage import Storage, StorageError
from nugat.storage.base import StorageFull
from nugat.versions import InvalidVersion, parse_version

log = logging.getLogger("nugat.packages")

REGS = table(PackageRegistration)
OWNERS = table(PackageOwner)
VERSIONS = table(PackageVersion)
NOTES = table(PendingUpload)
# Statements of every push, built once (building one costs more than running it on SQLite).
# A new id: nothing inserted when another push has just created it (it is then pushed to instead).
# Its documents are written in the push's transaction: current under the epoch of now (``EPOCH``).
_NEW_REGISTRATION = (
    sqlite.insert(REGS)
    .values(built_epoch=EPOCH)
    .on_conflict_do_nothing(index_elements=[REGS.c.id_lower])
    .returning(REGS.c.id)
)
_NEW_OWNER = insert(OWNERS)
# PostgreSQL: the new id and its owner in one statement (nothing inserted when the id was just made).
_REG_VALUES = (
    "package_id", "id_lower", "revision", "built_revision", "total_downloads", "created_at", "skeleton",
    "trusted_only",
)  # fmt: skip
_NEW_REG_CTE = (
    postgresql.insert(REGS)
    .values({name: bindparam(name, type_=REGS.c[name].type) for name in _REG_VALUES} | {"built_epoch": EPOCH})
    .on_conflict_do_nothing(index_elements=[REGS.c.id_lower])
    .returning(REGS.c.id)
    .cte("reg")
)
_NEW_OWNED_REGISTRATION = select(_NEW_REG_CTE.c.id).add_cte(
    insert(OWNERS)
    .from_select(
        ["registration_id", "account_id"],
        select(_NEW_REG_CTE.c.id, bindparam("account_id", type_=OWNERS.c.account_id.type)),
    )
    .cte("owner")
)
_NEW_VERSION = insert(VERSIONS).returning(VERSIONS.c.id)
_NEW_NOTE = insert(NOTES).returning(NOTES.c.id)
# PostgreSQL: the note and the push's count in one statement, committed alone (one trip to the server
# instead of four: BEGIN, two statements, COMMIT).
_NOTED = insert(NOTES).values(key=bindparam("key"), created_at=bindparam("created_at")).returning(NOTES.c.id)
_NOTED_CTE, _COUNTED_CTE = _NOTED.cte("noted"), COUNT_POSTGRESQL.cte("counted")
_NEW_NOTE_COUNTED = select(_NOTED_CTE.c.id, _COUNTED_CTE.c.count).select_from(
    _NOTED_CTE.join(_COUNTED_CTE, true())
)
_TAKE_NOTE = delete(NOTES).where(NOTES.c.id == bindparam("note"))

STALE_UPLOAD_SECONDS = 6 * 3600  # a multipart upload begun that long ago is no live push's (``recover``)
ABANDONED_NOTE = timedelta(minutes=10)  # a note no live push holds after that long (``undo_abandoned``)
EMBEDDED_FILE_LIMIT = 10 << 20  # readme and license files served from a package
TEXT_TYPE = "text/plain; charset=utf-8"


class Refused(ServiceError):
    """A key refused by ``authz`` (403, or 409 for a reserved prefix), audited as a failed use of the key."""


@dataclass(frozen=True)
class PushResult:
    package_id: str
    version: str
    created_package: bool


def _sha512(path: Path) -> str:
    digest = hashlib.sha512()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def _search_text(meta: nuspec.PackageMetadata) -> str:
    parts = [meta.id, meta.title or "", " ".join(meta.tags), meta.description, " ".join(meta.authors)]
    return "\n".join(parts).lower()


def _metadata_json(meta: nuspec.PackageMetadata) -> dict[str, Any]:
    return {
        k: v
        for k, v in asdict(meta).items()
        if not k.startswith("_") and k not in ("id", "version", "nuspec", "nuspec_name")
    }


class Packages:
    @contextmanager
    def _audited(
        self, by: KeyGrant | By, address: str | None, operation: str, package_id: str, version: str
    ) -> Iterator[None]:
        """Record a key ``authz`` refused (``Refused``) as a failed use of the key, then let the refusal go
        on (outside the refused transaction: the record must stay)."""
        try:
            yield
        except Refused as exc:
            if isinstance(by, KeyGrant):
                record_key_failure(self.db, by.key_id, address, exc.message, package_id=package_id,
                                   version=version, operation=operation)  # fmt: skip
            raise

    def __init__(
        self,
        db: Database,
        storage: Storage,
        materializer: Materializer,
        push_limit: int | None = None,
        on_new_id: Callable[[], None] | None = None,
        screen: Callable[[Path, KeyGrant, str | None], None] | None = None,
    ) -> None:
        self.db = db
        self.storage = storage
        self.materializer = materializer
        self.push_limit = push_limit  # pushes per key per hour (None: no limit)
        # A new id may belong to a private organization: the read gate of this process learns it at once
        # (``services.readers``; other processes within their cache's second).
        self.on_new_id = on_new_id
        # A read of the whole content of a package whose headers and nuspec passed (``Leaks.check_package``:
        # a corrupt entry or a valid API key inside refuses it), told who pushed it and from where.
        self.screen = screen

    def push(self, upload: Path, grant: KeyGrant, address: str | None = None) -> PushResult:
        """Store a package: its version row, blobs and the id's documents land in one transaction."""
        try:
            meta = nuspec.read_package(upload)
        except nuspec.InvalidPackage as exc:
            raise ServiceError(str(exc)) from None
        if self.screen is not None:
            self.screen(upload, grant, address)
        id_lower = meta.id.lower()
        version_lower = meta.version.normalized.lower()
        blob_keys = [layout.nupkg(id_lower, version_lower), layout.nuspec(id_lower, version_lower)]
        extras = self._embedded_files(upload, meta, id_lower, version_lower)
        blobs: list[tuple[str, bytes | Path, str]] = [
            (blob_keys[0], upload, "application/octet-stream"),
            (blob_keys[1], meta.nuspec, "application/octet-stream"),  # never a page (see fileheaders)
        ]
        blobs += extras
        # One note covers the version's folder: every blob of a push is stored under it.
        note = self._note_pending(blob_keys[0], grant.key_id)
        committed = documents = False
        written: list[str] = []
        bounds = None
        try:
            with (
                self._audited(grant, address, "push", meta.id, meta.version.normalized),
                self.db.transaction() as s,
            ):
                lock_version_files(s, blob_keys[0])  # recovery leaves this version's files alone meanwhile
                self._take_note(s, note)  # deleted with the commit: the push lands, or the note stays
                reg, created, added, verified = self._insert_version(s, meta, grant, upload, address)
                faults.pause("in-transaction")
                written = [key for key, _, _ in blobs]  # some may be stored when it fails
                # The upload is a temp file of ours. The blobs are flushed to disk while the documents are
                # written, and before the version that points at them commits.
                flushed = self.storage.put_many_syncing(blobs, move=True)
                faults.pause("after-blob-write")
                documents = True  # some may be written when it fails
                bounds = self.materializer.build_pushed(
                    s, reg, added, created=created, verified=verified, owner_name=grant.owner_name
                )
                flushed()
                faults.pause("after-documents")
            committed = True
        except StorageError as exc:
            log.error("storage failed during push of %s %s: %s", meta.id, meta.version.normalized, exc)
            if isinstance(exc, StorageFull):
                raise InsufficientStorage("The package storage is full; nothing was stored") from None
            raise Unavailable("The package storage is unavailable; nothing was stored, retry later") from None
        except OperationalError as exc:
            log.error("database failed during push of %s: %s", meta.id, exc.orig)
            raise Unavailable("The database is unavailable; nothing was stored, retry later") from None
        finally:
            if not committed:
                self._undo(id_lower, note, written, documents)
        faults.pause("after-commit")
        if bounds is not None:
            self.materializer.bounds.keep(*bounds)
        if created and self.on_new_id is not None:
            self.on_new_id()
        return PushResult(meta.id, meta.version.normalized, created)

    def _undo(self, id_lower: str, note: int, written: list[str], documents: bool) -> None:
        """After a failed push: remove its blobs and rewrite the id's documents from the committed state.

        What cannot be undone now keeps its notes, and ``recover`` finishes it.
        """
        left = False
        for key in written:
            try:
                self.storage.delete(key)
            except StorageError:
                log.warning("could not remove %s after a failed push; recovery will", key)
                left = True
        if documents:
            try:
                self.materializer.build(id_lower)
            except (StorageError, OperationalError) as exc:
                log.warning("could not restore the documents of %s after a failed push: %s", id_lower, exc)
                left = True
        self._clear_pending(note, keep=left)

    def _embedded_files(
        self, upload: Path, meta: nuspec.PackageMetadata, id_lower: str, version_lower: str
    ) -> list[tuple[str, bytes, str]]:
        """The readme, icon and license blobs with the media type each is stored under (an icon must be
        a PNG or JPEG image: see ``fileheaders``)."""
        files = []
        for name, entry in (
            ("readme", meta.readme_file),
            ("icon", meta.icon_file),
            ("license", meta.license_file),
        ):
            if entry:
                limit = nuspec.MAX_ICON_BYTES if name == "icon" else EMBEDDED_FILE_LIMIT
                try:
                    data = nuspec.read_entry(upload, entry, limit)
                except nuspec.InvalidPackage as exc:
                    raise ServiceError(f"The nuspec names {name} file {entry!r}, but: {exc}") from None
                try:
                    media_type = nuspec.check_icon(entry, data) if name == "icon" else TEXT_TYPE
                except nuspec.InvalidPackage as exc:
                    raise ServiceError(str(exc)) from None
                files.append((f"{layout.FLAT}/{id_lower}/{version_lower}/{name}", data, media_type))
        return files

    def _insert_version(
        self, c: Connection, meta: nuspec.PackageMetadata, grant: KeyGrant, upload: Path, address: str | None
    ) -> tuple[Registration, bool, PushedVersion, bool]:
        """Decide the push and insert its version row (SQL statements, not ORM objects: this is hot).

        Returns the id's row as locked (before the push), whether the push created it, the version as
        inserted, and whether the id is verified (``reservations.is_verified``, from what was read here).
        """
        id_lower = meta.id.lower()
        reg = locked_registration(c, id_lower)
        if reg is None:
            # New ids with one skeleton are created one at a time, so that two look-alikes pushed at the
            # same moment cannot both pass the check below; then read again what a push we waited for made.
            lock_skeleton(c, confusables.skeleton(meta.id))
            reg = locked_registration(c, id_lower)
        owners = owner_ids(c, reg.id) if reg else frozenset({grant.owner_id})
        held = None if reg else reservations(c)
        decision = authz.can_push(
            grant,
            meta.id,
            exists=reg is not None,
            owner_ids=owners if reg else frozenset(),
            actor_is_member=acts_for(c, grant),
            reservation=None if held is None else reservation_of(meta.id, held),
            looks_like=None if reg else _lookalike(c, meta.id, grant),
            trusted_only=reg is not None and reg.trusted_only,
        )
        authz.require(decision, Refused)
        created = reg is None
        if reg is None:
            values = {
                "package_id": meta.id,
                "id_lower": id_lower,
                # Its documents are written in this transaction: both revisions start current.
                "revision": 1,
                "built_revision": 1,
                "total_downloads": 0,
                "created_at": utcnow(),
                "skeleton": confusables.skeleton(meta.id),
                "trusted_only": False,
            }
            if c.dialect.name == "postgresql":
                reg_id = c.execute(_NEW_OWNED_REGISTRATION, values | {"account_id": grant.owner_id}).scalar()
            else:
                reg_id = c.execute(_NEW_REGISTRATION, values).scalar()
                if reg_id is not None:
                    c.execute(_NEW_OWNER, {"registration_id": reg_id, "account_id": grant.owner_id})
            if reg_id is None:
                # Another push created the id at the same moment (and has committed): push to it instead,
                # deciding again as for an existing id. Fifty CI jobs pushing a new id's versions all land.
                return self._insert_version(c, meta, grant, upload, address)
            reg = Registration(reg_id, id_lower, meta.id, revision=1, built_revision=1)
        version = meta.version
        added = PushedVersion(
            0,  # the row's id, once inserted
            version.normalized,
            version.normalized.lower(),
            version.full,
            version.is_prerelease,
            meta.is_semver2,
            True,
            utcnow(),
            _metadata_json(meta),
            _search_text(meta),
        )
        values = {
            "registration_id": reg.id,
            "package_id": meta.id,
            "original_version": version.original,
            "pushed_by_key": grant.key_id,
            "size": upload.stat().st_size,
            "sha512": _sha512(upload),
            "downloads": 0,
            **added._asdict(),
        }
        del values["id"]
        try:
            added = added._replace(id=c.execute(_NEW_VERSION, values).scalar_one())
        except IntegrityError:  # the unique (id, version): it exists, or a concurrent push just made it
            raise Conflict(
                f"{reg.package_id} {version.normalized} already exists and cannot be modified"
            ) from None
        if held is None:
            held = reservations(c)
        holders = reserving_owners(reg.package_id, held) if held else frozenset()
        verified = not holders.isdisjoint(owners)
        record(
            c,
            "package.push",
            actor_id=grant.user_id,
            account_id=grant.owner_id,
            package_id=reg.package_id,
            version=version.normalized,
            key_id=grant.key_id,
            address=address,
            credential=grant.credential,
        )
        touch_key(c, grant.key_id, grant.last_used_at)
        return reg, created, added, verified

    def set_listed(
        self, package_id: str, version_text: str, listed: bool, by: KeyGrant | By, address: str | None = None
    ) -> None:
        """Unlist (``nuget delete``, or the pages) or relist a version; both are idempotent. ``by``: the key
        on the protocol, or the signed-in user on the pages; ``authz.can_unlist`` decides for either, then
        one update."""
        operation = "relist" if listed else "unlist"
        with self._audited(by, address, operation, package_id, version_text), self.db.session() as s:
            reg, row, owners = self._locked_version(s, package_id, version_text)
            # Who may change the id is decided before whether the version exists, and told with the id as
            # given: to one who may not, the answer is the same for every version and every spelling (a
            # private id's versions and casing are not theirs to learn).
            if isinstance(by, KeyGrant):
                member = acts_for(s, by)
                authz.require(
                    authz.can_unlist(by, package_id, owner_ids=owners, actor_is_member=member), Refused
                )
                touch_key(s, by.key_id)
                acted: tuple[int | None, int | None, str | None] = by.user_id, by.owner_id, by.key_id
            else:
                actor = resolve(s, by)
                authz.require(authz.can_unlist(actor, package_id, owner_ids=owners))
                acted = actor_id(actor), authz.owner_acted_for(actor, owners), None
            if row is None:
                raise NotFound(f"{package_id} {parse_version(version_text).normalized} does not exist")
            self._change_listed(s, reg, row, listed, acted, address)
        self.materializer.build_committed([reg.id_lower])

    def _locked_version(
        self, s: Session, package_id: str, version_text: str
    ) -> tuple[PackageRegistration, PackageVersion | None, frozenset[int]]:
        """The id (locked for the change), the version (None: no such version) and the owners' account
        ids; NotFound when there is no such id."""
        try:
            version = parse_version(version_text)
        except InvalidVersion:
            raise NotFound(f"{package_id} {version_text} does not exist") from None
        reg = s.scalar(
            select(PackageRegistration)
            .where(PackageRegistration.id_lower == package_id.lower())
            .with_for_update()
        )
        row = (
            s.scalar(
                select(PackageVersion).where(
                    PackageVersion.registration_id == reg.id,
                    PackageVersion.version_lower == version.normalized.lower(),
                )
            )
            if reg
            else None
        )
        if reg is None:
            raise NotFound(f"{package_id} {version.normalized} does not exist")
        owner_ids = frozenset(
            s.scalars(select(PackageOwner.account_id).where(PackageOwner.registration_id == reg.id))
        )
        return reg, row, owner_ids

    def _change_listed(
        self,
        s: Session,
        reg: PackageRegistration,
        row: PackageVersion,
        listed: bool,
        acted: tuple[int | None, int | None, str | None],
        address: str | None,
    ) -> None:
        """Set the listing and audit it (``acted``: the actor's id, the owner it acted for, the key)."""
        actor_id, account_id, key_id = acted
        if row.listed != listed:
            row.listed = listed
            mark_changed([reg])  # and search follows in this transaction
        record(
            s,
            "package.relist" if listed else "package.unlist",
            actor_id=actor_id,
            account_id=account_id,
            package_id=reg.package_id,
            version=row.version,
            key_id=key_id,
            address=address,
        )

    # Crash recovery -------------------------------------------------------------------------------

    @staticmethod
    def _take_note(c: Connection, note: int) -> None:
        """Delete the push's note in its transaction, which keeps the row locked until it commits or dies:
        recovery skips the notes of live pushes."""
        if c.execute(_TAKE_NOTE, {"note": note}).rowcount != 1:
            # recovery took it between its insert and now
            raise Unavailable("The push was interrupted by a server restart; nothing was stored, push again")

    def _note_pending(self, key: str, key_id: str) -> int:
        """Note the blob a push is about to write (for ``recover``), and count the push for its key."""
        try:
            try:
                return self._insert_note(key, key_id)
            except IntegrityError:  # another process made the key's counter row first: it exists now
                return self._insert_note(key, key_id)
        except OperationalError:
            raise Unavailable("The database is unavailable; nothing was stored, retry later") from None

    def _insert_note(self, key: str, key_id: str) -> int:
        values = {"key": key, "created_at": utcnow()}
        if not self.db.url.startswith("sqlite"):  # PostgreSQL
            with self.db.statements() as c:
                if self.push_limit is None:
                    return int(c.execute(_NEW_NOTE, values).scalar_one())
                note, count = c.execute(_NEW_NOTE_COUNTED, values | push_count_params(key_id)).one()
                if count > self.push_limit:  # refused: its note goes (its count stays, past the limit)
                    c.execute(_TAKE_NOTE, {"note": note})
                    raise push_limit_reached(c, key_id, self.push_limit)
                return int(note)
        with self.db.transaction() as c:
            if self.push_limit is not None:
                count_push(c, key_id, self.push_limit)
            return int(c.execute(_NEW_NOTE, values).scalar_one())

    def _clear_pending(self, note: int, *, keep: bool) -> None:
        if keep:
            return  # a blob may be left behind: recovery will check and remove it
        try:
            with self.db.transaction() as c:
                c.execute(_TAKE_NOTE, {"note": note})
        except OperationalError:
            log.warning("could not clear the pending upload note; recovery will")

    def _undo_notes(self, older_than: timedelta | None = None) -> tuple[int, set[str]]:
        """Remove the files of the unlocked notes (``older_than``: only of those noted that long ago) whose
        version never committed: how many files, and the ids whose documents to rewrite."""
        removed = 0
        touched: set[str] = set()
        query = select(PendingUpload).with_for_update(skip_locked=True)
        if older_than is not None:
            query = query.where(PendingUpload.created_at < utcnow() - older_than)
        with self.db.session() as s:
            notes = list(s.scalars(query))
            for note in notes:
                parts = note.key.split("/")
                id_lower, version_lower = parts[2], parts[3]
                lock_version_files(s, note.key)  # waits for a live push of the version to end
                committed = s.scalar(
                    select(PackageVersion.id)
                    .join(PackageRegistration)
                    .where(
                        PackageRegistration.id_lower == id_lower,
                        PackageVersion.version_lower == version_lower,
                    )
                )
                if committed is None:
                    touched.add(id_lower)  # its documents may have been written before the crash
                    for key in list(self.storage.list_keys(f"{layout.FLAT}/{id_lower}/{version_lower}")):
                        self.storage.delete(key)
                        removed += 1
                s.delete(note)
        return removed, touched

    def undo_abandoned(self) -> int:
        """While serving (PostgreSQL): undo what pushes that died long ago left (a process killed between
        its files and its commit), as a start would, without waiting for one: their files would otherwise
        be served to whoever asks for that version. Only notes older than ``ABANDONED_NOTE``: a live push
        holds its note locked, but takes it a moment after noting it. How many files were removed."""
        removed, touched = self._undo_notes(ABANDONED_NOTE)
        self.materializer.build_committed(sorted(touched))
        return removed

    def recover(self) -> tuple[int, int]:
        """Undo the pushes that never committed, and rebuild stale documents. Returns the counts: files
        removed, ids rebuilt or (after a crash of the machine) marked for a rebuild while serving.

        Safe while other processes push: the notes of a live push are locked by its transaction, and
        skipped here; and a version's files are removed only under the lock a push of that version holds
        from its note to its commit (``lock_version_files``), so that the note a push cut short left
        (a database outage: 503) never takes the files of a later push of the same version, live on
        another host, or just committed. (SQLite has no row locks, but there recovery runs before the
        server starts.) Safe while other processes start: two that both find the writes lost both mark
        every id (the second mark only costs builds again).
        """
        removed, touched = self._undo_notes()
        with contextlib.suppress(StorageError):  # the bucket's lifecycle rule does it too (docs/deploy.md)
            if aborted := self.storage.abort_stale_uploads(STALE_UPLOAD_SECONDS):
                log.warning("aborted %d multipart uploads that killed pushes left in the storage", aborted)
        forgotten = 0
        if self.storage.writes_lost():
            # Marked stale, then the marker dropped (a crash between the two only marks them again):
            # the server serves at once and rebuilds them meanwhile (``services.catchup``).
            forgotten = self.materializer.forget_all()
            self.storage.settle()
            log.warning(
                "the machine stopped with documents unsynced: %d ids to rebuild while serving",
                forgotten,
            )
        stale = sorted(touched.union(self.materializer.stale()))
        self.materializer.build_committed(stale)
        return removed, len(stale) + forgotten


_LOOKALIKES = (
    select(REGS.c.package_id, REGS.c.id, REGS.c.id.in_(PRIVATE_REGISTRATIONS).label("private"))
    .where(
        REGS.c.skeleton == bindparam("skeleton"),
        ~exists().where(OWNERS.c.registration_id == REGS.c.id, OWNERS.c.account_id == bindparam("owner")),
    )
    .order_by(REGS.c.id)
    .limit(1)
)


def lock_version_files(c: Connection | Session, key: str) -> None:
    """Hold, until the transaction ends, the files of the version whose package blob is ``key``: a push
    from its note on, ``recover`` before it removes what a push left. PostgreSQL: an advisory lock on the
    key's hash (another seed than ``lock_skeleton``'s). SQLite: writers are serialized already."""
    dialect = c.get_bind().dialect if isinstance(c, Session) else c.dialect
    if dialect.name == "postgresql":
        c.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 17))"), {"k": key})


def lock_skeleton(c: Connection, skeleton: str) -> None:
    """Hold, until the transaction ends, the right to create an id with this skeleton.

    PostgreSQL: a transaction-scoped advisory lock on the skeleton's hash (a collision only makes two
    unrelated new ids wait for each other). SQLite: writers are serialized already (BEGIN IMMEDIATE).
    """
    if c.dialect.name == "postgresql":
        c.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:s, 16))"), {"s": skeleton})


def _lookalike(c: Connection, package_id: str, grant: KeyGrant) -> str | None:
    """An existing id that looks like ``package_id`` and that the key's owner does not own, if any: one
    lookup of the indexed skeleton column, whatever the number of ids. ``""`` for an id private to others
    (``authz.can_push`` does not name it: to them it does not exist)."""
    found = c.execute(
        _LOOKALIKES, {"skeleton": confusables.skeleton(package_id), "owner": grant.owner_id}
    ).first()
    if found is None:
        return None
    if found.private and not (authz.reads_for(grant) or frozenset()) & owner_ids(c, found.id):
        return ""
    return str(found.package_id)
