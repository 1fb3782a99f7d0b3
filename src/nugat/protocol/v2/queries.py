"""The V2 queries: search, versions of an id, one version, and the small ``$filter`` subset clients send."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select

from nugat.db import Database
from nugat.db.models import PackageRegistration, PackageVersion
from nugat.protocol.v2.atom import V2Package, VersionRecord
from nugat.services import ServiceError
from nugat.services.readers import ANONYMOUS, ReadView
from nugat.services.search import Hit, Query, Search
from nugat.versions import InvalidVersion, NuGetVersion, VersionRange, parse_range, parse_version, version_key

_TOKEN = re.compile(r"\s*(?:(?P<literal>'(?:[^']|'')*')|(?P<word>\w+)|(?P<mark>[()]))")
MAX_DEPTH = 8  # brackets nested deeper than this are refused, not recursed into


CHUNK = 200  # ids read at a time (paging over all versions; the versions of many ids)
MAX_IDS_READ = 200_000  # at most this many ids are walked for one page (a $skip deep into a large feed)


@dataclass(frozen=True)
class Filter:
    latest: bool = False
    absolute_latest: bool = False
    package_id: str | None = None
    version: str | None = None
    contradictory: bool = False  # two clauses no version meets together (``Id eq 'a' and Id eq 'b'``)


def _tokens(text: str) -> list[str]:
    """``text``'s words, brackets and string literals (quotes kept); anything else is refused."""
    tokens, at, end = [], 0, len(text.rstrip())
    while at < end:
        match = _TOKEN.match(text, at)
        if not match:
            raise ValueError(text[at:])
        tokens.append(match[match.lastgroup or "word"])
        at = match.end()
    return tokens


class _FilterParser:
    """``expression := term ('and' term)*``; ``term := '(' expression ')' | clause``; ``clause :=
    IsLatestVersion [eq true] | IsAbsoluteLatestVersion [eq true] | field eq 'literal'``, ``field := Id |
    Version | NormalizedVersion | tolower(one of those)``. Brackets must match; only ``and`` joins, so how
    they group does not change the meaning."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.at = tokens, 0
        self.found: list[tuple[str, str]] = []  # (what, value): flags and compared fields

    def take(self, *wanted: str) -> str:
        token = self.tokens[self.at] if self.at < len(self.tokens) else ""
        if wanted and token not in wanted:
            raise ValueError(token)
        self.at += 1
        return token

    def peek(self) -> str:
        return self.tokens[self.at] if self.at < len(self.tokens) else ""

    def expression(self, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ValueError("too deep")
        self.term(depth)
        while self.peek() == "and":
            self.take()
            self.term(depth)

    def term(self, depth: int) -> None:
        if self.peek() == "(":
            self.take()
            self.expression(depth + 1)
            self.take(")")
            return
        word = self.take()
        if word in ("IsLatestVersion", "IsAbsoluteLatestVersion"):
            if self.peek() == "eq":
                self.take()
                self.take("true")
            self.found.append((word, ""))
            return
        fields = ("Id", "Version", "NormalizedVersion")
        if word == "tolower":
            self.take("(")
            word = self.take(*fields)
            self.take(")")
        elif word not in fields:
            raise ValueError(word)
        self.take("eq")
        literal = self.take()
        if len(literal) < 2 or not literal.startswith("'"):
            raise ValueError(literal)
        self.found.append(("Id" if word == "Id" else "Version", literal[1:-1].replace("''", "'")))


def _same_version(a: str, b: str) -> bool:
    try:
        return parse_version(a) == parse_version(b)
    except InvalidVersion:
        return a == b


def parse_filter(text: str | None) -> Filter:
    """``IsLatestVersion``, ``tolower(Id) eq 'x'``, ``Version eq '1.0'``, joined by ``and``, in brackets
    or not (``_FilterParser``). Conditions on one field that no version meets together (two ids, two
    versions) make a ``contradictory`` filter: nothing is found, rather than what the last one asks."""
    if not text or not text.strip():
        return Filter()
    try:
        parser = _FilterParser(_tokens(text))
        parser.expression(0)
        if parser.at != len(parser.tokens):
            raise ValueError(parser.peek())
    except ValueError:
        raise ServiceError(
            f"Unsupported $filter: {text!r} (supported: IsLatestVersion, IsAbsoluteLatestVersion, Id eq '…', "
            "tolower(Id) eq '…', Version eq '…', joined by and)"
        ) from None
    flt = Filter()
    for what, value in parser.found:
        if what == "IsLatestVersion":
            flt = replace(flt, latest=True)
        elif what == "IsAbsoluteLatestVersion":
            flt = replace(flt, absolute_latest=True)
        elif what == "Id":
            if flt.package_id is not None and flt.package_id.lower() != value.lower():
                flt = replace(flt, contradictory=True)
            flt = replace(flt, package_id=flt.package_id if flt.package_id is not None else value)
        else:
            if flt.version is not None and not _same_version(flt.version, value):
                flt = replace(flt, contradictory=True)
            flt = replace(flt, version=flt.version if flt.version is not None else value)
    return flt


OrderKey = tuple[str, bool]  # an entry property, descending
_ORDER_ITEM = re.compile(r"^(?P<field>\w+)(?:\s+(?P<way>asc|desc))?$")
_UNLISTED = datetime(1900, 1, 1)  # the Published an unlisted version shows (``atom.UNLISTED_PUBLISHED``)
_SORT: dict[str, Callable[[V2Package], Any]] = {
    "Id": lambda p: p.package_id.lower(),
    "Version": lambda p: version_key(p.row.version),  # SemVer precedence, not text
    "NormalizedVersion": lambda p: version_key(p.row.version),
    "DownloadCount": lambda p: p.total_downloads,
    "VersionDownloadCount": lambda p: p.row.downloads,
    "Published": lambda p: p.row.published_at if p.row.listed else _UNLISTED,
    "Created": lambda p: p.row.published_at,
    "LastUpdated": lambda p: p.row.published_at,
}
ORDERABLE = ", ".join(_SORT)


def parse_orderby(text: str | None) -> tuple[OrderKey, ...]:
    """``$orderby``: ``Field [asc|desc]``, comma-separated, over the properties in ``_SORT``."""
    if not text or not text.strip():
        return ()
    keys: list[OrderKey] = []
    for item in text.split(","):
        match = _ORDER_ITEM.match(item.strip())
        if not match or match["field"] not in _SORT or len(keys) >= 8:
            raise ServiceError(f"Unsupported $orderby: {text!r} (supported: {ORDERABLE}, each asc or desc)")
        keys.append((match["field"], match["way"] == "desc"))
    return tuple(keys)


def ordered(packages: Sequence[V2Package], keys: Sequence[OrderKey]) -> list[V2Package]:
    """``packages`` by ``keys``, the first the most significant; ties keep their order (stable sorts)."""
    out = list(packages)
    for field, descending in reversed(keys):
        out.sort(key=_SORT[field], reverse=descending)
    return out


def search_order(keys: Sequence[OrderKey]) -> tuple[str, tuple[OrderKey, ...]]:
    """How a search across ids honours ``keys``: the order of ids the search index reads them in
    (``services.search.ORDERS``), and the keys left, which order the versions of each id. The ids are read
    by id or by downloads then id, each a total order: a version property first (``Published desc``), or
    right after DownloadCount (it would order ids with as many downloads), would mean reading every match,
    and gets a 400 rather than an order that is not the one asked for."""
    if not keys:
        return "relevance", ()
    (field, descending), rest = keys[0], tuple(keys[1:])
    if field == "Id":
        return ("id_desc" if descending else "id"), rest
    if field == "DownloadCount":
        while rest[:1] and rest[0][0] == "DownloadCount":  # said again: no more ties broken
            rest = rest[1:]
        if not rest:
            return ("downloads" if descending else "downloads_asc"), rest
        if rest[0][0] == "Id":  # ties broken by id, either way: the index's orders (``ORDERS``)
            id_descending, rest = rest[0][1], rest[1:]
            return {
                (True, False): "downloads",
                (True, True): "downloads_id_desc",
                (False, False): "downloads_asc",
                (False, True): "downloads_asc_id_desc",
            }[(descending, id_descending)], rest
        raise ServiceError(
            f"Unsupported $orderby: {rest[0][0]} after DownloadCount, on a search across ids (ids with as "
            "many downloads are ordered by Id or not at all: DownloadCount desc,Id, then any of the others)"
        )
    raise ServiceError(
        f"Unsupported $orderby: {field} first, on a search across ids (order by Id or DownloadCount first, "
        "then any of the others; or ask for one id: FindPackagesById() or $filter=Id eq '…')"
    )


# GetUpdates(): the versions a client has of each id (lowercased), each with the range an update must be in
Installed = dict[str, list[tuple[NuGetVersion, VersionRange | None]]]


def parse_updates(package_ids: str, versions: str, constraints: str) -> Installed:
    """GetUpdates()'s ``|``-separated lists, read as nuget.org reads them: empty items of the ids and the
    versions dropped, the constraints (if any) one an id, ``''`` none; lists of different lengths ask for
    nothing; an id whose version is not one is left out, a constraint that is not a range constrains
    nothing. An id given twice is updated past either of its versions."""
    ids = [i for i in package_ids.strip().lower().split("|") if i]
    given = [v for v in versions.strip().split("|") if v]
    ranges = constraints.split("|") if constraints else [""] * len(ids)
    installed: Installed = {}
    if len(ids) != len(given) or len(ids) != len(ranges):
        return installed
    for package_id, version, constraint in zip(ids, given, ranges, strict=True):
        try:
            current = parse_version(version)
        except InvalidVersion:
            continue
        try:
            allowed = parse_range(constraint) if constraint.strip() else None
        except InvalidVersion:
            allowed = None
        installed.setdefault(package_id, []).append((current, allowed))
    return installed


def _is_update(version: NuGetVersion, installed: list[tuple[NuGetVersion, VersionRange | None]]) -> bool:
    return any(
        current < version and (allowed is None or allowed.contains(version)) for current, allowed in installed
    )


def _record(row: PackageVersion) -> VersionRecord:
    return VersionRecord(
        version=row.version,
        version_lower=row.version_lower,
        full_version=row.full_version,
        listed=row.listed,
        published_at=row.published_at,
        is_prerelease=row.is_prerelease,
        is_semver2=row.is_semver2,
        sha512=row.sha512,
        size=row.size,
        downloads=row.downloads,
        metadata_json=dict(row.metadata_json),
    )


def _v2(rows: list[PackageVersion], reg: PackageRegistration) -> list[V2Package]:
    ordered = sorted(rows, key=lambda r: parse_version(r.version))
    listed = [r for r in ordered if r.listed]
    stable = [r for r in listed if not r.is_prerelease]
    latest = stable[-1].id if stable else None
    absolute = listed[-1].id if listed else None
    return [
        V2Package(_record(r), reg.package_id, r.id == latest, r.id == absolute, reg.total_downloads)
        for r in ordered
    ]


class V2Queries:
    def __init__(
        self,
        db: Database,
        search: Search,
        view: ReadView = ANONYMOUS,
        may_read: Callable[[str], bool] = lambda _: True,
    ) -> None:
        """``view``: who asks; ``may_read``: whether they may see an id (``services.readers``)."""
        self.db = db
        self.search_service = search
        self.view = view
        self.may_read = may_read

    def versions_of(self, package_id: str, semver2: bool) -> list[V2Package]:
        """Every version of an id, unlisted included (the client filters), as FindPackagesById; none of
        an id the reader may not see."""
        return self._versions_by_id([package_id], semver2).get(package_id.lower(), [])

    def _versions_by_id(self, package_ids: Iterable[str], semver2: bool) -> dict[str, list[V2Package]]:
        """``versions_of`` of each id, by lowercased id (ids never pushed or not the reader's absent): two
        statements a chunk of ids."""
        wanted = sorted({i.lower() for i in package_ids if self.may_read(i)})
        found: dict[str, list[V2Package]] = {}
        if not wanted:
            return found
        with self.db.reading() as s:
            for at in range(0, len(wanted), CHUNK):
                chunk = wanted[at : at + CHUNK]
                regs = {
                    r.id: r
                    for r in s.scalars(
                        select(PackageRegistration).where(PackageRegistration.id_lower.in_(chunk))
                    )
                }
                rows: dict[int, list[PackageVersion]] = {reg_id: [] for reg_id in regs}
                if regs:
                    query = select(PackageVersion).where(PackageVersion.registration_id.in_(list(regs)))
                    for row in s.scalars(query):
                        rows[row.registration_id].append(row)
                # IsLatestVersion and IsAbsoluteLatestVersion of the versions the client sees (as nuget.org's)
                for reg_id, reg in regs.items():
                    shown = [r for r in rows[reg_id] if semver2 or not r.is_semver2]
                    found[reg.id_lower] = _v2(shown, reg)
        return found

    def find_by_id(
        self, package_id: str, semver2: bool, flt: Filter, keys: Sequence[OrderKey]
    ) -> list[V2Package]:
        """FindPackagesById(): every version of the id (unlisted included), those ``$filter`` keeps, in
        the ``$orderby`` order (by default, oldest version first)."""
        if flt.contradictory or (flt.package_id is not None and flt.package_id.lower() != package_id.lower()):
            return []
        found = self.versions_of(package_id, semver2)
        return ordered(_filtered(found, True, replace(flt, package_id=None)) or [], keys)

    def updates(
        self,
        installed: Installed,
        prerelease: bool,
        all_versions: bool,
        semver2: bool,
        flt: Filter,
        keys: Sequence[OrderKey],
    ) -> list[V2Package]:
        """GetUpdates(): each id's listed versions above one of its installed versions and within that one's
        constraint (prerelease ones if ``prerelease``), only the latest unless ``all_versions``; by id then
        version, then those ``$filter`` keeps in the ``$orderby`` order. Ids the reader may not see, or
        never pushed, have none."""
        if flt.contradictory:
            return []
        if flt.package_id is not None:
            installed = {k: v for k, v in installed.items() if k == flt.package_id.lower()}
        found: list[V2Package] = []
        by_id = self._versions_by_id(installed, semver2)
        for package_id in sorted(by_id):
            newer = [
                p
                for p in by_id[package_id]
                if p.row.listed
                and (prerelease or not p.row.is_prerelease)
                and _is_update(parse_version(p.row.version), installed[package_id])
            ]
            found += newer if all_versions else newer[-1:]
        return ordered(_filtered(found, True, replace(flt, package_id=None)) or [], keys)

    def one(self, package_id: str, version: str) -> V2Package | None:
        try:
            wanted = parse_version(version).normalized.lower()
        except InvalidVersion:
            return None
        return next((p for p in self.versions_of(package_id, True) if p.row.version_lower == wanted), None)

    def search(
        self,
        term: str,
        prerelease: bool,
        semver2: bool,
        flt: Filter,
        skip: int,
        top: int,
        keys: Sequence[OrderKey] = (),
    ) -> tuple[int, list[V2Package]]:
        """Search() and Packages(): the latest version of each match, or all listed versions of them.

        Bounded whatever the feed's size: only the ids of the page asked for are read in full (and, for a
        page of all versions, the ids before it in rank order, a chunk at a time, by their version counts).
        """
        if flt.contradictory:
            return 0, []
        if flt.package_id is not None:
            if term.strip() and not self._matches(
                flt.package_id, term, prerelease or flt.absolute_latest, semver2
            ):
                return 0, []
            candidates = [p for p in self.versions_of(flt.package_id, semver2) if p.row.listed or flt.version]
            kept = _filtered(candidates, prerelease, flt)
            if kept is None:
                return 0, []
            return len(kept), ordered(kept, keys)[skip : skip + top]
        order, within = search_order(keys)
        query = Query(
            q=term, prerelease=prerelease or flt.absolute_latest, semver2=semver2, view=self.view, order=order
        )
        if flt.version is None and (flt.latest or flt.absolute_latest):  # one version an id, at most
            total, hits = self.search_service.search(replace(query, skip=skip, take=top))
            return total, self._expand(hits, prerelease, semver2, flt, within)
        if flt.version is not None:
            try:
                wanted = parse_version(flt.version)
            except InvalidVersion:
                return 0, []
        else:
            wanted = None

        def counted(hit: Hit) -> int:
            return sum(
                1
                for v in hit.versions
                if (prerelease or not v.is_prerelease)
                and (wanted is None or parse_version(v.version) == wanted)
            )

        page: list[Hit] = []
        seen = offset = found = 0  # ids read; versions before the page's ids; versions of the page's ids
        while seen < MAX_IDS_READ and (wanted is not None or offset + found < skip + top):
            total_ids, hits = self.search_service.search(replace(query, skip=seen, take=CHUNK))
            for hit in hits:
                n = counted(hit)
                if n == 0:
                    continue
                if not page and offset + n <= skip:
                    offset += n
                elif offset + found < skip + top:
                    page.append(hit)
                    found += n
                elif wanted is None:
                    break
                else:
                    found += n  # counted for the total only
            seen += len(hits)
            if len(hits) < CHUNK or seen >= total_ids:
                break
        chosen = self._expand(page, prerelease, semver2, flt, within)[skip - offset :][:top]
        total = (
            self.search_service.count_versions(query, listed_prerelease=prerelease)
            if wanted is None
            else offset + found
        )
        return total, chosen

    def _matches(self, package_id: str, term: str, prerelease: bool, semver2: bool) -> bool:
        """Whether the search term finds this id (both conditions of ``Search()?searchTerm=…&$filter=Id
        eq …``): the term and ``packageid:`` the id, in one search."""
        if not package_id or any(c.isspace() or c == ":" for c in package_id):
            return False  # no id is spelled so: none found
        query = Query(
            q=f"{term} packageid:{package_id}", prerelease=prerelease, semver2=semver2, view=self.view, take=1
        )
        return bool(self.search_service.search(query)[1])

    def _expand(
        self, hits: list[Hit], prerelease: bool, semver2: bool, flt: Filter, within: Sequence[OrderKey]
    ) -> list[V2Package]:
        """The versions of these hits (each id's listed ones, by ``within``, else in version order) that
        the filter keeps, the hits' order kept; read together (``_versions_by_id``), not an id at a time."""
        by_id = self._versions_by_id([hit.registration.package_id for hit in hits], semver2)
        candidates = []
        for hit in hits:
            versions = [p for p in by_id.get(hit.registration.id_lower, []) if p.row.listed]
            candidates += ordered(versions, within)
        return _filtered(candidates, prerelease, flt) or []


def _filtered(candidates: list[V2Package], prerelease: bool, flt: Filter) -> list[V2Package] | None:
    """The candidates ``flt`` keeps (not its id: the caller's), prerelease ones only if ``prerelease``."""
    if not prerelease and not flt.absolute_latest:
        candidates = [p for p in candidates if not p.row.is_prerelease]
    if flt.latest:
        candidates = [p for p in candidates if p.is_latest]
    if flt.absolute_latest:
        candidates = [p for p in candidates if p.is_absolute_latest]
    if flt.version is not None:
        try:
            wanted = parse_version(flt.version)
        except InvalidVersion:
            return None
        candidates = [p for p in candidates if parse_version(p.row.version) == wanted]
    return candidates
