"""``services.accounts``: users, sign-in and its throttle, API keys over their life, and ``verify_key``, which
every push and unlist passes first (403 with the precise reason for a key that is missing, unknown or dead,
as on nuget.org; 429 for guessing). Revocation, renewal, names and disabled accounts: ``test_key_life``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from nugat import keys
from nugat.db.models import Account, ApiKey, TrustedPolicy
from nugat.services import INVALID_KEY, KeyRefused, NotFound, TooManyRequests
from nugat.services.accounts import (
    FAILED_KEY_LIMIT,
    FAILED_SIGNIN_PER_ACCOUNT,
    FAILED_SIGNIN_PER_ACCOUNT_ADDRESS,
    FAILED_SIGNIN_PER_ADDRESS,
    SLOWED_SIGNIN,
)
from support.services import ADDRESS, Clock, Site, at_once, refused

PASSWORD = "violet tractor harbour"


@pytest.fixture
def site_with_users(site: Site) -> Site:
    site.users("alice", "bob")
    return site


def key_id(secret: str) -> str:
    parsed = keys.parse_key(secret)
    assert parsed is not None
    return parsed.key_id


# Users ------------------------------------------------------------------------------------------------------


def test_a_new_user_and_its_rules(site: Site) -> None:
    user = site.core.accounts.create_user("Alice", "Alice@Example.test", None)
    assert (user.name, user.name_lower, user.kind, user.is_admin) == ("Alice", "alice", "user", False)
    assert user.password_hash is None  # made by the command line: cannot sign in until a password is set
    with refused(409, "already taken"):
        site.core.accounts.create_user("ALICE", "other@example.test", None)
    with refused(409, "already taken"):
        site.core.accounts.create_user("alice2", "alice@EXAMPLE.test", None)
    with refused(400, "username is 1-64 letters"):
        site.core.accounts.create_user("-alice", "a3@example.test", None)
    with refused(400, "not a valid email address"):
        site.core.accounts.create_user("carol", "carol-at-example.test", None)
    assert [u.name for u in site.core.accounts.users()] == ["Alice"]


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 10 characters"),
        ("1234567890123", "too easy to guess"),
        ("abababababab", "too easy to guess"),
        ("carol@example.test", "must not be your username or email"),
        ("password123", "most common passwords"),
        ("x" * 1025, "too long"),
    ],
)
def test_weak_passwords_are_refused(site: Site, password: str, reason: str) -> None:
    with refused(400, reason):
        site.core.accounts.create_user("carol", "carol@example.test", password)
    assert site.core.accounts.users() == []


def test_the_first_sign_up_may_be_made_admin(site: Site) -> None:
    first = site.core.accounts.create_user("alice", "alice@example.test", None, admin_if_first=True)
    second = site.core.accounts.create_user("bob", "bob@example.test", None, admin_if_first=True)
    assert (first.is_admin, second.is_admin) == (True, False)


def test_authenticate_by_name_or_email(site: Site) -> None:
    site.core.accounts.create_user("alice", "alice@example.test", PASSWORD)
    site.user("bob")  # no password
    assert site.core.accounts.authenticate("ALICE", PASSWORD).name == "alice"  # type: ignore[union-attr]
    assert site.core.accounts.authenticate("Alice@Example.TEST", PASSWORD).name == "alice"  # type: ignore[union-attr]
    assert site.core.accounts.authenticate("alice", PASSWORD + "!") is None
    assert site.core.accounts.authenticate("nobody", PASSWORD) is None
    assert site.core.accounts.authenticate("bob", "") is None


def test_sign_in_failures_refuse_only_where_they_came_from(site: Site, clock: Clock) -> None:
    accounts = site.core.accounts
    accounts.create_user("alice", "alice@example.test", PASSWORD)
    for _ in range(FAILED_SIGNIN_PER_ACCOUNT_ADDRESS):
        with refused(401, "Wrong username, email or password"):
            accounts.sign_in("alice", "wrong password", "198.51.100.1")
    # refused from there even with the right password: guessing on stops paying
    with refused(429, "Too many failed sign-in attempts: try again in 15 minutes"):
        accounts.sign_in("alice", PASSWORD, "198.51.100.1")
    # never from elsewhere: the owner signs in, each attempt slowed while the account is under attack
    assert accounts.sign_in_delay("alice", "203.0.113.5") == SLOWED_SIGNIN
    assert accounts.sign_in("alice", PASSWORD, "203.0.113.5").name == "alice"
    assert accounts.sign_in_delay("bob", "203.0.113.5") == 0  # another account is not slowed
    clock.advance(minutes=15)
    assert accounts.sign_in_delay("alice", "198.51.100.1") == 0
    assert accounts.sign_in("alice", PASSWORD, "198.51.100.1").name == "alice"


def test_failures_from_everywhere_only_slow_the_account(site: Site) -> None:
    accounts = site.core.accounts
    accounts.create_user("alice", "alice@example.test", PASSWORD)
    for n in range(FAILED_SIGNIN_PER_ACCOUNT - 1):
        with refused(401, "Wrong username, email or password"):
            accounts.sign_in("alice", "wrong password", f"198.51.100.{n}")
    assert accounts.sign_in_delay("alice", "203.0.113.5") == 0
    with refused(401, "Wrong username, email or password"):
        accounts.sign_in("ALICE ", "wrong password", "198.51.100.99")  # the same login, however typed
    assert accounts.sign_in_delay("alice", "203.0.113.5") == SLOWED_SIGNIN
    assert (
        accounts.sign_in("alice", PASSWORD, "198.51.100.1").name == "alice"
    )  # one failure there: not refused


def test_the_throttles_do_not_tell_which_email_is_an_accounts(site: Site) -> None:
    """Counted by the login as typed: failures at a user name refuse or slow that name, never the email
    of its account (else a stranger learns whose address it is: ten failures at ``alice``, then
    ``alice@example.test`` refused or slowed, an unknown address not)."""
    accounts = site.core.accounts
    accounts.create_user("alice", "alice@example.test", PASSWORD)
    for _ in range(FAILED_SIGNIN_PER_ACCOUNT):
        with refused(401, "Wrong username, email or password"):
            accounts.sign_in("alice", "wrong password", "198.51.100.1")
    for login in ("alice@example.test", "ALICE@EXAMPLE.TEST", "nobody@example.test"):
        assert accounts.sign_in_delay(login, "203.0.113.5") == 0
        with refused(401, "Wrong username, email or password"):
            accounts.sign_in(login, "wrong password", "198.51.100.1")
    assert accounts.sign_in_delay("alice", "203.0.113.5") == SLOWED_SIGNIN


def test_passwords_sent_at_the_same_time_are_checked_only_up_to_the_limit(site: Site) -> None:
    """Each attempt is counted before its password is checked: a burst of guesses cannot all pass a check
    made before any of them failed."""
    accounts = site.core.accounts
    accounts.create_user("alice", "alice@example.test", PASSWORD)
    statuses = at_once(24, lambda n: accounts.sign_in("alice", f"guess {n}", "198.51.100.1"))
    assert statuses == [401] * FAILED_SIGNIN_PER_ACCOUNT_ADDRESS + [429] * (
        24 - FAILED_SIGNIN_PER_ACCOUNT_ADDRESS
    )
    # Successes are not failures: the owner signs in from elsewhere as often as they like.
    for _ in range(FAILED_SIGNIN_PER_ACCOUNT_ADDRESS + 1):
        assert accounts.sign_in("alice", PASSWORD, "203.0.113.5").name == "alice"


def test_failures_from_one_address_at_many_accounts_refuse_that_address(site: Site) -> None:
    accounts = site.core.accounts
    accounts.create_user("alice", "alice@example.test", PASSWORD)
    for n in range(FAILED_SIGNIN_PER_ADDRESS):
        with refused(401, "Wrong username, email or password"):
            accounts.sign_in(f"nobody{n}", "wrong password", "198.51.100.7")
    with refused(429, "Too many failed sign-in attempts"):
        accounts.sign_in("alice", PASSWORD, "198.51.100.7")
    assert accounts.sign_in("alice", PASSWORD, "198.51.100.8").name == "alice"


def test_password_and_email_changes(site: Site) -> None:
    alice = site.core.accounts.create_user("alice", "alice@example.test", PASSWORD)
    site.user("bob")
    site.core.accounts.set_password(alice.id, "a brand new passphrase")
    assert site.core.accounts.authenticate("alice", PASSWORD) is None
    assert site.core.accounts.authenticate("alice", "a brand new passphrase") is not None
    with refused(400, "at least 10"):
        site.core.accounts.set_password(alice.id, "short")
    with refused(409, "That email is already taken"):
        site.core.accounts.set_email(alice.id, "BOB@example.test")
    site.core.accounts.set_email(alice.id, "alice@new.example.test")
    assert site.core.accounts.authenticate("alice@new.example.test", "a brand new passphrase") is not None


def test_key_owners_are_the_user_then_its_orgs(site_with_users: Site) -> None:
    site = site_with_users
    site.core.orgs.create("Zeta", "alice")
    site.core.orgs.create("Acme", "bob")
    site.core.orgs.add_member("Acme", "alice", "collaborator")
    alice = site.core.accounts.key_owners(site.core.accounts.users()[0].id)
    assert [a.name for a in alice] == ["alice", "Acme", "Zeta"]
    with pytest.raises(NotFound):
        site.core.accounts.key_owners(10_000)


def test_packages_of_accounts_with_their_versions_newest_first(site_with_users: Site) -> None:
    site = site_with_users
    grant = site.key("alice")
    for version in ("1.0.0", "10.0.0", "2.0.0"):
        site.push(grant, "Alice.Lib", version)
    site.push(site.key("bob"), "Bob.Lib")
    site.unlist(grant, "Alice.Lib", "2.0.0")
    alice_id = site.core.accounts.users()[0].id
    [owned] = site.core.accounts.packages_of([alice_id])
    assert (owned.package_id, owned.owners) == ("Alice.Lib", ["alice"])
    assert [(v.version, v.listed) for v in owned.versions] == [
        ("10.0.0", True),
        ("2.0.0", False),
        ("1.0.0", True),
    ]


# Keys -------------------------------------------------------------------------------------------------------


def test_create_a_key_and_see_it_without_its_secret(site_with_users: Site, clock: Clock) -> None:
    view, secret = site_with_users.core.accounts.create_key(
        "alice", " ci ", ["Push", "unlist", "push"], [" Contoso.* ", ""], ["Other.Lib"], 30
    )
    assert secret.startswith("nugat_") and key_id(secret) == view.id
    assert (view.name, view.owner, view.scopes) == ("ci", "alice", ["push", "unlist"])
    assert (view.globs, view.packages) == (["Contoso.*"], ["Other.Lib"])
    assert (view.created, view.expires, view.last_used) == (clock.now, clock.now + timedelta(days=30), None)
    assert site_with_users.core.accounts.list_keys("alice") == [view]
    assert site_with_users.core.accounts.list_keys("bob") == []
    assert secret not in repr(view.as_json())


@pytest.mark.parametrize(
    ("name", "scopes", "globs", "days", "reason"),
    [
        ("", ["push"], ["*"], None, "A key name is 1 to 128 characters"),
        ("k", ["delete"], ["*"], None, "unknown scope 'delete'"),
        ("k", [], ["*"], None, "choose at least one scope"),
        ("k", ["push"], [], None, "select packages"),
        ("k", ["push"], ["Con/toso"], None, "The glob pattern 'Con/toso' contains '/'"),
        ("k", ["push"], ["*"], 366, "expiration must be 1 to 365 days"),
        # kept on SQLite, a bare 400 on PostgreSQL (text refuses a NUL); a line break splits a list's line
        ("a\x00b", ["push"], ["*"], None, "cannot contain control characters such as line breaks or tabs"),
        ("ci\nprod", ["push"], ["*"], None, r"such as line breaks or tabs \(U\+000A\)"),
        ("ci\u202egorp", ["push"], ["*"], None, "cannot contain control characters"),
    ],
)
def test_invalid_key_settings_are_400(
    site_with_users: Site, name: str, scopes: list[str], globs: list[str], days: int | None, reason: str
) -> None:
    with refused(400, reason):
        site_with_users.core.accounts.create_key("alice", name, scopes, globs, [], days)
    assert site_with_users.core.accounts.list_keys("alice") == []


def test_a_key_cannot_be_renamed_with_a_control_character(site_with_users: Site) -> None:
    view, _ = site_with_users.core.accounts.create_key("alice", "ci", ["push"], ["*"], [], None)
    with refused(400, "A key name cannot contain control characters"):
        site_with_users.core.accounts.edit_key("alice", view.id, name="ci\x00", globs=["*"])
    assert [k.name for k in site_with_users.core.accounts.list_keys("alice")] == ["ci"]


def test_keys_for_an_org_need_its_membership(site_with_users: Site) -> None:
    site = site_with_users
    site.core.orgs.create("Contoso", "alice")
    view, _ = site.core.accounts.create_key("alice", "k", ["push"], ["*"], [], None, "contoso")
    assert view.owner == "Contoso"
    with refused(400, "bob cannot create keys for Contoso: not a member of that organization"):
        site.core.accounts.create_key("bob", "k", ["push"], ["*"], [], None, "Contoso")
    with refused(400, "bob cannot create keys for alice"):
        site.core.accounts.create_key("bob", "k", ["push"], ["*"], [], None, "alice")


def test_edit_a_key(site_with_users: Site, clock: Clock) -> None:
    site = site_with_users
    view, secret = site.core.accounts.create_key("alice", "k", ["push"], ["*"], [], 30)
    clock.advance(days=3)
    edited = site.core.accounts.edit_key("alice", view.id, name="ci", scopes=["push"], globs=["A.*"])
    assert (edited.name, edited.scopes, edited.globs, edited.expires) == (
        "ci",
        ["push"],
        ["A.*"],
        view.expires,
    )
    grant, _ = site.core.accounts.verify_key(secret, ADDRESS)
    assert (grant.scopes, grant.globs) == (frozenset({"push"}), ("A.*",))
    with refused(400, "A key's scopes cannot change"):  # as on nuget.org: other actions, another key
        site.core.accounts.edit_key("alice", view.id, scopes=["push", "unlist"])
    with refused(400, "choose at least one scope"):
        site.core.accounts.edit_key("alice", view.id, scopes=[])
    with refused(404, f"bob has no API key '{view.id}'"):
        site.core.accounts.edit_key("bob", view.id, name="mine now")
    assert site.core.accounts.list_keys("alice") == [edited]


def test_only_its_creator_regenerates_or_deletes_a_key(site_with_users: Site) -> None:
    site = site_with_users
    view, _ = site.core.accounts.create_key("alice", "k", ["push"], ["*"], [], None)
    with pytest.raises(NotFound):
        site.core.accounts.regenerate_key("bob", view.id)
    with pytest.raises(NotFound):
        site.core.accounts.delete_key("bob", view.id)
    assert [k.id for k in site.core.accounts.list_keys("alice")] == [view.id]


def test_key_changes_are_audited_without_the_secret(site_with_users: Site) -> None:
    site = site_with_users
    view, secret = site.core.accounts.create_key("alice", "k", ["push"], ["*"], [], None, address=ADDRESS)
    _, new_secret = site.core.accounts.regenerate_key("alice", view.id, address=ADDRESS)
    site.core.accounts.edit_key("alice", view.id, name="k2", address=ADDRESS)
    site.core.accounts.delete_key("alice", view.id, address=ADDRESS)
    events = site.events()
    assert [(e.action, e.key_id, e.actor, e.address) for e in events] == [
        (action, view.id, "alice", ADDRESS)
        for action in ("key.create", "key.regenerate", "key.edit", "key.delete")
    ]
    dumped = repr([e.as_json() for e in events])
    for presented in (secret, new_secret):
        assert presented[-50:-7] not in dumped


# verify_key -------------------------------------------------------------------------------------------------


def dead(reason: str) -> str:
    """The message of a dead key: its precise reason, then nuget.org's sentence (as a regex)."""
    return f"^{reason}.*\\. {INVALID_KEY}$"


def test_a_valid_key_grants_what_it_was_made_with(site_with_users: Site) -> None:
    site = site_with_users
    site.core.orgs.create("Contoso", "alice")
    secret = site.secret(
        "alice", "push-version", globs=("Contoso.*",), packages=("Other.Lib",), owner="Contoso"
    )
    grant, warnings = site.core.accounts.verify_key(f"  {secret}\n", ADDRESS)
    users = {u.name: u.id for u in site.core.accounts.users()}
    assert (grant.key_id, grant.user_id, grant.owner_name) == (key_id(secret), users["alice"], "Contoso")
    assert grant.owner_id != users["alice"]
    assert (grant.scopes, grant.globs, grant.packages) == (
        frozenset({"push-version"}),
        ("Contoso.*",),
        ("Other.Lib",),
    )
    assert warnings == []


def test_a_key_close_to_its_expiry_warns(site_with_users: Site, clock: Clock) -> None:
    secret = site_with_users.secret("alice", days=30)
    clock.advance(days=20)
    _, warnings = site_with_users.core.accounts.verify_key(secret, ADDRESS)
    assert warnings == [
        f"The API key {key_id(secret)} expires on 2026-03-31T12:00:00Z: regenerate or create a new one"
    ]


@pytest.mark.parametrize(
    ("presented", "reason"),
    [
        (None, "No API key was sent: pass one with -ApiKey"),
        ("", "No API key was sent"),
        ("not-a-key", "The API key is not a nugat API key: it is mistyped or cut short"),
        (keys.new_key("aaaaaaaaaaaaaaaa"), "API key aaaaaaaaaaaaaaaa does not exist: it was deleted"),
    ],
    ids=["none", "empty", "malformed", "unknown key id"],  # stable: pytest-xdist compares collections
)
def test_a_missing_malformed_or_unknown_key_is_403(
    site_with_users: Site, presented: str | None, reason: str
) -> None:
    with refused(403, dead(reason)) as info:
        site_with_users.core.accounts.verify_key(presented, ADDRESS)
    assert isinstance(info.value, KeyRefused) and info.value.detail.startswith(reason)


def test_a_mistyped_key_is_403(site_with_users: Site) -> None:
    secret = site_with_users.secret("alice")
    typo = secret[:20] + ("A" if secret[20] != "A" else "B") + secret[21:]  # the checksum catches it
    with refused(403, dead("The API key is not a nugat API key")):
        site_with_users.core.accounts.verify_key(typo, ADDRESS)


def test_the_right_key_id_with_a_wrong_secret_is_403_and_audited(site_with_users: Site) -> None:
    secret = site_with_users.secret("alice")
    reason = f"The secret of API key {key_id(secret)} is wrong"
    with refused(403, dead(reason)):
        site_with_users.core.accounts.verify_key(keys.new_key(key_id(secret)), "198.51.100.7")
    [event] = site_with_users.events("key.use_failed")
    assert (event.key_id, event.actor, event.address, event.detail) == (
        key_id(secret),
        "alice",
        "198.51.100.7",
        {"reason": reason},
    )


def test_an_expired_key_is_403(site_with_users: Site, clock: Clock) -> None:
    secret = site_with_users.secret("alice", days=1)
    site_with_users.core.accounts.verify_key(secret, ADDRESS)
    clock.advance(days=1)
    with refused(403, dead(f"API key {key_id(secret)} expired on 2026-03-02T12:00:00Z: regenerate it")):
        site_with_users.core.accounts.verify_key(secret, ADDRESS)
    assert site_with_users.core.accounts.list_keys("alice")[0].expired


def test_a_regenerated_key_has_only_its_new_secret(site_with_users: Site) -> None:
    old = site_with_users.secret("alice")
    view, new = site_with_users.core.accounts.regenerate_key("alice", key_id(old))
    assert view.id == key_id(old) == key_id(new) and new != old
    reason = f"API key {view.id} was regenerated on 2026-03-01T12:00:00Z: its old secret no longer works"
    with refused(403, dead(reason)):
        site_with_users.core.accounts.verify_key(old, ADDRESS)
    grant, _ = site_with_users.core.accounts.verify_key(new, ADDRESS)
    assert grant.key_id == view.id


def test_a_deleted_key_is_403(site_with_users: Site) -> None:
    secret = site_with_users.secret("alice")
    site_with_users.core.accounts.delete_key("alice", key_id(secret))
    with refused(403, dead(f"API key {key_id(secret)} does not exist")):
        site_with_users.core.accounts.verify_key(secret, ADDRESS)
    assert site_with_users.core.accounts.list_keys("alice") == []


def test_failures_from_one_address_block_it_even_for_a_valid_key(site_with_users: Site, clock: Clock) -> None:
    site = site_with_users
    secret = site.secret("alice")
    for _ in range(FAILED_KEY_LIMIT):
        with pytest.raises(KeyRefused):
            site.core.accounts.verify_key("nugat_garbage", "198.51.100.9")
    with refused(429, "Too many failed API key attempts from 198.51.100.9; retry later") as info:
        site.core.accounts.verify_key(secret, "198.51.100.9")
    assert 0 < info.value.retry_after <= 60  # type: ignore[attr-defined]
    site.core.accounts.verify_key(secret, "198.51.100.10")  # other addresses are not held up
    clock.advance(minutes=1)
    site.core.accounts.verify_key(secret, "198.51.100.9")


def test_keys_refused_at_the_same_time_are_told_why_only_up_to_the_limit(site_with_users: Site) -> None:
    accounts = site_with_users.core.accounts
    strangers = [keys.new_key(keys.new_key_id()) for _ in range(FAILED_KEY_LIMIT + 20)]
    statuses = at_once(len(strangers), lambda n: accounts.verify_key(strangers[n], "198.51.100.9"))
    assert statuses == [403] * FAILED_KEY_LIMIT + [429] * 20


def test_guessing_one_keys_secret_from_many_addresses_is_429_but_its_holder_goes_on(
    site_with_users: Site,
) -> None:
    site = site_with_users
    secret = site.secret("alice")
    for n in range(FAILED_KEY_LIMIT):
        with pytest.raises(KeyRefused):
            site.core.accounts.verify_key(keys.new_key(key_id(secret)), f"198.51.100.{n}")
    with refused(429, f"Too many failed attempts for API key {key_id(secret)}"):
        site.core.accounts.verify_key(keys.new_key(key_id(secret)), "203.0.113.1")
    grant, _ = site.core.accounts.verify_key(secret, "203.0.113.2")
    assert grant.key_id == key_id(secret)


def test_a_key_that_used_its_pushes_this_hour_is_429_before_the_upload(
    make_site: Callable[..., Site], clock: Clock
) -> None:
    site = make_site(push_limit_per_hour=1)
    site.users("alice")
    secret = site.secret("alice")
    grant, _ = site.core.accounts.verify_key(secret, ADDRESS, push_limit=1)
    site.push(grant, "Alice.Lib")
    with pytest.raises(TooManyRequests, match=f"API key {grant.key_id} has pushed 1 packages this hour"):
        site.core.accounts.verify_key(secret, ADDRESS, push_limit=1)
    site.core.accounts.verify_key(secret, ADDRESS)  # an unlist is not a push
    clock.advance(hours=1)
    site.core.accounts.verify_key(secret, ADDRESS, push_limit=1)


def test_a_pushing_key_records_its_last_use_at_most_once_a_minute(
    site_with_users: Site, clock: Clock
) -> None:
    site = site_with_users
    grant = site.key("alice")
    start = clock.now
    site.push(grant, "Alice.Lib", "1.0.0")
    clock.advance(seconds=30)
    site.push(grant, "Alice.Lib", "1.0.1")
    assert site.core.accounts.list_keys("alice")[0].last_used == start
    clock.advance(seconds=31)
    site.unlist(grant, "Alice.Lib", "1.0.1")
    assert site.core.accounts.list_keys("alice")[0].last_used == clock.now


def test_a_key_minted_by_trusted_publishing_gives_no_expiry_warning(
    site_with_users: Site, clock: Clock
) -> None:
    """A minted key lives minutes by design and cannot be regenerated: "regenerate" would be wrong."""
    site = site_with_users
    secret = site.secret("alice", days=30)
    with site.core.db.session() as s:
        alice = s.scalar(select(Account).where(Account.name_lower == "alice"))
        assert alice is not None
        now = clock()
        policy = TrustedPolicy(name="ci", creator_id=alice.id, owner_id=alice.id, kind="github",
                               issuer="https://issuer.test", criteria={}, scopes=["push"], globs=["*"],
                               packages=[], key_minutes=15, created_at=now, updated_at=now)  # fmt: skip
        s.add(policy)
        s.flush()
        s.execute(
            update(ApiKey)
            .where(ApiKey.key_id == key_id(secret))
            .values(policy_id=policy.id, expires_at=now + timedelta(minutes=15))
        )
    grant, warnings = site.core.accounts.verify_key(secret, ADDRESS)
    assert grant.policy_id is not None and warnings == []


def test_an_expired_key_is_not_edited_by_any_caller(site_with_users: Site, clock: Clock) -> None:
    """The pages and the command line alike: regenerate it (renewing it) first."""
    site = site_with_users
    secret = site.secret("alice", days=1)
    clock.advance(days=2)
    with refused(409, "has expired: regenerate it to renew it first"):
        site.core.accounts.edit_key("alice", key_id(secret), name="zzz")
    site.core.accounts.regenerate_key("alice", key_id(secret))
    assert site.core.accounts.edit_key("alice", key_id(secret), name="zzz").name == "zzz"
