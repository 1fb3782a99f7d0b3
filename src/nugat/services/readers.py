"""Who reads the feed, kept in memory for at most ``READ_CACHE_SECONDS``: the read path's facts.

Every read of a private feed (``NUGAT_READ_ACCESS=users``) or of a private organization's package is
decided from two facts: the presented key's row (its secret's HMAC, revocation, expiry, what it acts for)
and which ids private organizations own. Each is read from the database at most once a second per process
and key; the secret is checked against the kept HMAC at every request (microseconds). A revoked key, a
member removed or an organization made private is therefore seen by every process within that second, and
a restore in the steady state touches no database. While the database cannot be reached, the facts last
read stay in use (nothing can be revoked or made private meanwhile: those are writes to the same
database), so restores go on: the private ids (read at start) for as long as it lasts, since their
packages were readable before anyway; a key's facts for up to ``DATABASE_DOWN_GRACE_SECONDS``, since a
host cut off from the database would not hear of a revocation made through another. Past that, or for a
key never read, reads answer 503. ``authz.can_read`` decides; ``readable`` states the
same rule in SQL for search and the V2 queries, so counts and pages hold only what the reader may see.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Row, and_, event, false, not_, or_, select, true
from sqlalchemy.exc import SQLAlchemyError

from nugat import authz, keys
from nugat.authz import Reader
from nugat.clock import utcnow
from nugat.db import Database
from nugat.db.models import Account, Membership, PackageOwner, PackageRegistration, table
from nugat.keys import KeyGrant
from nugat.services import AuthError
from nugat.services.accounts import MALFORMED_KEY, Accounts, expired, unknown_key, wrong_secret
from nugat.services.throttle import Throttler

READ_CACHE_SECONDS = 1.0
DATABASE_DOWN_GRACE_SECONDS = 300.0  # how long facts read before the database went away stay in use
log = logging.getLogger("nugat.readers")
MAX_KEYS = 10_000  # keys kept at once, and unknown key ids apart (all dropped when full: a bound, not an LRU)
FAILED_READ_LIMIT = 30  # distinct refused read credentials per client address per window
FAILED_READ_WINDOW = timedelta(minutes=1)

_OWNERS, _ACCOUNTS, _REGS, _MEMBERS = (
    table(PackageOwner),
    table(Account),
    table(PackageRegistration),
    table(Membership),
)
PRIVATE_REGISTRATIONS = (
    select(_OWNERS.c.registration_id)
    .join(_ACCOUNTS, _ACCOUNTS.c.id == _OWNERS.c.account_id)
    .where(_ACCOUNTS.c.private_packages.is_(true()))
)


# Statements that change what a read key may read: its row (revoked, regenerated, edited, deleted), its
# owner's organizations, an account (disabled, made private) or who owns an id. Not a push's note of a
# key's use (``accounts.touch_key``), which changes nothing a read depends on.
_CHANGES_READERS = re.compile(
    r"\s*(?:UPDATE|DELETE\s+FROM|INSERT\s+INTO)\s+\"?(api_keys|memberships|accounts|package_owners)\b", re.I
)
_KEY_TOUCHED = re.compile(r"\s*UPDATE\s+api_keys\s+SET\s+last_used_at=\S+\s+WHERE\b", re.I)
_CHANGED = "nugat.readers_changed"


@dataclass(frozen=True)
class ReadView:
    """What one request may read: its reader (None: anonymous) on a public or a ``users`` site."""

    reader: Reader | None = None
    public_site: bool = True


ANONYMOUS = ReadView()


class ReadRefused(AuthError):
    """A feed read with a dead or wrong key: 401, so the NuGet client asks for the source's credentials."""


@dataclass(frozen=True)
class _KeyFacts:
    row: Row[Any] | None  # None: no such key
    owner_member_of: frozenset[int]  # the organizations of the key's owner, when it is a user
    at: float  # when they were read (monotonic)


T = TypeVar("T")


class _Fresh(Generic[T]):
    """One value read from the database at most every ``seconds`` (monotonic)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.value: T | None = None
        self.at = -1e18  # when it was last read, or last found unreadable

    def get(self) -> T | None:
        return self.value if time.monotonic() - self.at < self.seconds else None

    def put(self, value: T, at: float) -> T:
        self.value, self.at = value, at
        return value

    def keep(self, now: float, exc: SQLAlchemyError) -> T:
        """The database failed: the last value read, for another ``seconds``."""
        if self.value is None:
            raise exc
        self.at = now
        return self.value


class Readers:
    """The read path's in-memory facts (module docstring); the ``load_*`` methods read the database."""

    def __init__(
        self, db: Database, pepper: bytes, *, public_site: bool, seconds: float = READ_CACHE_SECONDS
    ) -> None:
        self.db = db
        self.pepper = pepper
        self.public_site = public_site
        self.seconds = seconds
        self.lock = threading.Lock()
        self.private = _Fresh[dict[str, frozenset[int]]](seconds)
        self.keys: dict[str, tuple[float, _KeyFacts]] = {}
        self.unknown: dict[str, float] = {}  # key ids found in no row: a flood of them evicts no real key
        self.verified: dict[str, tuple[float, KeyGrant]] = {}  # a key as presented: when its facts were read
        self.failures = FailedReads(Throttler(db))
        self._watch_changes()

    def _watch_changes(self) -> None:
        """Forget every key's facts (and the private ids) as soon as a transaction of this process that
        changed them has ended (the connection is back in the pool, after its commit): a key revoked, a
        member removed, an account disabled on this process's pages or API is refused from its next
        read, not a second later. Other processes see it within ``seconds``, as before."""

        def noted(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if _CHANGES_READERS.match(statement) and not _KEY_TOUCHED.match(statement):
                conn.info[_CHANGED] = True

        def rolled_back(conn: Any) -> None:
            if not conn.invalidated:
                conn.info.pop(_CHANGED, None)

        def returned(_dbapi_conn: Any, record: Any) -> None:
            if record.info.pop(_CHANGED, False):
                self.forget()

        event.listen(self.db.engine, "after_cursor_execute", noted)
        event.listen(self.db.engine, "rollback", rolled_back)
        event.listen(self.db.engine.pool, "checkin", returned)

    def forget(self) -> None:
        """Read every key's facts and the private ids again at their next read."""
        with self.lock:
            self.keys.clear()
            self.unknown.clear()
            self.verified.clear()
        self.forget_private_ids()

    # The private ids --------------------------------------------------------------------------------

    def private_ids(self) -> dict[str, frozenset[int]] | None:
        """Each id a private organization owns, with all its owners; None when it must be read again."""
        return self.private.get()

    def load_private_ids(self) -> dict[str, frozenset[int]]:
        at = time.monotonic()
        found: dict[str, set[int]] = {}
        try:
            with self.db.read_transaction() as c:
                rows = c.execute(
                    select(_REGS.c.id_lower, _OWNERS.c.account_id)
                    .join(_OWNERS, _OWNERS.c.registration_id == _REGS.c.id)
                    .where(_REGS.c.id.in_(PRIVATE_REGISTRATIONS))
                )
                for id_lower, account_id in rows:
                    found.setdefault(id_lower, set()).add(account_id)
        except SQLAlchemyError as exc:
            log.warning("private ids not read (%s): the last ones read stay in use", type(exc).__name__)
            return self.private.keep(at, exc)
        return self.private.put({k: frozenset(v) for k, v in found.items()}, at)

    def forget_private_ids(self) -> None:
        """Read the private ids again at the next read: this process changed them."""
        self.private.at = -1e18

    def private_owners(self, package_id: str) -> frozenset[int]:
        """The owners of ``package_id`` if it is private (read again when out of date), else empty."""
        known = self.private_ids()
        if known is None:
            known = self.load_private_ids()
        return known.get(package_id.lower(), frozenset())

    # Keys ---------------------------------------------------------------------------------------------

    def cached_key(self, key_id: str) -> _KeyFacts | None:
        now = time.monotonic()
        kept = self.keys.get(key_id)
        if kept is not None and now - kept[0] < self.seconds:
            return kept[1]
        missing_at = self.unknown.get(key_id)
        if missing_at is not None and now - missing_at < self.seconds:
            return _KeyFacts(None, frozenset(), missing_at)
        return None

    def load_key(self, key_id: str) -> _KeyFacts:
        at = time.monotonic()
        try:
            with self.db.read_transaction() as c:
                row = Accounts.key_row(c, key_id)
                user = row is not None and row.owner_kind == "user"
                orgs = _orgs_of(c, row.owner_id) if row is not None and user else frozenset()
        except SQLAlchemyError as exc:
            return self._keep_key(key_id, at, exc)
        facts = _KeyFacts(row, orgs, at)
        with self.lock:
            if row is None:
                if len(self.unknown) >= MAX_KEYS:
                    self.unknown.clear()
                self.unknown[key_id] = at
            else:
                if len(self.keys) >= MAX_KEYS:
                    self.keys.clear()
                self.keys[key_id] = (at, facts)
                self.unknown.pop(key_id, None)
        return facts

    def _keep_key(self, key_id: str, now: float, exc: SQLAlchemyError) -> _KeyFacts:
        """The database failed: the key's facts last read, for another ``seconds``, within the grace
        (kept under the time they were read, so the answers verified from them expire as before)."""
        kept = self.keys.get(key_id)
        if kept is None or now - kept[1].at > DATABASE_DOWN_GRACE_SECONDS:
            raise exc
        log.warning("key facts not read (%s): the last ones read stay in use", type(exc).__name__)
        with self.lock:
            self.keys[key_id] = (now, kept[1])
        return kept[1]

    def known_reader(self, presented: str) -> KeyGrant | None:
        """The reader ``presented`` was found to be within the last ``seconds`` (None: check it again):
        a restore sends the same key hundreds of times a second, and each check of it would give the
        same answer until the key's facts are read again."""
        kept = self.verified.get(presented)
        if kept is None or time.monotonic() - kept[0] >= self.seconds or kept[1].expires_at <= utcnow():
            return None  # an expiry is checked again at once (``key_reader``), not a second later
        return kept[1]

    def key_reader(
        self, parsed: keys.ParsedKey | None, facts: _KeyFacts | None, presented: str = ""
    ) -> KeyGrant:
        """The reader a presented key is, or ``ReadRefused`` saying why it is not one. ``presented``: the
        key as sent, remembered with the answer for as long as the key's facts are kept."""
        if parsed is None:
            raise ReadRefused(MALFORMED_KEY)
        if facts is None or facts.row is None:
            raise ReadRefused(unknown_key(parsed.key_id))
        row = facts.row
        wrong = wrong_secret(self.pepper, parsed, row)
        if wrong is not None:
            raise ReadRefused(wrong)
        dead = Accounts.dead(row)
        if dead is not None:
            raise ReadRefused(dead[1])
        grant = Accounts.grant(row)
        if grant.expires_at <= utcnow():
            raise ReadRefused(expired(grant))
        reader = replace(grant, owner_member_of=facts.owner_member_of)
        if presented:
            with self.lock:
                if len(self.verified) >= MAX_KEYS:
                    self.verified.clear()
                self.verified[presented] = (facts.at, reader)
        return reader

    def reader_of_key(self, presented: str) -> KeyGrant:
        """``key_reader`` reading the key's facts when they are out of date (for callers off the event
        loop; ``readgate`` loads them in a thread itself)."""
        parsed = keys.parse_key(presented.strip())
        facts = None
        if parsed is not None:
            facts = self.cached_key(parsed.key_id) or self.load_key(parsed.key_id)
        return self.key_reader(parsed, facts, presented)

    # Refused credentials ------------------------------------------------------------------------------

    def throttled(self) -> bool:
        """Whether any client address is refused for now (while none is, the read path asks no more)."""
        return bool(self.failures.blocked)

    def blocked_for(self, address: str) -> int:
        """Seconds ``address`` stays refused for its failed credentials (0: not refused), from memory."""
        return self.failures.blocked_for(address)

    def failed(self, address: str, presented: str) -> int:
        """Count a refused credential from ``address`` (reads and writes the database: call it off the
        event loop); return how long the address is now refused for, 0 if it is not."""
        return self.failures.failed(address, presented)

    # Decisions ----------------------------------------------------------------------------------------

    def can_read(self, view: ReadView, package_id: str) -> bool:
        return authz.can_read(
            view.reader,
            package_id,
            public_site=view.public_site,
            private_owners=self.private_owners(package_id),
        ).allowed

    def checker(self, view: ReadView) -> Callable[[str], bool]:
        return lambda package_id: self.can_read(view, package_id)


class FailedReads:
    """Client addresses that sent too many refused read credentials, refused (429) for the rest of the window.

    Each failure is counted in the shared throttle table (``services.throttle``: every process sees the
    count); an address over ``FAILED_READ_LIMIT`` is then also kept here, so its further requests are
    refused from memory, and a request with good credentials asks only ``blocked`` (empty unless an
    address is refused). A credential refused again from the same address within the window is counted
    once: a restore with a stale key sends hundreds of requests with it, answered from the caches, and
    behind nginx each refusal is checked twice (``/read-access``, then the request itself); what costs
    database reads, and is counted, is each new guess.
    """

    def __init__(self, throttle: Throttler) -> None:
        self.throttle = throttle
        self.lock = threading.Lock()
        self.blocked: dict[str, float] = {}  # address: until when (monotonic)
        self.counted: dict[bytes, float] = {}  # a digest of (address, credential): when it was counted

    def blocked_for(self, address: str) -> int:
        until = self.blocked.get(address)
        if until is None:
            return 0
        left = until - time.monotonic()
        if left <= 0:
            with self.lock:
                self.blocked.pop(address, None)
            return 0
        return max(1, round(left))

    def failed(self, address: str, presented: str) -> int:
        wait = self.blocked_for(address)
        if wait:
            return wait
        now = time.monotonic()
        seen = hashlib.blake2b(f"{address}\n{presented}".encode(), digest_size=16).digest()
        with self.lock:
            if now - self.counted.get(seen, -1e18) < FAILED_READ_WINDOW.total_seconds():
                return 0
            if len(self.counted) >= MAX_KEYS:
                self.counted.clear()
            self.counted[seen] = now
        bucket = f"read-fail:addr:{address}"
        if self.throttle.hit(bucket, FAILED_READ_WINDOW) <= FAILED_READ_LIMIT:
            return 0
        wait = max(1, self.throttle.blocked_for(bucket, FAILED_READ_LIMIT, FAILED_READ_WINDOW))
        with self.lock:
            if len(self.blocked) >= MAX_KEYS:
                self.blocked.clear()
            self.blocked[address] = now + wait
        return wait


def too_many_failures(address: str) -> str:
    return f"Too many failed read credentials from {address}; retry later"


def _orgs_of(c: Any, user_id: int) -> frozenset[int]:
    return frozenset(c.execute(select(_MEMBERS.c.org_id).where(_MEMBERS.c.member_id == user_id)).scalars())


def _like(glob: str) -> str:
    """A key's glob as a LIKE pattern (globs hold only letters, digits, ``.-_*``: ``_`` is escaped)."""
    return glob.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")


def readable(
    view: ReadView, id_lower: ColumnElement[str], registration_id: ColumnElement[int]
) -> ColumnElement[bool]:
    """``authz.can_read`` in SQL, over rows with these columns: what ``view`` may see of them."""
    reader = view.reader
    if reader is None:
        return not_(registration_id.in_(PRIVATE_REGISTRATIONS)) if view.public_site else false()
    accounts = authz.reads_for(reader)
    if accounts is None:
        return true()
    covered: ColumnElement[bool] = true()
    if isinstance(reader, KeyGrant):
        covered = or_(
            false(),
            id_lower.in_([p.lower() for p in reader.packages]),
            *(id_lower.like(_like(g), escape="\\") for g in reader.globs),
        )
    private = registration_id.in_(PRIVATE_REGISTRATIONS)
    theirs = registration_id.in_(
        select(_OWNERS.c.registration_id).where(_OWNERS.c.account_id.in_(sorted(accounts)))
    )
    public_seen = not_(private) if view.public_site else and_(not_(private), covered)
    return or_(public_seen, and_(private, theirs, covered))
