"""``services.search``: what a query finds among listed versions (words, fields, views), in what order, and
that the in-process index follows every change on the database."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, text

from nugat.services.search import COUNTS_AHEAD, Query
from support.services import Clock, Site

TEMPLATE = '<packageTypes><packageType name="Template" /></packageTypes>'


@pytest.fixture
def feed(site: Site) -> Site:
    """Json.Reader 1.0.0 / 1.1.0-beta / 2.0.0-rc.1 (SemVer 2), Json.Writer 2.0.0, Xml.Tools (a template),
    pushed by alice (Json.*) and bob (Xml.Tools)."""
    site.users("alice", "bob")
    alice, bob = site.key("alice"), site.key("bob")
    reader = {
        "description": "Reads JSON fast",
        "authors": "Ada Lovelace",
        "extra": "<tags>json parser</tags>",
    }
    site.push(alice, "Json.Reader", "1.0.0", **reader)
    site.push(alice, "Json.Reader", "1.1.0-beta", **reader)
    site.push(alice, "Json.Reader", "2.0.0-rc.1", **reader)
    site.push(alice, "Json.Writer", "2.0.0", description="Writes JSON", authors="John Roe")
    site.push(bob, "Xml.Tools", "3.0.0", description="XML helpers", extra=f"<title>XML Kit</title>{TEMPLATE}")
    return site


def found(site: Site, q: str = "", **flags: object) -> list[tuple[str, str]]:
    _, hits = site.core.search.search(Query(q=q, **flags))  # type: ignore[arg-type]
    return [(h.registration.package_id, h.latest.version) for h in hits]


def test_words_match_id_title_tags_description_and_authors(feed: Site) -> None:
    assert found(feed, "json") == [("Json.Reader", "1.0.0"), ("Json.Writer", "2.0.0")]
    assert found(feed, "kit") == [("Xml.Tools", "3.0.0")]  # the title
    assert found(feed, "parser") == [("Json.Reader", "1.0.0")]  # a tag
    assert found(feed, "JOHN") == [("Json.Writer", "2.0.0")]  # an author, any case
    assert found(feed, "json writes") == [("Json.Writer", "2.0.0")]  # every word must match
    assert found(feed, "nothing-like-this") == []


@pytest.mark.parametrize(
    ("q", "ids"),
    [
        ("id:reader", ["Json.Reader"]),
        ("packageid:json.writer", ["Json.Writer"]),
        ("packageid:json", []),  # the whole id
        ("tags:parser", ["Json.Reader"]),
        ("tag:pars", []),  # a whole tag
        ("author:ada", ["Json.Reader"]),
        ("title:kit", ["Xml.Tools"]),
        ("description:writes", ["Json.Writer"]),
        ("owner:bob", ["Xml.Tools"]),
        ("owner:alice json", ["Json.Reader", "Json.Writer"]),
        ("id:", ["Json.Reader", "Json.Writer", "Xml.Tools"]),  # an empty field matches all
    ],
)
def test_fields(feed: Site, q: str, ids: list[str]) -> None:
    assert [package_id for package_id, _ in found(feed, q)] == ids


def test_each_view_shows_its_latest_version(feed: Site) -> None:
    assert found(feed, "reader") == [("Json.Reader", "1.0.0")]
    assert found(feed, "reader", prerelease=True) == [("Json.Reader", "1.1.0-beta")]
    assert found(feed, "reader", semver2=True) == [("Json.Reader", "1.0.0")]
    assert found(feed, "reader", prerelease=True, semver2=True) == [("Json.Reader", "2.0.0-rc.1")]
    _, [hit] = feed.core.search.search(Query(q="reader", prerelease=True))
    assert [v.version for v in hit.versions] == ["1.0.0", "1.1.0-beta"]


def test_unlisted_versions_are_not_found(feed: Site) -> None:
    grant = feed.key("alice")
    feed.unlist(grant, "Json.Writer", "2.0.0")
    feed.unlist(grant, "Json.Reader", "1.0.0")
    assert found(feed, "json") == []  # no listed stable version left
    assert found(feed, "json", prerelease=True) == [("Json.Reader", "1.1.0-beta")]
    feed.relist(grant, "Json.Writer", "2.0.0")
    assert found(feed, "json") == [("Json.Writer", "2.0.0")]


def test_the_index_follows_pushes_made_after_the_first_query(feed: Site) -> None:
    assert found(feed, "yaml") == []
    feed.push(feed.key("bob"), "Yaml.Reader", "1.0.0")
    assert found(feed, "yaml") == [("Yaml.Reader", "1.0.0")]
    feed.push(feed.key("bob"), "Yaml.Reader", "1.1.0")
    assert found(feed, "yaml") == [("Yaml.Reader", "1.1.0")]


def test_most_downloaded_first_an_exact_id_before_all(feed: Site, clock: Clock) -> None:
    assert found(feed, "") == [("Json.Reader", "1.0.0"), ("Json.Writer", "2.0.0"), ("Xml.Tools", "3.0.0")]
    for _ in range(3):
        feed.core.downloads.count("xml.tools", "3.0.0")
    feed.core.downloads.count("json.writer", "2.0.0")
    feed.core.downloads.flush()  # a process's first flush copies the totals into search at once
    assert [p for p, _ in found(feed, "")] == ["Xml.Tools", "Json.Writer", "Json.Reader"]
    feed.push(feed.key("bob"), "Json", "1.0.0")
    assert [p for p, _ in found(feed, "json")] == ["Json", "Json.Writer", "Json.Reader"]


def test_download_totals_reach_search_once_a_minute(feed: Site, clock: Clock) -> None:
    counter = feed.core.downloads
    counter.count("json.writer", "2.0.0")
    counter.flush()  # copied at once: the process's first
    assert found(feed, "")[0][0] == "Json.Writer"
    for _ in range(2):
        counter.count("xml.tools", "3.0.0")
    counter.flush()
    clock.advance(seconds=30)
    counter.flush()
    assert found(feed, "")[0][0] == "Json.Writer"  # counted, not in search yet
    clock.advance(seconds=31)
    counter.flush()  # nothing new to write: the totals counted meanwhile are copied
    assert found(feed, "")[0][0] == "Xml.Tools"


def test_a_copy_of_download_totals_touches_only_the_ids_counted(feed: Site) -> None:
    with feed.core.db.transaction() as c:  # totals search has not taken (as if counted by another process)
        c.execute(
            text("UPDATE package_registrations SET total_downloads = 50 WHERE id_lower = :i"),
            {"i": "json.reader"},
        )
    feed.core.downloads.count("xml.tools", "3.0.0")
    feed.core.downloads.flush()
    assert [p for p, _ in found(feed, "")] == ["Xml.Tools", "Json.Reader", "Json.Writer"]
    with feed.core.db.transaction() as c:
        ranks = dict(c.execute(text("SELECT id_lower, downloads FROM search_entries")).all())
    assert ranks == {"json.reader": 0, "json.writer": 0, "xml.tools": 1}


def test_a_stop_copies_what_the_process_counted(feed: Site) -> None:
    counter = feed.core.downloads
    counter.count("json.writer", "2.0.0")
    counter.flush()
    counter.count("xml.tools", "3.0.0")
    counter.count("xml.tools", "3.0.0")
    counter.flush()
    assert found(feed, "")[0][0] == "Json.Writer"
    counter.flush(stopping=True)
    assert found(feed, "")[0][0] == "Xml.Tools"


def test_skip_take_and_the_total(feed: Site) -> None:
    total, hits = feed.core.search.search(Query(q="", skip=1, take=1))
    assert (total, [h.registration.package_id for h in hits]) == (3, ["Json.Writer"])


def counted_on(site: Site) -> list[str]:
    """The names of the threads that run search's counts from now on."""
    threads: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("SELECT count(*)"):
            threads.append(threading.current_thread().name)

    event.listen(site.core.db.reader, "before_cursor_execute", seen)
    return threads


def test_a_total_not_kept_is_counted_beside_the_page_then_kept(feed: Site) -> None:
    """The count reads every match, the page only its first few: a total not kept is counted on another
    connection while the page is read (the two cost the longer of them, not the sum)."""
    threads = counted_on(feed)
    search = feed.core.search
    total, hits = search.search(Query(q="", take=1))
    assert (total, [h.registration.package_id for h in hits]) == (3, ["Json.Reader"])
    assert len(threads) == 1 and threads[0].startswith("nugat-count")
    assert search.search(Query(q="", skip=1, take=1))[0] == 3  # kept: not counted again
    assert len(threads) == 1
    assert search.counting == 0


def test_with_counts_under_way_a_search_counts_in_its_own_thread(feed: Site) -> None:
    threads = counted_on(feed)
    search = feed.core.search
    search.counting = COUNTS_AHEAD  # as if that many were counting for other searches
    assert search.search(Query(q="json", take=1))[0] == 2
    assert threads == [threading.current_thread().name]


def test_package_type(feed: Site) -> None:
    assert found(feed, "", package_type="template") == [("Xml.Tools", "3.0.0")]
    assert [p for p, _ in found(feed, "", package_type="Dependency")] == ["Json.Reader", "Json.Writer"]


def test_autocomplete(feed: Site) -> None:
    feed.push(feed.key("bob"), "My.Json", "1.0.0")
    assert feed.core.search.autocomplete_ids(Query(q="json")) == (
        3,
        ["Json.Reader", "Json.Writer", "My.Json"],
    )
    assert feed.core.search.autocomplete_ids(Query(q="json", take=1)) == (3, ["Json.Reader"])
    search = feed.core.search
    assert search.autocomplete_versions("json.reader", Query()) == ["1.0.0"]
    assert search.autocomplete_versions("json.reader", Query(prerelease=True)) == ["1.0.0", "1.1.0-beta"]
    assert search.autocomplete_versions("Json.Reader", Query(prerelease=True, semver2=True)) == [
        "1.0.0",
        "1.1.0-beta",
        "2.0.0-rc.1",
    ]
    assert search.autocomplete_versions("no.such", Query()) == []


def test_nul_characters_are_dropped_from_queries(feed: Site) -> None:
    # No stored text holds one, and the databases fail on them (FTS5 stops at a NUL, PostgreSQL refuses it).
    assert found(feed, "json\x00.reader\x00") == found(feed, "json.reader") != []
    assert feed.core.search.search(Query(q="\x00\ufffd\ufffd"))[0] == 0
    assert found(feed, "", package_type="\x00") == []
    autocomplete = feed.core.search.autocomplete_ids
    assert autocomplete(Query(q="js\x00on")) == autocomplete(Query(q="json")) != (0, [])
