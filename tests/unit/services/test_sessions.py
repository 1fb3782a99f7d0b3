"""``services.sessions``: sign-in sessions (only a hash stored, seven days), CSRF tokens bound to a value,
and one-time form tokens."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from nugat.db.models import WebSession
from nugat.services.sessions import Sessions
from support.services import SECRET, Clock, Site


@pytest.fixture
def sessions(site: Site) -> Sessions:
    site.users("alice", "bob")
    return Sessions(site.core.db, SECRET.encode())


def user_id(site: Site, name: str) -> int:
    return next(u.id for u in site.core.accounts.users() if u.name == name)


def test_a_session_signs_its_user_in_and_only_its_hash_is_stored(site: Site, sessions: Sessions) -> None:
    token = sessions.start(user_id(site, "alice"))
    assert sessions.user(token).name == "alice"  # type: ignore[union-attr]
    with site.core.db.reading() as s:
        assert list(s.scalars(select(WebSession.token_hash))) == [hashlib.sha256(token.encode()).digest()]
    assert sessions.start(user_id(site, "alice")) != token


@pytest.mark.parametrize("token", ["", "no-such-session", "x" * 129])
def test_unknown_tokens_sign_nobody_in(sessions: Sessions, token: str) -> None:
    assert sessions.user(token) is None


def test_a_session_lasts_seven_days(site: Site, sessions: Sessions, clock: Clock) -> None:
    token = sessions.start(user_id(site, "alice"))
    clock.advance(days=7, seconds=-1)
    assert sessions.user(token) is not None
    clock.advance(seconds=1)
    assert sessions.user(token) is None
    sessions.start(user_id(site, "bob"))  # a new session sweeps the expired ones away
    with site.core.db.reading() as s:
        assert len(list(s.scalars(select(WebSession.id)))) == 1


def test_signing_out_here_or_everywhere_with_a_new_token_here(
    site: Site, sessions: Sessions, clock: Clock
) -> None:
    alice = user_id(site, "alice")
    laptop, phone, tablet = (sessions.start(alice) for _ in range(3))
    bob = sessions.start(user_id(site, "bob"))
    sessions.end(phone)
    assert sessions.user(phone) is None and sessions.user(laptop) is not None
    clock.advance(days=1)
    renewed = sessions.restart(alice, laptop)
    assert renewed is not None and renewed != laptop
    # The laptop's old token (and so any copy of its cookie) ends with the other sessions.
    alive = [sessions.user(t) is not None for t in (renewed, laptop, tablet, bob)]
    assert alive == [True, False, False, True]
    assert not sessions.is_recent(renewed)  # its sign-in time is kept (a day ago): no sudo mode granted
    clock.advance(days=6, seconds=-1)
    assert sessions.user(renewed) is not None
    clock.advance(seconds=1)
    assert sessions.user(renewed) is None  # nor a longer life: it ends when the laptop's session would
    assert sessions.restart(alice, laptop) is None  # a session that ended meanwhile gets no new one
    bob = sessions.start(user_id(site, "bob"))
    assert sessions.restart(alice, bob) is None and sessions.user(bob) is not None  # not alice's session


def test_csrf_tokens_are_bound_to_their_value_and_the_server_secret(site: Site, sessions: Sessions) -> None:
    token = sessions.csrf_token("session-a")
    assert sessions.check_csrf("session-a", token)
    assert not sessions.check_csrf("session-b", token)
    assert not sessions.check_csrf("session-a", token[:-1] + ("0" if token[-1] != "0" else "1"))
    assert not sessions.check_csrf(None, token) and not sessions.check_csrf("session-a", None)
    assert not sessions.check_csrf("", sessions.csrf_token(""))
    other_server = Sessions(site.core.db, b"another secret")
    assert not other_server.check_csrf("session-a", token)


def test_a_one_time_form_token_is_claimed_once(sessions: Sessions, clock: Clock) -> None:
    assert sessions.claim_once("form-1")
    assert not sessions.claim_once("form-1")
    assert sessions.claim_once("form-2")
    assert not sessions.claim_once("") and not sessions.claim_once("x" * 129)
    clock.advance(days=1, seconds=1)  # the record of a claim is kept a day
    assert sessions.claim_once("form-1")
