"""``services.search_index``: the entries a push leaves (only the new version and the id's current entries
read) are those a full reindex of the id writes, whatever order versions arrive in."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from nugat.db.models import SearchEntry, table
from nugat.services.search_index import index_ids
from support.services import Site

ENTRIES = table(SearchEntry)


def entries(site: Site) -> list[tuple[object, ...]]:
    with site.core.db.read_transaction() as c:
        rows = c.execute(select(ENTRIES).order_by(ENTRIES.c.registration_id, ENTRIES.c.version_id)).all()
    return [tuple(r)[1:] for r in rows]  # without the row's own id


@pytest.mark.parametrize(
    "versions",
    [
        ["1.0.0", "2.0.0", "1.5.0"],
        ["1.0.0", "2.0.0-beta", "2.0.0-rc.1", "1.1.0", "3.0.0+build"],
        ["1.0.0-alpha", "0.9.0", "1.0.0-rc.1.2", "1.0.0"],
        ["2.0.0-rc.1", "2.0.0-beta"],
    ],
)
def test_entries_after_pushes_are_those_of_a_full_reindex(site: Site, versions: list[str]) -> None:
    site.users("alice")
    grant = site.key("alice")
    for version in versions:
        site.push(grant, "Json.Reader", version, description="Reads JSON")
        site.push(grant, "Other.Lib", version)
        pushed = entries(site)
        with site.core.db.transaction() as c:
            index_ids(c, [1, 2])
        assert pushed == entries(site), version


def test_nugat_rebuild_writes_the_entries_of_every_id(site: Site) -> None:
    """From the versions it reads for the documents (listed or not, prerelease, SemVer 2.0.0)."""
    site.users("alice")
    grant = site.key("alice")
    for n in range(5):
        site.push(grant, f"Lib{n}", "1.0.0")
        site.push(grant, f"Lib{n}", "2.0.0-beta")
        if n % 2:
            site.push(grant, f"Lib{n}", "3.0.0+build")
            site.unlist(grant, f"Lib{n}", "2.0.0-beta")
    site.unlist(grant, "Lib4", "1.0.0")
    pushed = entries(site)
    assert len({e[0] for e in pushed}) == 5 and len(pushed) > 5
    with site.core.db.transaction() as c:
        c.execute(ENTRIES.delete())  # as after versions put straight into the database
    assert entries(site) == []
    assert site.core.materializer.rebuild_all() == 5
    assert entries(site) == pushed
