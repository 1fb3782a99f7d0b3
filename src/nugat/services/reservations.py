"""Reserved id prefixes: site admins reserve ``Contoso.*`` for owners; nobody else may push a new id under it.

A package is ``verified`` (in search and registration) when one of its owners holds a reservation
covering its id, so reserving or releasing a prefix rebuilds the documents of the ids it covers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from nugat import authz
from nugat.authz import OPERATOR, Actor
from nugat.clock import utcnow
from nugat.db import Database, Tx, conn, search_changed
from nugat.db.models import Account, PackageOwner, PackageRegistration, ReservedPrefix, table
from nugat.prefixes import InvalidPrefix, normalize_prefix, reserving_owners
from nugat.services import Conflict, NotFound, ServiceError
from nugat.services.actors import By, actor_id, resolve
from nugat.services.audit import record
from nugat.services.orgs import account_named
from nugat.services.search_index import index_ids

if TYPE_CHECKING:
    from nugat.services.materialize import Materializer


@dataclass(frozen=True)
class PrefixView:
    prefix: str
    owners: list[str]


# Built once: these run in every push (building a statement costs more than running it on SQLite).
_RESERVATIONS = select(table(ReservedPrefix).c.prefix, table(ReservedPrefix).c.account_id)
_OWNER_IDS = select(table(PackageOwner).c.account_id).where(
    table(PackageOwner).c.registration_id == bindparam("registration_id")
)


def reservations(s: Tx) -> list[tuple[str, int]]:
    """Every (prefix, account id) reservation; the table holds a handful of rows, not one per package."""
    return [(p, a) for p, a in conn(s).execute(_RESERVATIONS)]


def owner_ids(s: Tx, registration_id: int) -> frozenset[int]:
    """The account ids owning a package id."""
    return frozenset(conn(s).execute(_OWNER_IDS, {"registration_id": registration_id}).scalars())


def is_verified(s: Tx, registration_id: int, package_id: str) -> bool:
    holders = reserving_owners(package_id, reservations(s))
    return bool(holders) and not holders.isdisjoint(owner_ids(s, registration_id))


def verified_ids(s: Session) -> set[int]:
    """Registration ids of every verified package (for search, which reads all packages at once)."""
    found = reservations(s)
    if not found:
        return set()
    rows = s.execute(
        select(PackageRegistration.id, PackageRegistration.package_id, PackageOwner.account_id).join(
            PackageOwner, PackageOwner.registration_id == PackageRegistration.id
        )
    )
    return {reg_id for reg_id, package_id, owner in rows if owner in reserving_owners(package_id, found)}


def mark_changed(regs: Iterable[PackageRegistration]) -> list[str]:
    """Mark registrations stale (their documents must be rebuilt) and rewrite their search entries, in
    their session's transaction; return their lowercased ids."""
    changed = []
    ids = []
    session = None
    for reg in regs:
        reg.revision += 1
        changed.append(reg.id_lower)
        ids.append(reg.id)
        session = session or Session.object_session(reg)
    if session is not None:
        session.flush()
        index_ids(session.connection(), ids)
    return changed


def _covered(s: Session, prefix: str) -> list[PackageRegistration]:
    column = PackageRegistration.id_lower
    lowered = prefix.lower()
    condition = (
        column.startswith(lowered[:-1], autoescape=True) if lowered.endswith("*") else column == lowered
    )
    return list(s.scalars(select(PackageRegistration).where(condition).with_for_update()))


class Prefixes:
    def __init__(self, db: Database, materializer: Materializer) -> None:
        self.db = db
        self.materializer = materializer

    def _admin(self, s: Session, by: By) -> Actor:
        actor = resolve(s, by)
        authz.require(authz.can_reserve_prefixes(actor))
        return actor

    def reserve(
        self, prefix: str, owners: list[str], *, by: By = OPERATOR, address: str | None = None
    ) -> str:
        """Reserve ``prefix`` for each of ``owners`` (users or organizations); return it normalized."""
        try:
            prefix = normalize_prefix(prefix)
        except InvalidPrefix as exc:
            raise ServiceError(str(exc)) from None
        if not owners:
            raise ServiceError("Name at least one owner for the prefix")
        with self.db.session() as s:
            actor = self._admin(s, by)
            rows = s.execute(
                select(ReservedPrefix.prefix, ReservedPrefix.account_id).where(
                    ReservedPrefix.prefix_lower == prefix.lower()
                )
            ).all()
            # More holders of a reserved prefix share its spelling, so that it is listed once.
            prefix = rows[0].prefix if rows else prefix
            held = {row.account_id for row in rows}
            added = []
            for name in owners:
                account = account_named(s, name)
                if account.id in held:
                    continue
                held.add(account.id)
                added.append(account.name)
                s.add(
                    ReservedPrefix(
                        prefix=prefix, prefix_lower=prefix.lower(), account_id=account.id, created_at=utcnow()
                    )
                )
                record(
                    s,
                    "prefix.reserve",
                    actor_id=actor_id(actor),
                    account_id=account.id,
                    address=address,
                    prefix=prefix,
                )
            if not added:
                raise Conflict(f"{prefix} is already reserved for {', '.join(owners)}")
            search_changed(s.connection())  # search keeps the reservations while nothing moves (``Search``)
            changed = mark_changed(_covered(s, prefix))
        self.materializer.build_committed(changed)
        return prefix

    def release(
        self, prefix: str, owner: str | None = None, *, by: By = OPERATOR, address: str | None = None
    ) -> None:
        """Remove the reservation of ``prefix`` for ``owner`` (for every owner when ``None``)."""
        try:
            prefix = normalize_prefix(prefix)
        except InvalidPrefix as exc:
            raise ServiceError(str(exc)) from None
        with self.db.session() as s:
            actor = self._admin(s, by)
            condition = ReservedPrefix.prefix_lower == prefix.lower()
            if owner is not None:
                condition &= ReservedPrefix.account_id == account_named(s, owner).id
            released = list(s.scalars(select(ReservedPrefix.account_id).where(condition)))
            if not released:
                raise NotFound(f"{prefix} is not reserved{f' for {owner}' if owner else ''}")
            s.execute(delete(ReservedPrefix).where(condition))
            search_changed(s.connection())
            for account_id in released:
                record(
                    s,
                    "prefix.release",
                    actor_id=actor_id(actor),
                    account_id=account_id,
                    address=address,
                    prefix=prefix,
                )
            changed = mark_changed(_covered(s, prefix))
        self.materializer.build_committed(changed)

    def all(self) -> list[PrefixView]:
        with self.db.reading() as s:
            rows = s.execute(
                select(ReservedPrefix.prefix, Account.name)
                .join(Account, Account.id == ReservedPrefix.account_id)
                .order_by(ReservedPrefix.prefix_lower, Account.name_lower)
            )
            views: dict[str, list[str]] = {}
            for prefix, name in rows:
                views.setdefault(prefix, []).append(name)
        return [PrefixView(prefix, names) for prefix, names in views.items()]
