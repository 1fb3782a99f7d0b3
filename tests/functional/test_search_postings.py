"""PostgreSQL's word postings (migration ``search_postings``): a search's total counted from them is the
count over the entries' text, for every view and reader, through every kind of change of the entries."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text, update

from functional.test_search_engines import Feed
from nugat.authz import User
from nugat.db.models import SearchEntry, table
from nugat.services.readers import ANONYMOUS, ReadView
from nugat.services.search import Query, _terms
from support.server import postgres_database

ENTRIES = table(SearchEntry)
# A word of 450 characters: a term is found wherever it is in it, across the 200-character pieces it is
# held as (``needle`` at 197 spans the second piece's start, ``tail`` ends the word).
LONG = "x" * 197 + "needle" + "y" * 243 + "tail"
# Too large to post (a word of more than 1,000 characters; more than 1,000 words): checked by their text.
HUGE_WORD = "x" * 3000 + "needle" + "z" * 2000
MANY_WORDS = " ".join(f"w{n}" for n in range(1200)) + " json"
QUERIES = [
    "json",
    "son",
    "JSON reads",
    "xyz",
    "needle",
    "tail",
    "x" * 100,  # the longest term the postings count
    "y" * 60 + "tail",
    "lib",
    "lib json",
    "helpers xml",
    "reader",
    "nothing",
    "zzz",
    "w1199",
    "w119",
]


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[Feed]:
    with contextlib.ExitStack() as stack:
        made = Feed(tmp_path, stack.enter_context(postgres_database()))
        stack.callback(made.close)
        made.push("alice", "Json.Reader", "1.0.0", "Reads JSON fast", "json parser")
        made.push("alice", "Json.Reader", "1.1.0-beta", "Reads JSON faster", "json parser")
        made.push("alice", "Json.Reader", "2.0.0-rc.1", "Reads JSON, lib", "json")
        made.push("alice", "Json.Writer", "2.0.0", f"Writes JSON {LONG}")
        made.push("bob", "Xml.Tools", "3.0.0", "XML helpers, a json lib", "xml")
        made.push("bob", "Long.Words", "1.0.0", f"{LONG} and {LONG.upper()}")
        made.push("bob", "Huge.Word", "1.0.0", f"A {HUGE_WORD}")
        made.push("bob", "Many.Words", "1.0.0", MANY_WORDS)
        yield made


def readers(feed: Feed) -> list[ReadView]:
    with feed.core.db.statements() as c:
        bob_id = c.execute(text("SELECT id FROM accounts WHERE name = 'bob'")).scalar_one()
    return [ANONYMOUS, ReadView(User(bob_id, "bob"), public_site=False)]


def totals(feed: Feed, query: Query) -> tuple[int, int]:
    """(posted, over the entries' text) for ``query``."""
    search = feed.other.search
    terms = _terms(query.q)
    posted = search._posted_total(query, terms)
    assert posted is not None, query
    over_text = select(func.count()).select_from(ENTRIES).where(*search._where(query, terms))
    with feed.other.db.statements() as c:
        return int(c.execute(posted).scalar_one()), int(c.execute(over_text).scalar_one())


def assert_same_totals(feed: Feed) -> int:
    """Every query, view and reader: the postings' total is the text's. The sum of the totals (so that a
    test sees the totals move)."""
    seen = 0
    for view in readers(feed):
        for q in QUERIES:
            for prerelease in (False, True):
                for semver2 in (False, True):
                    query = Query(q=q, prerelease=prerelease, semver2=semver2, view=view)
                    posted, over_text = totals(feed, query)
                    assert posted == over_text, query
                    seen += posted
    return seen


def test_posted_totals_are_the_texts_through_every_change(feed: Feed) -> None:
    first = assert_same_totals(feed)
    with feed.core.db.transaction() as c:  # the two largest texts: one empty word each
        unposted = c.execute(
            text(
                "SELECT e.id_lower, p.word FROM search_postings p JOIN search_entries e ON e.id = p.entry_id"
                " WHERE e.id_lower IN ('huge.word', 'many.words') ORDER BY 1"
            )
        ).all()
    assert [tuple(row) for row in unposted] == [("huge.word", ""), ("many.words", "")]
    assert totals(feed, Query(q="needle"))[0] == 3
    assert totals(feed, Query(q="w1199"))[0] == 1
    assert totals(feed, Query(q="json", prerelease=True, semver2=True))[0] == 4  # Many.Words too
    feed.core.packages.set_listed("Json.Writer", "2.0.0", False, feed.grants["alice"])
    assert totals(feed, Query(q="needle"))[0] == 2
    assert_same_totals(feed)
    feed.core.packages.set_listed("Json.Writer", "2.0.0", True, feed.grants["alice"])
    feed.push("bob", "Json.Third", "1.0.0", "More JSON")
    assert assert_same_totals(feed) > first
    with feed.core.db.transaction() as c:  # a private owner: counted for bob only
        c.execute(text("UPDATE accounts SET private_packages = true WHERE name = 'bob'"))
    _, bob = readers(feed)
    assert totals(feed, Query(q="helpers"))[0] == 0
    assert totals(feed, Query(q="helpers", view=bob))[0] == 1
    assert_same_totals(feed)
    with feed.core.db.transaction() as c:  # an update of what postings hold, and one of a count only
        c.execute(update(ENTRIES).where(ENTRIES.c.id_lower == "xml.tools").values(search_text="yaml tools"))
        c.execute(update(ENTRIES).values(downloads=ENTRIES.c.downloads + 1))
    assert totals(feed, Query(q="yaml", view=bob))[0] == 1
    assert totals(feed, Query(q="helpers", view=bob))[0] == 0
    assert_same_totals(feed)
    with feed.core.db.transaction() as c:
        c.execute(update(ENTRIES).where(ENTRIES.c.id_lower == "xml.tools").values(in_release=False))
    assert totals(feed, Query(q="yaml", view=bob))[0] == 0
    assert totals(feed, Query(q="yaml", prerelease=True, view=bob))[0] == 1
    assert_same_totals(feed)
    with feed.core.db.transaction() as c:
        c.execute(delete(ENTRIES).where(ENTRIES.c.id_lower.in_(["long.words", "huge.word"])))
    assert totals(feed, Query(q="needle"))[0] == 1
    assert_same_totals(feed)
    with feed.core.db.transaction() as c:  # no posting outlives its entry
        orphans = (
            "SELECT count(*) FROM search_postings p WHERE p.entry_id NOT IN (SELECT id FROM search_entries)"
        )
        assert c.execute(text(orphans)).scalar_one() == 0


def test_what_the_postings_cannot_count_exactly_is_counted_over_the_text(feed: Feed) -> None:
    search = feed.other.search
    for q in ("x" * 101, "js", "json.reader", "owner:alice json", "tags:json", "a_b", "jsön", ""):
        assert search._posted_total(Query(q=q), _terms(q)) is None, q
    assert search._posted_total(Query(q="json", package_type="Dependency"), _terms("json")) is None
    by_key = ReadView(feed.grants["alice"], public_site=False)  # a key's packages are known by id
    assert search._posted_total(Query(q="json", view=by_key), _terms("json")) is None
    total, _ = search.search(Query(q="x" * 101, take=1))
    assert total == 3  # Json.Writer, Long.Words and Huge.Word, each holding 197 x's in a row


def test_the_migration_posts_the_entries_already_there(feed: Feed) -> None:
    """Down to the revision before (no postings) and up again: the migration fills them in."""
    from alembic import command
    from alembic.config import Config

    from nugat.db import MIGRATIONS

    before = assert_same_totals(feed)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with feed.core.db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "account_ids")
        assert conn.execute(text("SELECT to_regclass('search_postings')")).scalar_one() is None
        command.upgrade(cfg, "head")
    assert assert_same_totals(feed) == before > 0
