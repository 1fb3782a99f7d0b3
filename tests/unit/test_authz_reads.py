"""One test per read rule of ``nugat.authz``: who may use the feed, and which ids each reader sees."""

from __future__ import annotations

from datetime import datetime

import pytest

from nugat.authz import OPERATOR, Reader, User, can_push, can_read, can_read_feed, can_unlist, reads_for
from nugat.keys import KeyGrant

ALICE, CONTOSO, BOB = 1, 2, 3
PRIVATE = frozenset({CONTOSO})  # Contoso.* ids: owned by the private organization contoso


def read_key(
    *scopes: str, globs: tuple[str, ...] = ("*",), packages: tuple[str, ...] = (), owner_id: int = ALICE
) -> KeyGrant:
    return KeyGrant(
        key_id="k1",
        user_id=owner_id,
        owner_id=owner_id,
        owner_name="alice",
        scopes=frozenset(scopes or ("read",)),
        globs=globs,
        packages=packages,
        expires_at=datetime(2100, 1, 1),
        owner_member_of=frozenset({CONTOSO}) if owner_id == ALICE else frozenset(),  # alice is in contoso
    )


MEMBER = User(ALICE, "alice", member_of=frozenset({CONTOSO}))  # alice signed in
OUTSIDER = User(BOB, "bob")  # bob signed in


def test_a_public_site_lets_anyone_in_and_a_users_site_asks_for_credentials() -> None:
    assert can_read_feed(None, public_site=True).allowed
    refused = can_read_feed(None, public_site=False)
    assert (refused.status, refused.reason) == (
        401,
        "This feed needs credentials: add the source with any user name and an API key with the Read "
        "scope as the password",
    )
    assert can_read_feed(read_key(), public_site=False).allowed
    assert can_read_feed(MEMBER, public_site=False).allowed


@pytest.mark.parametrize("public_site", [True, False])
def test_a_key_without_the_read_scope_reads_nothing(public_site: bool) -> None:
    refused = can_read_feed(read_key("push", "unlist"), public_site=public_site)
    assert (refused.status, refused.reason) == (
        403,
        "API key k1 does not allow reading packages: "
        "create a key with the Read scope for the feed's password",
    )


@pytest.mark.parametrize(
    ("reader", "public_site", "public_id", "private_id"),
    [
        (None, True, True, False),  # anonymous on a public site
        (MEMBER, True, True, True),
        (OUTSIDER, True, True, False),
        (MEMBER, False, True, True),  # every signed-in user reads the public ids of a users site
        (OUTSIDER, False, True, False),
        (read_key(globs=("Acme.*", "Contoso.*")), True, True, True),
        (read_key(globs=("Acme.*", "Contoso.*")), False, True, True),
        (read_key(globs=(), packages=("other.thing",)), True, True, False),  # public ids need no cover
        (read_key(globs=(), packages=("other.thing",)), False, False, False),  # on a users site they do
        (read_key(globs=("Acme.*",)), False, True, False),
        (read_key(globs=(), packages=("contoso.secret",)), False, False, True),  # explicit ids, any case
    ],
)
def test_who_sees_which_id(
    reader: Reader | None, public_site: bool, public_id: bool, private_id: bool
) -> None:
    assert (
        can_read(reader, "Acme.Lib", public_site=public_site, private_owners=frozenset()).allowed is public_id
    )
    assert (
        can_read(reader, "Contoso.Secret", public_site=public_site, private_owners=PRIVATE).allowed
        is private_id
    )


def test_a_key_acting_for_an_outsider_never_reads_private_ids_whatever_it_covers() -> None:
    outsider_key = read_key(owner_id=BOB)
    refused = can_read(outsider_key, "Contoso.Secret", public_site=True, private_owners=PRIVATE)
    assert (refused.status, refused.reason) == (404, "Not found")  # as for an id never pushed


def test_a_private_id_with_several_owners_is_read_by_those_acting_for_any_of_them() -> None:
    owners = frozenset({CONTOSO, BOB})  # co-owned by the private organization and by bob
    assert can_read(OUTSIDER, "Contoso.Shared", public_site=True, private_owners=owners).allowed


def test_whose_private_packages_each_reader_reads() -> None:
    assert reads_for(MEMBER) == {ALICE, CONTOSO}
    assert reads_for(read_key()) == {ALICE, CONTOSO}  # the key's owner and the owner's organizations
    org_key = KeyGrant("k2", ALICE, CONTOSO, "contoso", frozenset({"read"}), ("*",), (), datetime(2100, 1, 1))
    assert reads_for(org_key) == {CONTOSO}
    assert reads_for(OPERATOR) is None  # the command line reads everything
    assert can_read(OPERATOR, "Contoso.Secret", public_site=False, private_owners=PRIVATE).allowed


def test_a_read_key_neither_pushes_nor_unlists() -> None:
    key = read_key()
    for exists in (False, True):
        refused = can_push(key, "Acme.Lib", exists=exists, owner_ids=frozenset({ALICE}), actor_is_member=True)
        assert (refused.status, refused.reason) == (403, "API key k1 does not allow pushing packages")
    refused = can_unlist(key, "Acme.Lib", owner_ids=frozenset({ALICE}), actor_is_member=True)
    assert (refused.status, refused.reason) == (403, "API key k1 does not allow unlisting packages")
