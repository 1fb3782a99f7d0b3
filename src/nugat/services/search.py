"""Search and autocomplete over listed versions, matching id, title, tags, description and authors."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from nugat.db import Database
from nugat.db.models import Account, PackageOwner, PackageRegistration, PackageVersion
from nugat.services.prefixes import verified_ids
from nugat.versions import parse_version

MAX_TAKE = 1000
MAX_SKIP = 100_000


@dataclass
class Hit:
    registration: PackageRegistration
    latest: PackageVersion
    versions: list[PackageVersion]
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


class Search:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _candidates(self, query: Query) -> list[Hit]:
        with self.db.reading() as s:
            stmt = select(PackageVersion).where(PackageVersion.listed.is_(True))
            if not query.prerelease:
                stmt = stmt.where(PackageVersion.is_prerelease.is_(False))
            if not query.semver2:
                stmt = stmt.where(PackageVersion.is_semver2.is_(False))
            versions = list(s.scalars(stmt))
            regs = {r.id: r for r in s.scalars(select(PackageRegistration))}
            owners: dict[int, list[str]] = {}
            for reg_id, name in s.execute(
                select(PackageOwner.registration_id, Account.name).join(
                    Account, Account.id == PackageOwner.account_id
                )
            ):
                owners.setdefault(reg_id, []).append(name)
            verified = verified_ids(s)
        grouped: dict[int, list[PackageVersion]] = {}
        for v in versions:
            grouped.setdefault(v.registration_id, []).append(v)
        hits = []
        for reg_id, vs in grouped.items():
            vs.sort(key=lambda v: parse_version(v.version))
            hits.append(Hit(regs[reg_id], vs[-1], vs, sorted(owners.get(reg_id, [])), reg_id in verified))
        return hits

    def search(self, query: Query) -> tuple[int, list[Hit]]:
        terms = _terms(query.q)
        hits = [h for h in self._candidates(query) if _matches(h, terms)]
        if query.package_type is not None:
            wanted = query.package_type.lower()
            hits = [
                h
                for h in hits
                if wanted in [p["name"].lower() for p in h.latest.metadata_json.get("package_types", [])]
            ]
        exact = {t for f, t in terms if f is None}
        hits.sort(
            key=lambda h: (
                h.registration.id_lower not in exact,
                -h.registration.total_downloads,
                h.registration.id_lower,
            )
        )
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
