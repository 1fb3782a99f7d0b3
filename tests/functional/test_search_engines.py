"""Search on the database's own index (issue 16), on PostgreSQL (pg_trgm) and SQLite (FTS5 trigram): the
same answers on both, a change visible to another process at its next query, and V2 paging that reads
only the ids of the page asked for."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, event

from functional.test_feed_http import nupkg
from nugat.core import Core
from nugat.db import search_changed
from nugat.db.models import SearchEntry
from nugat.keys import KeyGrant
from nugat.protocol.v2.queries import Filter, V2Queries
from nugat.services.search import Query
from nugat.settings import Settings
from support.server import postgres_database


class Feed:
    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path = tmp_path
        self.core = Core(Settings(data_dir=tmp_path, database_url=url))
        self.other = Core(Settings(data_dir=tmp_path, database_url=url))  # another process
        self.core.db.upgrade()
        self.grants: dict[str, KeyGrant] = {}
        for name in ("alice", "bob"):
            self.core.accounts.create_user(name, f"{name}@example.test", None)
            _, key = self.core.accounts.create_key(name, "k", ["push", "unlist"], ["*"], [], 30)
            self.grants[name], _ = self.core.accounts.verify_key(key, "127.0.0.1")

    def push(
        self, who: str, package_id: str, version: str, description: str = "A package", tags: str = ""
    ) -> None:
        upload = self.tmp_path / "upload.nupkg"
        upload.write_bytes(nupkg(package_id, version, description=description, tags=tags))
        self.core.packages.push(upload, self.grants[who])

    def found(self, q: str = "", **flags: object) -> list[str]:
        _, hits = self.other.search.search(Query(q=q, **flags))  # type: ignore[arg-type]
        return [f"{h.registration.package_id} {h.latest.version}" for h in hits]

    def close(self) -> None:
        self.core.close()
        self.other.close()


@pytest.fixture(params=["sqlite", "postgres"])
def feed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Feed]:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if request.param == "postgres" else None
        made = Feed(tmp_path, url or f"sqlite:///{tmp_path / 'nugat.db'}")
        stack.callback(made.close)
        made.push("alice", "Json.Reader", "1.0.0", "Reads JSON, 100% fast_path", "json parser")
        made.push("alice", "Json.Reader", "1.1.0-beta", "Reads JSON, 100% fast_path", "json parser")
        made.push("alice", "Json.Reader", "2.0.0-rc.1", "Reads JSON, 100% fast_path", "json parser")
        made.push("alice", "Json.Writer", "2.0.0", 'Writes "quoted" JSON')
        made.push("bob", "Xml.Tools", "3.0.0", "XML helpers", "xml")
        yield made


def test_words_fields_and_views(feed: Feed) -> None:
    assert feed.found("json") == ["Json.Reader 1.0.0", "Json.Writer 2.0.0"]
    assert feed.found("JSON reads") == ["Json.Reader 1.0.0"]  # every word, any case
    assert feed.found("son.wr") == ["Json.Writer 2.0.0"]  # a piece of a word
    assert feed.found("ml") == ["Xml.Tools 3.0.0"]  # shorter than a trigram: found all the same
    assert feed.found("100%") == ["Json.Reader 1.0.0"]  # LIKE's wildcards are plain characters
    assert feed.found("%") == ["Json.Reader 1.0.0"]
    assert feed.found("a_t") == []  # not "ast"
    assert feed.found("s_") == []  # not "st"
    assert feed.found("fast_path") == ["Json.Reader 1.0.0"]
    assert feed.found('"quoted"') == ["Json.Writer 2.0.0"]  # FTS5's quote is a plain character
    assert feed.found("id:writer") == ["Json.Writer 2.0.0"]
    assert feed.found("packageid:json.reader") == ["Json.Reader 1.0.0"]
    assert feed.found("packageid:json") == []
    assert feed.found("tags:parser") == ["Json.Reader 1.0.0"]
    assert feed.found("tags:pars") == []
    assert feed.found("author:an") == ["Json.Reader 1.0.0", "Json.Writer 2.0.0", "Xml.Tools 3.0.0"]
    assert feed.found("owner:bob") == ["Xml.Tools 3.0.0"]
    assert feed.found("owner:alice json") == ["Json.Reader 1.0.0", "Json.Writer 2.0.0"]
    assert feed.found("reader", prerelease=True) == ["Json.Reader 1.1.0-beta"]
    assert feed.found("reader", prerelease=True, semver2=True) == ["Json.Reader 2.0.0-rc.1"]
    total, hits = feed.other.search.search(Query(q="", skip=1, take=1))
    assert (total, [h.registration.package_id for h in hits]) == (3, ["Json.Writer"])
    assert feed.other.search.autocomplete_ids(Query(q="json")) == (2, ["Json.Reader", "Json.Writer"])
    assert feed.other.search.autocomplete_ids(Query(q="ls")) == (1, ["Xml.Tools"])


def test_changes_are_seen_by_another_process_at_its_next_query(feed: Feed) -> None:
    assert feed.found("yaml") == []
    feed.push("bob", "Yaml.Reader", "1.0.0")
    assert feed.found("yaml") == ["Yaml.Reader 1.0.0"]
    feed.core.packages.set_listed("Yaml.Reader", "1.0.0", False, feed.grants["bob"])
    assert feed.found("yaml") == []
    feed.core.packages.set_listed("Yaml.Reader", "1.0.0", True, feed.grants["bob"])
    assert feed.found("yaml") == ["Yaml.Reader 1.0.0"]
    assert feed.found("owner:alice yaml") == []
    feed.core.owners.add("Yaml.Reader", "alice")  # by the command line
    assert feed.found("owner:alice yaml") == ["Yaml.Reader 1.0.0"]


def test_v2_pages_over_versions_read_only_the_page(feed: Feed) -> None:
    for n in range(7):
        for v in ("1.0.0", "1.1.0", "2.0.0-beta"):
            feed.push("bob", f"Paged.Lib{n}", v)
    v2 = V2Queries(feed.other.db, feed.other.search)
    total, everything = v2.search("paged", True, False, Filter(), 0, 1000)
    assert total == len(everything) == 21
    for skip, top in ((0, 5), (4, 5), (5, 10), (19, 5), (21, 5)):
        got_total, page = v2.search("paged", True, False, Filter(), skip, top)
        assert got_total == 21
        assert [(p.package_id, p.row.version) for p in page] == [
            (p.package_id, p.row.version) for p in everything[skip : skip + top]
        ]
    total, stable = v2.search("paged", False, False, Filter(), 2, 3)
    assert total == 14 and [p.row.version for p in stable] == ["1.0.0", "1.1.0", "1.0.0"]
    total, latest = v2.search("paged", False, False, Filter(latest=True), 0, 100)
    assert total == 7 and {p.row.version for p in latest} == {"1.1.0"}
    total, newest = v2.search("paged", True, False, Filter(absolute_latest=True), 5, 100)
    assert total == 7 and [p.row.version for p in newest] == ["2.0.0-beta", "2.0.0-beta"]
    total, ones = v2.search("paged", False, False, Filter(version="1.1"), 0, 3)
    assert total == 7 and [p.row.version for p in ones] == ["1.1.0"] * 3


def test_totals_of_a_last_page_are_exact_and_large_ones_lag_a_second_at_most(
    feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    search = feed.other.search
    assert search.search(Query(q="", take=1))[0] == 3  # counted (then kept for a second)
    feed.push("bob", "Yaml.Reader", "1.0.0")
    assert search.search(Query(q="", take=10))[0] == 4  # the last page: never a kept count
    clock = [time.monotonic() + 100]  # later than the first count was kept
    monkeypatch.setattr("nugat.services.search.time.monotonic", lambda: clock[0])
    assert search.search(Query(q="", take=1))[0] == 4
    feed.push("bob", "Yaml.Writer", "1.0.0")
    assert search.search(Query(q="", take=1))[0] == 4  # kept
    clock[0] += 1.01
    assert search.search(Query(q="", take=1))[0] == 5
    assert search.search(Query(q="", skip=4, take=1))[0] == 5


def counts_finished(core: Core) -> None:
    """Wait (up to ten seconds, counted in sleeps: the clock may be frozen) for the counts ``Search``
    started on its own threads to end."""
    for _ in range(1000):
        if not core.search.counting:
            break
        time.sleep(0.01)
    assert core.search.counting == 0


def test_a_page_asked_again_is_read_once_until_search_changes(
    feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Repeated searches reuse the page read first, as long as no process committed a change to what
    search finds since (other commits do not matter)."""
    read: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "search_entries" in statement and statement.lstrip().startswith("SELECT"):
            read.append(statement)

    event.listen(feed.other.db.reader, "before_cursor_execute", record)
    with monkeypatch.context() as frozen:  # within a kept page's half second, however slow the machine
        now = time.monotonic()
        frozen.setattr("nugat.services.search.time.monotonic", lambda: now)
        assert feed.found("json") == ["Json.Reader 1.0.0", "Json.Writer 2.0.0"]
        counts_finished(feed.other)  # a last page's total is still counted beside it, to be kept
        first = len(read)
        assert first > 0
        assert feed.found("json") == ["Json.Reader 1.0.0", "Json.Writer 2.0.0"]
        feed.core.accounts.create_user("carol", "carol@example.test", None)  # changes nothing search shows
        assert feed.found("json") == ["Json.Reader 1.0.0", "Json.Writer 2.0.0"]
        assert len(read) == first  # not read again
    assert feed.found("xml") == ["Xml.Tools 3.0.0"]  # another page: read
    assert len(read) > first
    before = feed.other.db.generation()
    feed.core.packages.set_listed("Json.Writer", "2.0.0", False, feed.grants["alice"])  # by another process
    assert feed.other.db.generation() != before
    assert feed.found("json") == ["Json.Reader 1.0.0"]
    before = feed.other.db.generation()
    feed.push("bob", "Json.Third", "1.0.0", "More JSON")
    assert feed.found("json") == ["Json.Reader 1.0.0", "Json.Third 1.0.0"]
    feed.core.owners.add("Json.Third", "alice")
    assert feed.found("owner:alice third") == ["Json.Third 1.0.0"]
    with pytest.raises(RuntimeError), feed.core.db.transaction() as c:  # a change rolled back: no move
        c.execute(delete(SearchEntry))
        search_changed(c)
        raise RuntimeError("rolled back")
    moved = feed.other.db.generation()
    with feed.core.db.transaction() as c:
        c.exec_driver_sql("SELECT 1")  # the connection that rolled back: its note went with the rollback
    assert feed.other.db.generation() == moved != before
    assert feed.found("json") == ["Json.Reader 1.0.0", "Json.Third 1.0.0"]


def test_a_count_stays_exact_while_nothing_search_shows_changes(
    feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().startswith("SELECT count(*)"):
            counted.append(statement)

    event.listen(feed.other.db.reader, "before_cursor_execute", record)
    clock = [time.monotonic()]
    monkeypatch.setattr("nugat.services.search.time.monotonic", lambda: clock[0])
    search = feed.other.search
    assert search.search(Query(q="", take=1))[0] == 3
    assert len(counted) == 1
    clock[0] += 30  # long after COUNT_SECONDS, nothing changed: the count is still right
    assert search.search(Query(q="", take=1))[0] == 3
    assert len(counted) == 1
    feed.push("bob", "Yaml.Reader", "1.0.0")
    clock[0] += 1
    assert search.search(Query(q="", take=1))[0] == 4  # counted again
    assert len(counted) == 2
    clock[0] += 61  # however unchanged, a count is not kept longer than a minute
    assert search.search(Query(q="", take=1))[0] == 4
    assert len(counted) == 3


def test_a_page_reads_its_hits_in_one_statement_and_the_reservations_once_a_generation(feed: Feed) -> None:
    """A page of hits costs the entries' statements and one more for all its ids' versions, latest details
    and owners (not one each); the prefix reservations are read again only after a change."""
    read: list[str] = []
    tables = ("search_entries", "package_versions", "package_owners", "reserved_prefixes")

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if any(name in statement for name in tables):
            read.append(statement)

    event.listen(feed.other.db.reader, "before_cursor_execute", record)
    assert feed.found("json", prerelease=True) == ["Json.Reader 1.1.0-beta", "Json.Writer 2.0.0"]
    assert sum("reserved_prefixes" in s for s in read) == 1
    details = [s for s in read if "package_versions" in s]
    assert len(details) == 1 and "package_owners" in details[0]
    read.clear()
    assert feed.found("xml") == ["Xml.Tools 3.0.0"]  # another page, nothing changed
    assert not any("reserved_prefixes" in s for s in read)
    feed.core.prefixes.reserve("Xml.*", ["bob"])
    _, [hit] = feed.other.search.search(Query(q="xml", take=5))
    assert hit.verified
