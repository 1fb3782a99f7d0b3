"""Search and autocomplete over listed versions, matching id, title, tags, description and authors.

Queries run on the database's own index of ``search_entries`` (kept by ``services.search_index`` in each
change's transaction): a word matches where it appears in the text, as a substring, found through a
trigram index (``pg_trgm`` GIN on PostgreSQL, an FTS5 trigram table on SQLite); on PostgreSQL a total is
counted from word postings where they answer it exactly (``Search._posted_total``). A process holds no
index of its own, so it answers its first query at once and sees another process's change at its next one.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Hashable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    Boolean,
    Connection,
    Integer,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    false,
    func,
    intersect,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy import table as sa_table
from sqlalchemy.sql import Select, Subquery
from sqlalchemy.sql.elements import ColumnElement

from nugat.db import Database, InIds
from nugat.db.models import Account, PackageOwner, PackageRegistration, PackageVersion, SearchEntry, table
from nugat.keys import KeyGrant
from nugat.prefixes import reserving_owners
from nugat.services.readers import ANONYMOUS, ReadView, readable
from nugat.services.recent import Recent
from nugat.services.reservations import reservations
from nugat.services.search_index import VIEWS, words
from nugat.versions import version_key

log = logging.getLogger("nugat.search")

MAX_TAKE = 1000
MAX_SKIP = 100_000


@dataclass
class RegInfo:
    package_id: str
    id_lower: str
    total_downloads: int


NO_DETAILS: Mapping[str, Any] = MappingProxyType({})


class VersionInfo(NamedTuple):
    """A listed version as search shows it; ``metadata_json`` only on a latest version.
    (A tuple: a page makes hundreds of them, and they are shared by the callers of a kept page.)"""

    package_id: str
    version: str
    version_lower: str
    full_version: str
    downloads: int
    is_prerelease: bool
    is_semver2: bool
    metadata_json: Mapping[str, Any] = NO_DETAILS


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
    view: ReadView = ANONYMOUS  # who asks: only what they may read is found and counted
    # ``relevance``: ids typed in full first, then by downloads (most first) and id; else strictly one of
    # ``ORDERS`` (the V2 feed's ``$orderby``): a total order, so that pages neither repeat nor skip ids.
    order: str = "relevance"

    def __post_init__(self) -> None:
        # No stored text holds a NUL (PostgreSQL refuses one in text, SQLite's FTS5 stops at it): a query's
        # NULs would only make the database fail, so they are dropped here, where every search starts.
        object.__setattr__(self, "q", self.q.replace("\x00", ""))
        if self.package_type is not None:
            object.__setattr__(self, "package_type", self.package_type.replace("\x00", ""))


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


Row = tuple[Any, ...]  # id, registration_id, package_id, version, version_lower, full_version, downloads,
#                        is_prerelease, is_semver2


def _row_in_view(row: Row, view: tuple[bool, bool]) -> bool:
    prerelease, semver2 = view
    return (prerelease or not row[7]) and (semver2 or not row[8])


ENTRIES = table(SearchEntry)
VERSIONS = table(PackageVersion)
REGS = table(PackageRegistration)
OWNERS = table(PackageOwner)
ACCOUNTS = table(Account)
FTS = sa_table("search_fts", column("rowid", Integer), column("search_text", Text))
# PostgreSQL's word postings (migration ``search_postings``): a total counted from an index alone.
POSTINGS = sa_table(
    "search_postings",
    column("word", Text),
    column("entry_id", Integer),
    column("registration_id", Integer),
    *(column(name, Boolean) for name in VIEWS.values()),
)
WORDS = sa_table("search_words", column("word", Text))
# A term the postings count exactly: letters and digits only, so that wherever it is in a text it is inside
# one word (a run of them), and at most 100 long, so that it is inside one piece of a longer word.
_POSTED_TERM = re.compile(r"[a-z0-9]{3,100}")
TRIGRAM = 3  # the text index finds words of at least this many characters; shorter ones are scanned for

COUNT_SECONDS = 0.5
# A query whose total is not kept is counted on another connection while the page is read (at most this
# many at once per process; beyond, in the request's own thread): a count reads every match (~10 ms for
# 30,000 from the postings, ~18 ms over the text), the page only the first few, and the two together cost
# the longer, not the sum.
COUNTS_AHEAD = 2
COUNTED_SECONDS = 60.0
# A page of results is reused while nothing was committed to the database since it was read (``Database.
# generation``), for at most this long (``services.recent``): with a kept count in it, a total lags a
# change by a second at most.
RESULT_SECONDS = 0.5
KEPT_VERSIONS = 20_000  # the versions of the pages kept (~600 bytes each: ~12 MB)
KEPT_BYTES = 8 << 20  # the V3 answers kept (~50 KB a page of 20)
MAX_COUNTS = 10_000  # queries whose totals are kept (all dropped when full: a bound, not an LRU)
MAX_BUILT = 256  # queries whose statements are kept (~10 KB each; all dropped when full)

_VERSION_COLUMNS = (
    VERSIONS.c.id,
    VERSIONS.c.registration_id,
    VERSIONS.c.package_id,
    VERSIONS.c.version,
    VERSIONS.c.version_lower,
    VERSIONS.c.full_version,
    VERSIONS.c.downloads,
    VERSIONS.c.is_prerelease,
    VERSIONS.c.is_semver2,
)


def _json_rows(sqlite: bool, *columns: ColumnElement[Any]) -> ColumnElement[str]:
    """The grouped rows' ``columns`` as the text of one JSON array of arrays (``json_agg`` on PostgreSQL,
    ``json_group_array`` on SQLite; NULL or ``[]`` for none): the database writes it in C, orjson reads it."""
    if sqlite:
        return func.json_group_array(func.json_array(*columns))
    return cast(func.json_agg(func.json_build_array(*columns)), Text)


def _json_bool(sqlite: bool, flag: ColumnElement[bool]) -> ColumnElement[Any]:
    """A flag as a JSON boolean (SQLite keeps booleans as 0 and 1)."""
    return func.json(case((flag, "true"), else_="false")) if sqlite else flag


@functools.cache
def _hit_details(sqlite: bool, prerelease: bool, semver2: bool) -> Select[Any]:
    """One row per hit's id (``rids``): its listed versions in the view, as JSON (``VersionInfo``'s fields,
    the version's id in place of ``metadata_json``); the details of its latest (``latest``: version ids),
    as JSON text; its owners (account id, name), as JSON. A page's hundreds of versions cost a parse rather
    than hundreds of rows made into objects. Built once per database kind and view: these run in every
    search not answered from a kept page."""
    where = [InIds(VERSIONS.c.registration_id, "rids"), VERSIONS.c.listed.is_(true())]
    if not prerelease:
        where.append(VERSIONS.c.is_prerelease.is_(false()))
    if not semver2:
        where.append(VERSIONS.c.is_semver2.is_(false()))
    versions = _json_rows(
        sqlite,
        VERSIONS.c.package_id,
        VERSIONS.c.version,
        VERSIONS.c.version_lower,
        VERSIONS.c.full_version,
        VERSIONS.c.downloads,
        _json_bool(sqlite, VERSIONS.c.is_prerelease),
        _json_bool(sqlite, VERSIONS.c.is_semver2),
        VERSIONS.c.id,
    )
    owners = (
        select(_json_rows(sqlite, ACCOUNTS.c.id, ACCOUNTS.c.name))
        .select_from(OWNERS.join(ACCOUNTS, ACCOUNTS.c.id == OWNERS.c.account_id))
        .where(OWNERS.c.registration_id == VERSIONS.c.registration_id)
        .scalar_subquery()
    )
    latest = case((InIds(VERSIONS.c.id, "latest"), cast(VERSIONS.c.metadata_json, Text)), else_=null())
    return (
        select(VERSIONS.c.registration_id, versions, func.max(latest), owners)
        .where(*where)
        .group_by(VERSIONS.c.registration_id)
    )


def _by_version(row: list[Any]) -> tuple[Any, ...]:
    return version_key(row[1])


_COLUMNS = (
    ENTRIES.c.registration_id,
    ENTRIES.c.version_id,
    ENTRIES.c.package_id,
    ENTRIES.c.id_lower,
    ENTRIES.c.downloads,
)
_RANK = (ENTRIES.c.downloads.desc(), ENTRIES.c.id_lower)
ORDERS: Mapping[str, tuple[ColumnElement[Any], ...]] = MappingProxyType(
    {
        "relevance": _RANK,
        "downloads": _RANK,
        "downloads_asc": (ENTRIES.c.downloads, ENTRIES.c.id_lower),
        "downloads_asc_id_desc": (ENTRIES.c.downloads, ENTRIES.c.id_lower.desc()),  # the rank index backwards
        "downloads_id_desc": (ENTRIES.c.downloads.desc(), ENTRIES.c.id_lower.desc()),  # ties sorted, as above
        "id": (ENTRIES.c.id_lower,),
        "id_desc": (ENTRIES.c.id_lower.desc(),),
    }
)


class _Statements(NamedTuple):
    """A query's statements, whatever its page (``skip`` and ``take`` are given at execution): building
    them costs about as much nugat CPU as running them, and a query's next pages need the same."""

    exact: Select[Any] | None  # the ids typed in full, if any
    rest: Select[Any]
    others: Select[Any] | None  # the rest, once ids typed in full were found
    total: Select[Any]


def _of_type(query: Query) -> list[ColumnElement[bool]]:
    """The ``packageType`` filter (search; autocomplete since 3.5.0): an unknown type finds nothing."""
    if query.package_type is None:
        return []
    wanted = query.package_type.lower()
    condition = _contains(ENTRIES.c.package_types, f" {wanted} ")
    if wanted == "dependency":  # a package that names no type is a Dependency one, as on nuget.org
        condition = or_(condition, ENTRIES.c.package_types == words([]))
    return [condition]


def _paged(order: str, *where: ColumnElement[bool]) -> Select[Any]:
    statement = select(*_COLUMNS).where(*where).order_by(*ORDERS[order])
    return statement.offset(bindparam("skip")).limit(bindparam("take"))


def _shape(query: Query) -> tuple[Any, ...]:
    """What a query's matches depend on: all but its page."""
    return (query.q, query.prerelease, query.semver2, query.package_type, query.view)


def _monotonic() -> float:
    return time.monotonic()  # looked up at each call: a test moves it


def _contains(column: ColumnElement[str], term: str) -> ColumnElement[bool]:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")


def _in_view(query: Query) -> ColumnElement[bool]:
    return ENTRIES.c[VIEWS[(query.prerelease, query.semver2)]].is_(true())


class Search:
    """Search on the database's text index of ``search_entries`` (module docstring).

    Download totals, which change without the id changing, are copied into the entries that rank by them
    by the process that counted them, at most once a minute (``DownloadCounter.flush``), not by a query.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.lock = threading.Lock()
        self.fts = db.url.startswith("sqlite")
        self.counts: dict[tuple[Any, ...], tuple[int, float, Hashable]] = {}  # query: total, when, generation
        self.counter = ThreadPoolExecutor(COUNTS_AHEAD, thread_name_prefix="nugat-count")
        self.counting = 0  # counts submitted to ``counter`` and not finished
        self.reserved: tuple[Hashable, list[tuple[str, int]]] | None = None  # generation, reservations
        self.built: dict[tuple[Any, ...], _Statements] = {}  # by ``_shape``
        kept: dict[str, Any] = {"seconds": RESULT_SECONDS, "generation": db.generation, "clock": _monotonic}
        # Bounded in what they hold (tens of MB at most): a page of 1,000 hits is ~1,000 times one of 1.
        self.pages: Recent[tuple[int, list[Hit]]] = Recent(
            **kept, weigh=lambda page: sum(1 + len(h.versions) for h in page[1]), budget=KEPT_VERSIONS
        )
        self.id_pages: Recent[tuple[int, list[str]]] = Recent(
            **kept, weigh=lambda page: 1 + len(page[1]), budget=KEPT_VERSIONS
        )
        # The V3 answers as sent (by query and base URL): a page asked again costs neither queries nor JSON.
        self.rendered: Recent[bytes] = Recent(**kept, weigh=len, budget=KEPT_BYTES)

    def close(self) -> None:
        """Wait for the counts under way (milliseconds each), and end their threads."""
        self.counter.shutdown()

    def _text(self, term: str) -> ColumnElement[bool]:
        """The entry's text holds ``term``: through the trigram index when the term is long enough for it."""
        if len(term) < TRIGRAM:
            return _contains(ENTRIES.c.search_text, term)
        if self.fts:
            phrase = '"' + term.replace('"', '""') + '"'
            return ENTRIES.c.id.in_(select(FTS.c.rowid).where(FTS.c.search_text.op("MATCH")(phrase)))
        return _contains(ENTRIES.c.search_text, term)

    def _condition(self, fieldname: str | None, term: str) -> ColumnElement[bool]:
        if fieldname is None:
            return self._text(term)
        if fieldname == "packageid":
            return ENTRIES.c.id_lower == term
        if fieldname == "owner":
            return _contains(ENTRIES.c.owners, f" {term} ")
        column, wanted = {
            "id": (ENTRIES.c.id_lower, term),
            "tags": (ENTRIES.c.tags, f" {term} "),
            "tag": (ENTRIES.c.tags, f" {term} "),
            "author": (ENTRIES.c.authors, term),
            "authors": (ENTRIES.c.authors, term),
            "title": (ENTRIES.c.title, term),
            "description": (ENTRIES.c.description, term),
        }[fieldname]
        # Every field's text is in search_text as well: the index narrows, the field decides.
        return and_(self._text(term), _contains(column, wanted))

    def _where(self, query: Query, terms: list[tuple[str | None, str]]) -> list[ColumnElement[bool]]:
        where = [_in_view(query), readable(query.view, ENTRIES.c.id_lower, ENTRIES.c.registration_id)]
        where += [self._condition(f, t) for f, t in terms]
        return where + _of_type(query)

    def generation(self) -> Hashable:
        """The database's generation (``Database.generation``): read once per request, before anything the
        request's answer reads, and passed down."""
        return self.db.generation()

    def search(self, query: Query, generation: Hashable | None = None) -> tuple[int, list[Hit]]:
        """``totalHits`` and the page of hits (the hits are shared with other callers: not to be changed).
        ``generation``: from ``self.generation()``, if the caller has read it already."""
        if generation is None:
            generation = self.generation()
        return self.pages.get(query, lambda: self._search(query, generation), generation)

    def _statements(self, query: Query) -> _Statements:
        key = (*_shape(query), query.order)
        with self.lock:
            known = self.built.get(key)
        if known is not None:
            return known
        terms = _terms(query.q)
        where = self._where(query, terms)
        # By relevance, an id typed in full comes first: those few are read on their own, so that the rest are
        # read in the order of the rank index (most downloaded, then by id), which stops at the page's end.
        exact = sorted({t for f, t in terms if f is None}) if query.order == "relevance" else []
        total = self._posted_total(query, terms)
        built = _Statements(
            select(*_COLUMNS).where(*where, ENTRIES.c.id_lower.in_(exact)).order_by(*_RANK)
            if exact
            else None,
            _paged(query.order, *where),
            _paged(query.order, *where, ENTRIES.c.id_lower.not_in(exact)) if exact else None,
            total if total is not None else select(func.count()).select_from(ENTRIES).where(*where),
        )
        with self.lock:
            if len(self.built) >= MAX_BUILT:
                self.built.clear()
            self.built[key] = built
        return built

    def _posted_total(self, query: Query, terms: list[tuple[str | None, str]]) -> Select[Any] | None:
        """The count of a query's matches from PostgreSQL's word postings alone, when they answer it exactly
        (every term a plain word of letters and digits, no package type, a reader known by account): each
        term's words are found in ``search_words``, their entries by an index-only scan of the postings,
        which hold the views and the id (``readable``); an entry too large to post (migration
        ``search_postings``) is checked by its text. Else None: counted over the entries and their text
        (``pg_trgm``'s index is lossy, so each match's row is read to check it)."""
        if (
            self.fts
            or not terms
            or query.package_type is not None
            or isinstance(query.view.reader, KeyGrant)
            or any(f is not None or not _POSTED_TERM.fullmatch(t) for f, t in terms)
        ):
            return None
        in_view = POSTINGS.c[VIEWS[(query.prerelease, query.semver2)]].is_(true())
        # ``readable`` reads the id only for a key's reader (left out above).
        seen = readable(query.view, ENTRIES.c.id_lower, POSTINGS.c.registration_id)

        def holding(term: str) -> Subquery:
            """The entries holding ``term``: through the words that hold it, and, for the few entries too
            large to post (their one posting is the empty word), by their text."""
            posted = select(POSTINGS.c.entry_id).where(
                POSTINGS.c.word.in_(select(WORDS.c.word).where(_contains(WORDS.c.word, term))), in_view, seen
            )
            unposted = (
                select(POSTINGS.c.entry_id)
                .join(ENTRIES, ENTRIES.c.id == POSTINGS.c.entry_id)
                .where(POSTINGS.c.word == "", in_view, seen, _contains(ENTRIES.c.search_text, term))
            )
            return union_all(posted, unposted).subquery()

        held = [holding(term) for _, term in terms]
        if len(held) == 1:  # an entry holds several of a term's words: counted once (in one aggregate,
            # which sorts its ids in half the time a DISTINCT below it takes)
            return select(func.count(held[0].c.entry_id.distinct()))
        entries = intersect(*(select(h.c.entry_id) for h in held))
        return select(func.count()).select_from(entries.subquery())

    def _search(self, query: Query, generation: Hashable) -> tuple[int, list[Hit]]:
        statements = self._statements(query)
        skip, take = query.skip, max(query.take, 0)
        ahead = self._count_ahead(query, statements.total, generation)
        # No common snapshot needed (none in PostgreSQL's READ COMMITTED either): a total behind the page is
        # counted again, a hit changed between the statements left out (``_hits``). Outside a transaction,
        # the BEGIN and COMMIT round trips are saved.
        with self.db.statements() as c:
            first = c.execute(statements.exact).all() if statements.exact is not None else []
            rows = list(first[skip : skip + take])
            rest_skip, rest_take = max(0, skip - len(first)), take - len(rows)
            rest_statement = statements.others if first and statements.others is not None else statements.rest
            rest = (
                c.execute(rest_statement, {"skip": rest_skip, "take": rest_take}).all()
                if rest_take > 0
                else []
            )
            rows += rest
            hits = self._hits(c, rows, query, generation) if rows else []  # while ``ahead`` counts
            if rest_take > 0 and len(rest) < rest_take and (rest or rest_skip == 0):
                total = len(first) + rest_skip + len(rest)  # the last page: no need to count
            else:
                total = (
                    ahead.result()
                    if ahead is not None
                    else self._count(c, query, statements.total, generation)
                )
                if total < skip + len(rows):  # more than the kept total: it is out of date
                    total = self._count(c, query, statements.total, generation, fresh=True)
            return total, hits

    def _count_ahead(self, query: Query, statement: Select[Any], generation: Hashable) -> Future[int] | None:
        """The count of a query whose total is not kept, started on the ``counter`` thread pool (its own
        connection); None when it is kept or the pool is busy (then ``_count`` in the request's thread).
        Its answer is not needed on the last page: it is kept for the next ask all the same."""
        key = _shape(query)
        with self.lock:
            if self._kept(key, generation) is not None or self.counting >= COUNTS_AHEAD:
                return None
            self.counting += 1

        def count() -> int:
            try:
                with self.db.statements() as c:
                    return self._count(c, query, statement, generation)
            finally:
                with self.lock:
                    self.counting -= 1

        return self.counter.submit(count)

    def _kept(self, key: tuple[Any, ...], generation: Hashable) -> int | None:
        """The kept total of a query shape, if still good (``_count``); the caller holds ``lock``."""
        known = self.counts.get(key)
        if known is None:
            return None
        total, when, counted = known
        age = time.monotonic() - when
        return total if age < COUNT_SECONDS or (age < COUNTED_SECONDS and counted == generation) else None

    def _count(
        self,
        c: Connection,
        query: Query,
        statement: Select[Any],
        generation: Hashable,
        *,
        fresh: bool = False,
    ) -> int:
        """How many entries match: counted in the database, which reads every match (tens of milliseconds
        for tens of thousands of them), so kept per query and view in this process: exact while nothing
        search shows has changed (``generation``, read before ``c``'s first query: a change committed
        meanwhile moves the next one; up to COUNTED_SECONDS), else for COUNT_SECONDS (``totalHits`` of a
        large result may lag a change by that long, and as long again in a kept page: a second; the hits
        themselves never do)."""
        key = _shape(query)
        now = time.monotonic()
        if not fresh:
            with self.lock:
                kept = self._kept(key, generation)
            if kept is not None:
                return kept
        total = int(c.execute(statement).scalar_one())
        with self.lock:
            if len(self.counts) >= MAX_COUNTS:
                self.counts.clear()
            self.counts[key] = (total, now, generation)
        return total

    def _hits(self, c: Connection, rows: Sequence[Any], query: Query, generation: Hashable) -> list[Hit]:
        """The hits of these entries: each id's versions in the view, its latest's details, owners."""
        statement = _hit_details(self.fts, query.prerelease, query.semver2)
        params = {"rids": [r.registration_id for r in rows], "latest": [r.version_id for r in rows]}
        details = {rid: rest for rid, *rest in c.execute(statement, params)}
        found = self._reservations(c, generation)
        hits = []
        for row in rows:
            versions, metadata, owners = details.get(row.registration_id, ("[]", None, None))
            shown = orjson.loads(versions)
            shown.sort(key=_by_version)
            latest = None
            for n, r in enumerate(shown):  # the version's id last, where its details go
                if r[7] == row.version_id:
                    r[7] = (orjson.loads(metadata) if metadata is not None else None) or NO_DETAILS
                    latest = n
                else:
                    r[7] = NO_DETAILS
            if latest is None:  # changed since the entries were read: the next query has it right
                continue
            infos = [VersionInfo._make(r) for r in shown]
            mine = orjson.loads(owners) if owners is not None else []
            holders = reserving_owners(row.package_id, found) if found else frozenset()
            hits.append(
                Hit(
                    RegInfo(row.package_id, row.id_lower, row.downloads),
                    infos[latest],
                    infos,
                    sorted(name for _, name in mine),
                    bool(holders) and any(a in holders for a, _ in mine),
                )
            )
        return hits

    def _reservations(self, c: Connection, generation: Hashable) -> list[tuple[str, int]]:
        """The prefix reservations (``services.reservations``), read again only when the generation moves:
        every change of them moves it (``Prefixes.reserve``, ``release``)."""
        kept = self.reserved
        if kept is None or kept[0] != generation:
            kept = self.reserved = (generation, reservations(c))
        return kept[1]

    def count_versions(self, query: Query, *, listed_prerelease: bool) -> int:
        """How many listed versions the ids matching ``query`` have in its view (prerelease ones only if
        ``listed_prerelease``): one aggregate in the database."""
        matching = select(ENTRIES.c.registration_id).where(*self._where(query, _terms(query.q)))
        where = [VERSIONS.c.registration_id.in_(matching), VERSIONS.c.listed.is_(true())]
        if not listed_prerelease:
            where.append(VERSIONS.c.is_prerelease.is_(false()))
        if not query.semver2:
            where.append(VERSIONS.c.is_semver2.is_(false()))
        with self.db.read_transaction() as c:
            return int(c.execute(select(func.count()).select_from(VERSIONS).where(*where)).scalar_one())

    def autocomplete_ids(self, query: Query) -> tuple[int, list[str]]:
        return self.id_pages.get(query, lambda: self._autocomplete_ids(query))

    def _autocomplete_ids(self, query: Query) -> tuple[int, list[str]]:
        q = query.q.lower()
        where = [_in_view(query), readable(query.view, ENTRIES.c.id_lower, ENTRIES.c.registration_id)]
        if q:
            where.append(and_(self._text(q), _contains(ENTRIES.c.id_lower, q)))
        where += _of_type(query)
        starts = case((ENTRIES.c.id_lower.startswith(q, autoescape=True), 0), else_=1)
        with self.db.read_transaction() as c:
            total = int(c.execute(select(func.count()).select_from(ENTRIES).where(*where)).scalar_one())
            ids = c.execute(
                select(ENTRIES.c.package_id)
                .where(*where)
                .order_by(starts, ENTRIES.c.id_lower)
                .offset(query.skip)
                .limit(max(query.take, 0))
            ).scalars()
            return total, list(ids)

    def autocomplete_versions(self, package_id: str, query: Query) -> list[str]:
        view = (query.prerelease, query.semver2)
        with self.db.read_transaction() as c:
            rows = [
                tuple(r)
                for r in c.execute(
                    select(*_VERSION_COLUMNS)
                    .join(REGS, REGS.c.id == VERSIONS.c.registration_id)
                    .where(REGS.c.id_lower == package_id.lower(), VERSIONS.c.listed.is_(true()))
                )
            ]
        shown = sorted((r for r in rows if _row_in_view(r, view)), key=lambda r: version_key(r[3]))
        return [r[5] if query.semver2 else r[3] for r in shown]
