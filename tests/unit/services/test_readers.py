"""``services.readers``: a presented key as a reader (or why not, as 401), the facts kept for at most the
cache time, and ``readable``: the read rule in SQL, which search filters on, agreeing with ``authz``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from nugat import authz, keys
from nugat.authz import User
from nugat.db import Database
from nugat.db.models import Account
from nugat.services.accounts import Accounts
from nugat.services.orgs import Orgs
from nugat.services.readers import FAILED_READ_LIMIT, Readers, ReadRefused, ReadView
from nugat.services.search import Query
from support.services import Clock, Site, refused

IDS = ["Acme.Lib", "Contoso.Secret", "Contoso.Tools", "Other.Thing"]


def account_id(site: Site, name: str) -> int:
    with site.core.db.reading() as s:
        found = s.scalar(select(Account.id).where(Account.name == name))
    assert found is not None
    return found


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic(monkeypatch: pytest.MonkeyPatch) -> Monotonic:
    ticking = Monotonic()
    monkeypatch.setattr("nugat.services.readers.time.monotonic", ticking)
    return ticking


@pytest.fixture
def feed(site: Site) -> Site:
    """bob pushed Acme.Lib and Other.Thing; the private organization contoso (alice a member, carol not)
    owns Contoso.Secret and Contoso.Tools."""
    site.users("alice", "bob", "carol")
    site.core.orgs.create("contoso", "alice")
    bob = site.key("bob")
    site.push(bob, "Acme.Lib")
    site.push(bob, "Other.Thing")
    contoso = site.key("alice", owner="contoso")
    site.push(contoso, "Contoso.Secret")
    site.push(contoso, "Contoso.Tools")
    site.core.orgs.set_private("contoso", True)
    return site


def test_a_read_key_is_a_reader_acting_for_its_owner_and_the_owners_organizations(feed: Site) -> None:
    secret = feed.secret("alice", "read", globs=("Contoso.*",))
    reader = feed.core.readers.reader_of_key(secret)
    assert reader.scopes == frozenset({"read"})
    assert authz.reads_for(reader) == {account_id(feed, "alice"), account_id(feed, "contoso")}


def test_a_dead_key_is_refused_with_401_and_its_reason(feed: Site, clock: Clock) -> None:
    readers = feed.core.readers
    with pytest.raises(
        ReadRefused, match=r"^The API key is not a nugat API key: it is mistyped or cut short$"
    ):
        readers.reader_of_key("not-a-key")
    secret = feed.secret("alice", "read", days=1)
    wrong = secret[:20] + ("A" if secret[20] != "A" else "B") + secret[21:]
    with pytest.raises(ReadRefused):  # a changed secret fails its checksum or its HMAC
        readers.reader_of_key(wrong)
    clock.advance(days=2)
    with pytest.raises(ReadRefused, match=r"expired on .*: regenerate it") as refused:
        Readers(feed.core.db, feed.core.settings.server_secret(), public_site=True).reader_of_key(secret)
    assert refused.value.status == 401


@pytest.fixture
def elsewhere(feed: Site) -> Iterator[Database]:
    """The same database as another process opens it (its commits are not this process's)."""
    other = Database(feed.core.db.url)
    yield other
    other.dispose()


def test_a_revoked_key_is_refused_once_the_cache_time_has_passed(
    feed: Site, monotonic: Monotonic, elsewhere: Database
) -> None:
    readers = feed.core.readers
    secret = feed.secret("alice", "read")
    reader = readers.reader_of_key(secret)
    other = Accounts(elsewhere, feed.core.settings.server_secret())
    other.revoke(reader.key_id, "leaked in a build log")  # through another process
    assert readers.reader_of_key(secret) == reader  # kept: no database read for a second
    monotonic.now += 1.0
    with pytest.raises(ReadRefused, match=r"was revoked on .*: leaked in a build log$"):
        readers.reader_of_key(secret)


def test_a_key_revoked_or_expiring_in_this_process_is_refused_at_once(
    feed: Site, monotonic: Monotonic, clock: Clock
) -> None:
    readers = feed.core.readers
    secret = feed.secret("alice", "read")
    reader = readers.reader_of_key(secret)
    feed.core.accounts.revoke(reader.key_id, "leaked in a build log")  # through this process
    with pytest.raises(ReadRefused, match=r"was revoked on .*: leaked in a build log$"):
        readers.reader_of_key(secret)
    short = feed.secret("alice", "read", days=1)
    assert readers.reader_of_key(short).key_id  # known now, for a second
    clock.advance(days=1)
    with pytest.raises(ReadRefused, match=r"expired on .*: regenerate it"):
        readers.reader_of_key(short)  # the same second: its expiry is not kept


def test_a_member_removed_in_this_process_reads_the_organizations_ids_no_more(feed: Site) -> None:
    readers = feed.core.readers
    secret = feed.secret("alice", "read", globs=("Contoso.*",))
    contoso = account_id(feed, "contoso")
    assert contoso in authz.reads_for(readers.reader_of_key(secret))
    feed.core.orgs.add_member("contoso", "bob", "admin")
    feed.core.orgs.remove_member("contoso", "alice")
    assert contoso not in authz.reads_for(readers.reader_of_key(secret))


def test_an_organization_made_private_or_public_elsewhere_is_seen_within_the_cache_time(
    feed: Site, monotonic: Monotonic, elsewhere: Database
) -> None:
    readers = feed.core.readers
    assert readers.private_owners("contoso.SECRET")
    assert not readers.private_owners("Acme.Lib")
    Orgs(elsewhere).set_private("contoso", False)  # through another process
    assert readers.private_owners("Contoso.Secret")  # kept for a second
    monotonic.now += 1.0
    assert not readers.private_owners("Contoso.Secret")
    feed.core.orgs.set_private("contoso", True)  # through this process: its read gate knows at once
    assert readers.private_owners("Contoso.Secret")


@pytest.mark.parametrize("public_site", [True, False])
def test_search_finds_exactly_what_authz_lets_each_reader_read(feed: Site, public_site: bool) -> None:
    readers = feed.core.readers
    member = User(account_id(feed, "alice"), "alice", member_of=frozenset({account_id(feed, "contoso")}))
    outsider = User(account_id(feed, "carol"), "carol")
    keys = [
        feed.secret("alice", "read", globs=("Contoso.*", "Acme.*")),
        feed.secret("alice", "read", globs=(), packages=("other.thing",)),
        feed.secret("alice", "read", globs=("*_*", "Contoso.T*")),  # "_" is a plain character
        feed.secret("carol", "read"),
    ]
    views = [ReadView(None, public_site), *(ReadView(readers.reader_of_key(k), public_site) for k in keys)]
    views += [ReadView(user, public_site) for user in (member, outsider)]
    for view in views:
        expected = [
            i
            for i in IDS
            if authz.can_read(
                view.reader, i, public_site=public_site, private_owners=readers.private_owners(i)
            ).allowed
        ]
        total, hits = feed.core.search.search(Query(view=view, take=100))
        assert sorted(h.registration.package_id for h in hits) == expected
        assert total == len(expected)
        ids_total, ids = feed.core.search.autocomplete_ids(Query(view=view))
        assert (ids_total, sorted(ids)) == (len(expected), expected)
    assert sorted(h.registration.package_id for h in feed.core.search.search(Query())[1]) == [
        "Acme.Lib",
        "Other.Thing",
    ]  # a query that names no reader is the anonymous public one


def test_a_lookalike_of_a_private_id_is_refused_without_naming_it(feed: Site) -> None:
    carol = feed.key("carol")
    with refused(
        409, "The package id Contoso-Secret is too similar to an existing package: choose a different id"
    ):
        feed.push(carol, "Contoso-Secret")
    with refused(409, "The package id Acme-Lib is too similar to the existing package Acme.Lib: choose"):
        feed.push(carol, "Acme-Lib")  # a public one is named, as on nuget.org


def test_an_unknown_key_id_is_read_from_the_database_at_most_once_a_second(
    feed: Site, monotonic: Monotonic, monkeypatch: pytest.MonkeyPatch
) -> None:
    readers = feed.core.readers
    lookups: list[str] = []
    key_row = Accounts.key_row
    monkeypatch.setattr(Accounts, "key_row", lambda c, key_id: lookups.append(key_id) or key_row(c, key_id))
    guess = keys.new_key(keys.new_key_id())
    for _ in range(5):
        with pytest.raises(ReadRefused, match="does not exist"):
            readers.reader_of_key(guess)
    assert len(lookups) == 1
    monotonic.now += 1.0
    with pytest.raises(ReadRefused):
        readers.reader_of_key(guess)
    assert len(lookups) == 2


def test_a_flood_of_unknown_key_ids_evicts_no_known_key(
    feed: Site, monotonic: Monotonic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nugat.services.readers.MAX_KEYS", 3)
    readers = feed.core.readers
    good = keys.parse_key(feed.secret("alice", "read"))
    assert good is not None
    readers.load_key(good.key_id)
    for _ in range(7):  # the unknown ids' own table is cleared when full, never the keys'
        readers.load_key(keys.new_key_id())
    assert readers.cached_key(good.key_id) is not None
    assert len(readers.unknown) <= 3


def test_an_address_with_too_many_refused_read_credentials_is_refused_everywhere_for_the_window(
    feed: Site, monotonic: Monotonic, clock: Clock
) -> None:
    readers = feed.core.readers
    other_process = Readers(feed.core.db, feed.core.settings.server_secret(), public_site=True)
    assert not readers.throttled()
    for i in range(FAILED_READ_LIMIT):
        assert readers.failed("192.0.2.1", f"guess-{i}") == 0
        assert readers.failed("192.0.2.1", f"guess-{i}") == 0  # a repeat is not counted again
    assert readers.blocked_for("192.0.2.1") == 0
    assert readers.failed("192.0.2.1", "one-more") == 60
    assert readers.throttled() and readers.blocked_for("192.0.2.1") == 60
    assert readers.blocked_for("192.0.2.2") == 0  # another address is not concerned
    # The count is the database's: another process refuses the address at its next failure from it.
    assert other_process.blocked_for("192.0.2.1") == 0
    assert other_process.failed("192.0.2.1", "elsewhere") == 60
    # The refusal ends with the window.
    monotonic.now += 59.5
    assert readers.blocked_for("192.0.2.1") == 1
    monotonic.now += 0.5
    clock.advance(seconds=60)
    assert readers.blocked_for("192.0.2.1") == 0 and not readers.throttled()
    assert readers.failed("192.0.2.1", "a new window") == 0
