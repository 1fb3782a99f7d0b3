"""``services.readers``: a presented key as a reader (or why not, as 401), the facts kept for at most the
cache time, and ``readable``: the read rule in SQL, which search filters on, agreeing with ``authz``."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from nugat import authz
from nugat.authz import User
from nugat.db.models import Account
from nugat.services.readers import Readers, ReadRefused, ReadView
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


def test_a_revoked_key_is_refused_once_the_cache_time_has_passed(feed: Site, monotonic: Monotonic) -> None:
    readers = feed.core.readers
    secret = feed.secret("alice", "read")
    reader = readers.reader_of_key(secret)
    feed.core.accounts.revoke(reader.key_id, "leaked in a build log")
    assert readers.reader_of_key(secret) == reader  # kept: no database read for a second
    monotonic.now += 1.0
    with pytest.raises(ReadRefused, match=r"was revoked on .*: leaked in a build log$"):
        readers.reader_of_key(secret)


def test_an_organization_made_private_or_public_is_seen_within_the_cache_time(
    feed: Site, monotonic: Monotonic
) -> None:
    readers = feed.core.readers
    assert readers.private_owners("contoso.SECRET")
    assert not readers.private_owners("Acme.Lib")
    feed.core.orgs.set_private("contoso", False)
    assert readers.private_owners("Contoso.Secret")  # kept for a second
    monotonic.now += 1.0
    assert not readers.private_owners("Contoso.Secret")


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
