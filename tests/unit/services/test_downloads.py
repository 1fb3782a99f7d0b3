"""``services.downloads``: downloads are counted in memory and written in one batch per flush; a flush that
cannot reach the database keeps its counts for the next one."""

from __future__ import annotations

from nugat.db import Database
from nugat.services.downloads import DownloadCounter
from nugat.services.search import Query
from support.services import Clock, Site


def downloads(site: Site, clock: Clock, package_id: str) -> tuple[int, dict[str, int]]:
    """The id's total as search shows it, and each version's count as its owners' list shows it."""
    clock.advance(minutes=1)  # a flush copies the totals into search once a minute
    _, hits = site.core.search.search(Query(q=package_id, prerelease=True))
    [total] = [h.registration.total_downloads for h in hits if h.registration.package_id == package_id]
    owned = site.core.accounts.packages_of([a.id for a in site.core.accounts.users()])
    [versions] = [p.versions for p in owned if p.package_id == package_id]
    return total, {v.version: v.downloads for v in versions}


def test_a_flush_writes_the_counts_of_every_version_and_id(site: Site, clock: Clock) -> None:
    site.users("alice")
    grant = site.key("alice")
    site.push(grant, "A.Lib", "1.0.0")
    site.push(grant, "A.Lib", "2.0.0-beta")
    site.push(grant, "B.Lib", "1.0.0")
    counter = site.core.downloads
    for id_lower, version_lower in [("a.lib", "1.0.0")] * 3 + [("a.lib", "2.0.0-beta"), ("b.lib", "1.0.0")]:
        counter.count(id_lower, version_lower)
    assert downloads(site, clock, "A.Lib") == (0, {"1.0.0": 0, "2.0.0-beta": 0})  # nothing before the flush
    assert counter.flush() == 5
    assert downloads(site, clock, "A.Lib") == (4, {"1.0.0": 3, "2.0.0-beta": 1})
    assert downloads(site, clock, "B.Lib") == (1, {"1.0.0": 1})
    counter.count("a.lib", "1.0.0")
    assert counter.flush() == 1
    assert downloads(site, clock, "A.Lib") == (5, {"1.0.0": 4, "2.0.0-beta": 1})
    assert counter.flush() == 0  # nothing pending


def test_downloads_of_an_unknown_id_are_dropped(site: Site, clock: Clock) -> None:
    site.users("alice")
    site.push(site.key("alice"), "A.Lib")
    site.core.downloads.count("no.such", "1.0.0")
    site.core.downloads.count("a.lib", "1.0.0")
    site.core.downloads.flush()
    assert downloads(site, clock, "A.Lib") == (1, {"1.0.0": 1})
    assert site.core.downloads.pending == {}


def test_counts_survive_a_flush_that_fails(site: Site, clock: Clock) -> None:
    site.users("alice")
    site.push(site.key("alice"), "A.Lib")
    broken = Database(f"sqlite:///{site.data_dir}/no-such-folder/nugat.db")  # cannot even be opened
    counter = DownloadCounter(broken)
    counter.count("a.lib", "1.0.0")
    counter.count("a.lib", "1.0.0")
    assert counter.flush() == 0
    counter.count("a.lib", "1.0.0")
    counter.db = site.core.db  # the database is back
    assert counter.flush() == 3
    assert downloads(site, clock, "A.Lib") == (3, {"1.0.0": 3})
    broken.dispose()
