"""``services.catchup``: after a crash of the machine the server serves at once; an id's documents are
rebuilt on their first read, and every stale id in the background, batch by batch."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Connection

from nugat.feed import layout
from nugat.keys import KeyGrant
from nugat.services import materialize
from support.services import Site

IDS = ("A.Lib", "B.Lib", "C.Lib")


@pytest.fixture
def crashed_site(site: Site) -> tuple[Site, KeyGrant]:
    """Three ids pushed (A.Lib twice), then a crash of the machine that lost or aged their documents, and
    the start after it (``recover``)."""
    site.users("alice")
    grant = site.key("alice")
    for package_id in IDS:
        site.push(grant, package_id)
    before = site.storage.peek(layout.flat_index("a.lib"))
    site.push(grant, "A.Lib", "2.0.0")
    site.storage.put_bytes(layout.flat_index("a.lib"), before or b"", "application/json")  # aged
    for key in site.storage.keys("v3/registration-semver2/b.lib"):
        site.storage.delete(key)  # lost
    site.storage.lost = True
    restarted = site.restart()
    assert restarted.core.packages.recover() == (0, 3)
    return restarted, grant


def test_nothing_is_stale_after_pushes(site: Site) -> None:
    site.users("alice")
    site.push(site.key("alice"), "A.Lib")
    assert site.core.catchup.check() is False
    assert site.core.catchup.active is False
    assert site.core.catchup.step() is None


def test_a_read_rebuilds_the_id_it_asks_for_first(crashed_site: tuple[Site, KeyGrant]) -> None:
    crashed, _ = crashed_site
    catchup = crashed.core.catchup
    assert catchup.check() is True
    assert crashed.flat_versions("A.Lib") == ["1.0.0"]  # what the crash left
    catchup.ensure("a.lib")
    assert crashed.flat_versions("A.Lib") == ["1.0.0", "2.0.0"]
    assert not crashed.core.materializer.is_stale("a.lib")
    assert crashed.core.materializer.is_stale("b.lib")  # the others wait for the background
    assert crashed.catalog("B.Lib") == {}
    catchup.ensure("b.lib")
    assert crashed.catalog("B.Lib")["1.0.0"]["id"] == "B.Lib"
    tokens = {k: b.info.token for k, b in crashed.storage.blobs.items()}
    catchup.ensure("a.lib")  # fresh now: not written again
    catchup.ensure("no.such.id")
    assert {k: b.info.token for k, b in crashed.storage.blobs.items()} == tokens


def test_the_background_rebuilds_every_stale_id_in_batches(
    crashed_site: tuple[Site, KeyGrant], monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed, _ = crashed_site
    monkeypatch.setattr(materialize, "_CLAIM_STALE", materialize._CLAIM_STALE.limit(2))
    catchup = crashed.core.catchup
    catchup.check()
    settled = crashed.storage.settled
    assert catchup.step() == 2
    assert catchup.active is True
    assert catchup.step() == 1
    assert catchup.step() is None  # none left: the documents are synced, and reads no longer checked
    assert catchup.active is False
    assert crashed.storage.settled == settled + 1
    assert crashed.flat_versions("A.Lib") == ["1.0.0", "2.0.0"]
    assert crashed.catalog("B.Lib")["1.0.0"]["id"] == "B.Lib"
    assert crashed.catalog("C.Lib")["1.0.0"]["id"] == "C.Lib"


def test_a_push_to_a_stale_id_rebuilds_all_its_documents(crashed_site: tuple[Site, KeyGrant]) -> None:
    crashed, grant = crashed_site
    crashed.push(grant, "B.Lib", "2.0.0")
    assert not crashed.core.materializer.is_stale("b.lib")
    assert sorted(crashed.catalog("B.Lib")) == ["1.0.0", "2.0.0"]


def test_a_new_base_url_marks_every_id_instead_of_rewriting_them_before_serving(site: Site) -> None:
    site.users("alice")
    grant = site.key("alice")
    for package_id in IDS:
        site.push(grant, package_id)
    site.core.materializer.rebuild_all()  # records the base URL the documents are written with
    assert site.core.materializer.follow_base() is None
    site.core.close()
    moved = Site(site.data_dir, site.storage, site.family, public_url="https://feed.example")
    assert moved.core.materializer.follow_base() == 3
    assert moved.core.materializer.follow_base() is None  # the marker follows at once
    index = layout.registration_index("registration", "a.lib")
    assert b"https://feed.example" not in (moved.storage.peek(index) or b"")
    moved.core.catchup.ensure("a.lib")
    assert json.loads(moved.storage.peek(index) or b"")["@id"].startswith("https://feed.example/")


def test_on_sqlite_one_process_builds_in_the_background(
    crashed_site: tuple[Site, KeyGrant], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite has one writer: a second process's background waits (building nothing) while the first
    builds, and ends with it; its reads still build what they ask for."""
    crashed, _ = crashed_site
    other = Site(crashed.data_dir, crashed.storage, crashed.family)
    monkeypatch.setattr(materialize, "_CLAIM_STALE", materialize._CLAIM_STALE.limit(1))
    first, second = crashed.core.catchup, other.core.catchup
    assert first.step() == 1
    assert second.step() == 0  # the first holds the builder's lock
    assert crashed.core.materializer.is_stale("b.lib")
    second.ensure("b.lib")
    assert not crashed.core.materializer.is_stale("b.lib")
    while first.step() is not None:
        pass
    assert second.step() is None
    assert second.active is False


def test_marking_every_id_stale_moves_one_counter_and_rewrites_no_id(site: Site) -> None:
    """``forget_all`` is one statement whatever the number of ids (a start after a crash serves at once):
    the ids' rows stay as they were, yet every id is stale; an id created or built since is not."""
    from sqlalchemy import select

    from nugat.db.models import PackageRegistration

    site.users("alice")
    grant = site.key("alice")
    for package_id in IDS:
        site.push(grant, package_id)
    columns = (PackageRegistration.id_lower, PackageRegistration.revision, PackageRegistration.built_revision)
    with site.core.db.reading() as s:
        before = s.execute(select(*columns).order_by(PackageRegistration.id)).all()
    materializer = site.core.materializer
    assert materializer.forget_all() == 3
    with site.core.db.reading() as s:
        assert s.execute(select(*columns).order_by(PackageRegistration.id)).all() == before
    assert [materializer.is_stale(i.lower()) for i in IDS] == [True, True, True]
    assert materializer.stale() == []  # not the ids a crash between a commit and its build left
    site.push(grant, "D.Lib")  # created under the new epoch: current
    site.push(grant, "A.Lib", "2.0.0")  # a push to a stale id builds all of it
    ids = ("a.lib", "b.lib", "c.lib", "d.lib")
    assert [materializer.is_stale(i) for i in ids] == [False, True, True, False]
    assert materializer.build_stale() == 2
    assert not any(materializer.is_stale(i) for i in ids)


def test_an_id_marked_stale_while_it_was_built_stays_stale(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build records the epoch it read as it locked the id: when every id is marked stale while it
    writes, the documents it wrote before may be lost with the rest, and it is built again."""
    site.users("alice")
    site.push(site.key("alice"), "A.Lib")
    materializer = site.core.materializer
    build_all = materializer._build_all

    def marked_meanwhile(c: Connection, reg: materialize.Registration, **kw: object) -> None:
        build_all(c, reg, **kw)  # type: ignore[arg-type]
        c.execute(materialize._NEXT_EPOCH)  # as ``forget_all`` commits before the build does

    monkeypatch.setattr(materializer, "_build_all", marked_meanwhile)
    materializer.build("a.lib")
    assert materializer.is_stale("a.lib")
    monkeypatch.undo()
    assert materializer.build_if_stale("a.lib")
    assert not materializer.is_stale("a.lib")
