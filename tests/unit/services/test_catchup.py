"""``services.catchup``: after a crash of the machine the server serves at once; an id's documents are
rebuilt on their first read, and every stale id in the background, batch by batch."""

from __future__ import annotations

import json

import pytest

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
