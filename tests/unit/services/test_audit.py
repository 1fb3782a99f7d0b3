"""``services.audit``: what is recorded, newest first, and who sees which events (a user: its own and those of
the orgs it administers; site admins and the command line: all), without telling anyone else which names
exist."""

from __future__ import annotations

import pytest

from nugat.services import NotFound
from nugat.services.audit import record, record_key_failure
from support.services import Clock, Site


@pytest.fixture
def story(site: Site) -> Site:
    """Contoso (alice admin, bob collaborator); bob pushes Contoso.Lib with an org key; carol pushes
    Carol.Lib; a stranger tries an unknown key."""
    site.users("alice", "bob", "carol")
    site.user("root", admin=True)
    site.core.orgs.create("Contoso", "alice", by="alice")
    site.core.orgs.add_member("Contoso", "bob", "collaborator", by="alice")
    site.push(site.key("bob", owner="Contoso"), "Contoso.Lib")
    site.push(site.key("carol"), "Carol.Lib")
    record_key_failure(site.core.db, "aaaaaaaaaaaaaaaa", "203.0.113.9", "unknown key")
    return site


def actions(site: Site, **filters: str | None) -> list[str]:
    return [e.action for e in reversed(site.core.audit.events(**filters))]  # type: ignore[arg-type]


def test_events_come_newest_first_with_names_and_details(site: Site, clock: Clock) -> None:
    site.users("alice")
    alice_id = site.core.accounts.users()[0].id
    with site.core.db.session() as s:
        record(s, "test.first", actor_id=alice_id, account_id=alice_id, address="192.0.2.7", note="one")
    clock.advance(seconds=1)
    with site.core.db.session() as s:
        record(s, "test.second", package_id="A.Lib", version="1.0.0", key_id="k" * 16)
    second, first = site.core.audit.events()[:2]
    assert (second.action, first.action) == ("test.second", "test.first")
    assert (first.actor, first.account, first.address, first.detail) == (
        "alice",
        "alice",
        "192.0.2.7",
        {"note": "one"},
    )
    assert second.as_json() == {
        "at": "2026-03-01T12:00:01Z",
        "action": "test.second",
        "actor": None,
        "account": None,
        "package": "A.Lib",
        "version": "1.0.0",
        "key_id": "k" * 16,
        "address": None,
        "detail": {},
    }
    assert [e.action for e in site.core.audit.events(limit=1)] == ["test.second"]


def test_the_command_line_and_site_admins_see_every_event(story: Site) -> None:
    everything = actions(story)
    assert everything == [
        "org.create",
        "org.member_add",
        "key.create",
        "package.push",
        "key.create",
        "package.push",
        "key.use_failed",
    ]
    assert actions(story, viewer="root") == everything


def test_a_user_sees_its_own_events_and_those_of_the_orgs_it_administers(story: Site) -> None:
    assert actions(story, viewer="alice") == ["org.create", "org.member_add", "key.create", "package.push"]
    assert actions(story, viewer="bob") == ["key.create", "package.push"]  # a collaborator: only its own
    assert actions(story, viewer="carol") == ["key.create", "package.push"]


def test_filters_by_user_and_package(story: Site) -> None:
    assert actions(story, user="carol") == ["key.create", "package.push"]
    assert actions(story, user="Contoso") == ["org.create", "org.member_add", "key.create", "package.push"]
    assert actions(story, package="CONTOSO.lib") == ["package.push"]
    assert actions(story, viewer="alice", user="carol") == []  # filters narrow what the viewer may see
    assert actions(story, viewer="carol", package="Contoso.Lib") == []


def test_an_unknown_name_is_an_error_only_for_those_who_see_everything(story: Site) -> None:
    with pytest.raises(NotFound, match="No account named 'nobody'"):
        story.core.audit.events(user="nobody")
    with pytest.raises(NotFound):
        story.core.audit.events(viewer="root", user="nobody")
    # anyone else gets the same answer as for an account it may not see: no way to list accounts
    assert story.core.audit.events(viewer="carol", user="nobody") == []
    assert story.core.audit.events(viewer="carol", user="alice") == []


def test_a_failed_use_of_a_known_key_is_filed_under_its_owner(story: Site) -> None:
    secret = story.secret("carol")
    record_key_failure(story.core.db, secret.split("_")[1], "203.0.113.9", "wrong scope", operation="push")
    failures = [e for e in story.core.audit.events(viewer="carol") if e.action == "key.use_failed"]
    assert [(e.actor, e.account, e.detail) for e in failures] == [
        ("carol", "carol", {"reason": "wrong scope", "operation": "push"})
    ]
    unknown = [e for e in story.core.audit.events() if e.key_id == "aaaaaaaaaaaaaaaa"]
    assert [(e.actor, e.account, e.address) for e in unknown] == [(None, None, "203.0.113.9")]


def test_a_new_account_never_gets_a_deleted_accounts_id_nor_its_events(site: Site) -> None:
    """SQLite would give the highest id, once deleted, to the next account: the deleted user's events
    (key creations, pushes from its address), which name it by id, would then be the new user's."""
    site.users("alice", "zed")
    site.push(site.key("zed"), "Zed.Lib")
    zed_id = max(u.id for u in site.core.accounts.users())
    assert {"key.create", "package.push"} <= set(actions(site, user="zed"))
    site.core.accounts.delete_user("zed", transfer_to="alice")
    newbie = site.user("newbie")
    assert newbie.id != zed_id
    assert site.core.audit.events(user="newbie") == []
    assert site.core.audit.events(viewer="newbie") == []
    # zed's events stay, named as a deleted user's
    pushes = [e for e in site.core.audit.events() if e.action == "package.push"]
    assert [(e.actor, e.package_id) for e in pushes] == [("deleted user", "Zed.Lib")]
