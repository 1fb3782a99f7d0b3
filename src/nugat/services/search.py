"""Search and autocomplete over listed versions, matching id, title, tags, description and authors."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nugat.clock import utcnow
from nugat.db import Database
from nugat.db.models import Account, PackageOwner, PackageRegistration, PackageVersion
from nugat.services.prefixes import verified_ids
from nugat.versions import parse_version

MAX_TAKE = 1000
MAX_SKIP = 100_000


@dataclass
class RegInfo:
    package_id: str
    id_lower: str
    total_downloads: int


@dataclass(frozen=True)
class VersionInfo:
    """A listed version as search shows it; ``metadata_json``/``search_text`` only on a latest version."""

    package_id: str
    version: str
    version_lower: str
    full_version: str
    downloads: int
    is_prerelease: bool
    is_semver2: bool
    search_text: str = ""
    metadata_json: dict[str, Any] = field(default_factory=dict)


@dataclass
class Hit:
    registration: RegInfo
    latest: VersionInfo
    versions: list[VersionInfo]
    owners: list[str] = field(default_factory=list)
    verified: bool = False  # under a prefix reserved by one of its owners


@dataclass(frozen=True)
class Query:
    q: str = ""
    skip: int = 0
    take: int = 20
    prerelease: bool = False
    semver2: bool = False
    package_type: str | None = None


def _terms(q: str) -> list[tuple[str | None, str]]:
    """Split ``q`` into (field, term) pairs; fields as nuget.org: id:, packageid:, tags:, author:..."""
    out: list[tuple[str | None, str]] = []
    for raw in q.lower().split():
        fieldname, sep, term = raw.partition(":")
        if sep and fieldname in {
            "id",
            "packageid",
            "tags",
            "tag",
            "author",
            "authors",
            "title",
            "description",
            "owner",
        }:
            if term:
                out.append((fieldname, term))
        else:
            out.append((None, raw))
    return out


def _matches(hit: Hit, terms: Iterable[tuple[str | None, str]]) -> bool:
    v = hit.latest
    m = v.metadata_json
    for fieldname, term in terms:
        if fieldname is None:
            ok = term in v.search_text
        elif fieldname == "id":
            ok = term in v.package_id.lower()
        elif fieldname == "packageid":
            ok = term == v.package_id.lower()
        elif fieldname in ("tags", "tag"):
            ok = term in [t.lower() for t in m.get("tags", [])]
        elif fieldname in ("author", "authors"):
            ok = any(term in a.lower() for a in m.get("authors", []))
        elif fieldname == "title":
            ok = term in (m.get("title") or "").lower()
        elif fieldname == "description":
            ok = term in (m.get("description") or "").lower()
        else:  # owner
            ok = term in [o.lower() for o in hit.owners]
        if not ok:
            return False
    return True


VIEWS = [(p, s2) for p in (False, True) for s2 in (False, True)]  # (prerelease, semver2)
Row = tuple[Any, ...]  # id, registration_id, package_id, version, version_lower, full_version, downloads,
#                        is_prerelease, is_semver2


def _in_view(row: Row, view: tuple[bool, bool]) -> bool:
    prerelease, semver2 = view
    return (prerelease or not row[7]) and (semver2 or not row[8])


def _info(row: Row, search_text: str = "", metadata_json: dict[str, Any] | None = None) -> VersionInfo:
    return VersionInfo(
        package_id=row[2],
        version=row[3],
        version_lower=row[4],
        full_version=row[5],
        downloads=row[6],
        is_prerelease=row[7],
        is_semver2=row[8],
        search_text=search_text,
        metadata_json=metadata_json or {},
    )


DOWNLOADS_REFRESH = timedelta(seconds=60)


class Search:
    """Search over an in-process index of every id's listed versions, kept current incrementally.

    Each query costs one aggregate query (the sum of registration revisions, which every change bumps);
    when it moved, only the registrations whose revision changed are reloaded. Download totals, which
    change without a revision, are refreshed once a minute.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.lock = threading.Lock()
        self.generation: tuple[int, int] | None = None
        self.revisions: dict[int, int] = {}
        self.regs: dict[int, RegInfo] = {}
        self.hits: dict[int, dict[tuple[bool, bool], Hit]] = {}
        self.views: dict[tuple[bool, bool], list[Hit]] = {}
        self.downloads_at = datetime.min

    def _refresh(self) -> None:
        with self.db.reading() as s:
            row = s.execute(
                select(func.count(), func.coalesce(func.sum(PackageRegistration.revision), 0))
            ).one()
            generation = (int(row[0]), int(row[1]))
            now = utcnow()
            if generation == self.generation and now - self.downloads_at < DOWNLOADS_REFRESH:
                return
            if generation != self.generation:
                current = {
                    reg_id: rev
                    for reg_id, rev in s.execute(select(PackageRegistration.id, PackageRegistration.revision))
                }
                changed = [r for r, rev in current.items() if self.revisions.get(r) != rev]
                for start in range(0, len(changed), 500):
                    self._load(s, changed[start : start + 500])
                self.revisions = current
                self.generation = generation
            for reg_id, total in s.execute(
                select(PackageRegistration.id, PackageRegistration.total_downloads)
            ):
                if reg_id in self.regs:
                    self.regs[reg_id].total_downloads = total
            self.downloads_at = now
            # Kept in result order, so a query only filters: most downloaded first, then by id.
            ordered = sorted(
                (hits for hits in self.hits.values() if hits),
                key=lambda h: (
                    -next(iter(h.values())).registration.total_downloads,
                    next(iter(h.values())).registration.id_lower,
                ),
            )
            self.views = {view: [hits[view] for hits in ordered if view in hits] for view in VIEWS}

    def _load(self, s: Session, reg_ids: list[int]) -> None:
        """(Re)build the hits of these registrations, in each of the four views."""
        regs = {
            r.id: r for r in s.scalars(select(PackageRegistration).where(PackageRegistration.id.in_(reg_ids)))
        }
        owners: dict[int, list[str]] = {}
        for reg_id, name in s.execute(
            select(PackageOwner.registration_id, Account.name)
            .join(Account, Account.id == PackageOwner.account_id)
            .where(PackageOwner.registration_id.in_(reg_ids))
        ):
            owners.setdefault(reg_id, []).append(name)
        verified = verified_ids(s)
        rows: dict[int, list[Row]] = {}
        for r in s.execute(
            select(
                PackageVersion.id,
                PackageVersion.registration_id,
                PackageVersion.package_id,
                PackageVersion.version,
                PackageVersion.version_lower,
                PackageVersion.full_version,
                PackageVersion.downloads,
                PackageVersion.is_prerelease,
                PackageVersion.is_semver2,
            ).where(PackageVersion.registration_id.in_(reg_ids), PackageVersion.listed.is_(True))
        ):
            rows.setdefault(r[1], []).append(tuple(r))
        latest_ids: dict[int, list[int]] = {}
        for reg_id in reg_ids:
            versions = sorted(rows.get(reg_id, []), key=lambda r: parse_version(r[3]))
            rows[reg_id] = versions
            for view in VIEWS:
                chosen = [r for r in versions if _in_view(r, view)]
                if chosen:
                    latest_ids.setdefault(chosen[-1][0], []).append(reg_id)
        details = {
            vid: (text, meta)
            for vid, text, meta in s.execute(
                select(PackageVersion.id, PackageVersion.search_text, PackageVersion.metadata_json).where(
                    PackageVersion.id.in_(list(latest_ids))
                )
            )
        }
        for reg_id in reg_ids:
            reg = regs.get(reg_id)
            if reg is None:
                self.hits.pop(reg_id, None)
                continue
            info = RegInfo(reg.package_id, reg.id_lower, reg.total_downloads)
            self.regs[reg_id] = info
            views: dict[tuple[bool, bool], Hit] = {}
            # One object per version, shared by the views (a latest one carries its details).
            infos = {r[0]: _info(r, *details[r[0]]) if r[0] in details else _info(r) for r in rows[reg_id]}
            names = sorted(owners.get(reg_id, []))
            for view in VIEWS:
                picked = [r[0] for r in rows[reg_id] if _in_view(r, view)]
                if not picked:
                    continue
                shown = [infos[v] for v in picked]
                views[view] = Hit(info, shown[-1], shown, names, reg_id in verified)
            self.hits[reg_id] = views

    def _candidates(self, query: Query) -> list[Hit]:
        with self.lock:
            self._refresh()
            return self.views.get((query.prerelease, query.semver2), [])

    def search(self, query: Query) -> tuple[int, list[Hit]]:
        terms = _terms(query.q)
        candidates = self._candidates(query)
        if all(f is None for f, _ in terms):  # plain words, the common case: no per-hit call
            hits = candidates
            for _, word in terms:
                hits = [h for h in hits if word in h.latest.search_text]
        else:
            hits = [h for h in candidates if _matches(h, terms)]
        if query.package_type is not None:
            wanted = query.package_type.lower()
            hits = [
                h
                for h in hits
                if wanted in [p["name"].lower() for p in h.latest.metadata_json.get("package_types", [])]
            ]
        exact = {t for f, t in terms if f is None}
        if exact:  # an id typed in full comes first
            hits = [h for h in hits if h.registration.id_lower in exact] + [
                h for h in hits if h.registration.id_lower not in exact
            ]
        return len(hits), hits[query.skip : query.skip + query.take]

    def autocomplete_ids(self, query: Query) -> tuple[int, list[str]]:
        q = query.q.lower()
        ids = sorted(
            (h.registration.package_id for h in self._candidates(query) if q in h.registration.id_lower),
            key=lambda i: (not i.lower().startswith(q), i.lower()),
        )
        return len(ids), ids[query.skip : query.skip + query.take]

    def autocomplete_versions(self, package_id: str, query: Query) -> list[str]:
        for hit in self._candidates(query):
            if hit.registration.id_lower == package_id.lower():
                return [v.full_version if query.semver2 else v.version for v in hit.versions]
        return []
