"""Two-factor codes and single-use links on the service tests' stopped clock: a TOTP code is good for its
step and one either side, once; recovery codes once each; the sign-in step and reset links expire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta

import pyotp
import pytest

from nugat.services.account_mail import issue, redeem
from support.services import MAILING, Clock, Site, at_once, refused


def _totp(site: Site, user_id: int) -> pyotp.TOTP:
    return pyotp.TOTP(site.core.twofactor.begin(user_id).secret)


def _at(clock: Clock, totp: pyotp.TOTP, steps: int = 0) -> str:
    return totp.at(clock.now.replace(tzinfo=UTC).timestamp() + 30 * steps)


def test_codes_drift_one_step_and_count_once(site: Site, clock: Clock) -> None:
    user = site.user("alice")
    twofactor = site.core.twofactor
    totp = _totp(site, user.id)
    codes = twofactor.confirm(user.id, _at(clock, totp))
    assert len(codes) == 10
    with refused(401, "not right"):
        twofactor.check(user.id, _at(clock, totp), "192.0.2.1")  # the enrolment's code, again
    assert twofactor.check(user.id, _at(clock, totp, 1), "192.0.2.1") == "totp"  # the next step, early
    clock.advance(seconds=120)
    with refused(401, "not right"):
        twofactor.check(user.id, _at(clock, totp, -2), "192.0.2.1")  # a minute old: too old
    assert twofactor.check(user.id, _at(clock, totp, -1), "192.0.2.1") == "totp"
    assert twofactor.check(user.id, codes[3].replace("-", " ").upper(), "192.0.2.1") == "recovery"
    with refused(401, "not right"):
        twofactor.check(user.id, codes[3], "192.0.2.1")
    assert twofactor.recovery_left(user.id) == 9


def test_wrong_codes_lock_for_a_quarter_hour(site: Site, clock: Clock) -> None:
    user = site.user("alice")
    twofactor = site.core.twofactor
    totp = _totp(site, user.id)
    twofactor.confirm(user.id, _at(clock, totp))
    for _ in range(10):
        with refused(401, "not right"):
            twofactor.check(user.id, "000000", "192.0.2.7")
    with refused(429, "Too many wrong codes"):
        twofactor.check(user.id, _at(clock, totp, 1), "192.0.2.8")
    clock.advance(minutes=16)
    assert twofactor.check(user.id, _at(clock, totp), "192.0.2.8") == "totp"


def test_wrong_codes_are_bounded_to_thirty_a_day_for_each_password(
    make_site: Callable[..., Site], clock: Clock
) -> None:
    """Ten every quarter hour alone let whoever has the password try 960 codes a day, one chance in ~350 a
    day of a right one. Counted per password: after a reset its owner is not refused for the day."""
    site = make_site(**MAILING)
    user = site.user("alice")
    twofactor = site.core.twofactor
    totp = _totp(site, user.id)
    twofactor.confirm(user.id, _at(clock, totp))
    wrong = 0
    for address in ("192.0.2.7", "192.0.2.8", "192.0.2.9"):  # ten a quarter hour, from anywhere
        for _ in range(10):
            with refused(401, "not right"):
                twofactor.check(user.id, f"{wrong:06}", address)
            wrong += 1
        clock.advance(minutes=16)
    with refused(429, r"Too many wrong codes: try again in 2\d hours"):
        twofactor.check(user.id, _at(clock, totp), "198.51.100.1")  # a right code too: refused
    told = [m for m in site.mails("alice@example.test") if m.kind == "twofactor_failures"]
    assert len(told) == 3  # at each bound reached: each quarter hour's (the last one's is the day's too)
    assert "knew your password" in " ".join(told[0].text_body.split())
    assert "192.0.2.7" in told[0].text_body and "192.0.2.9" in told[-1].text_body
    site.core.account_mail.admin_reset("alice", "a brand new passphrase 99")  # (or by a reset link)
    assert twofactor.check(user.id, _at(clock, totp), "198.51.100.1") == "totp"
    clock.advance(hours=23)
    assert twofactor.check(user.id, _at(clock, totp), "198.51.100.1") == "totp"


def test_codes_sent_at_the_same_time_are_checked_only_up_to_the_limit(site: Site, clock: Clock) -> None:
    user = site.user("alice")
    twofactor = site.core.twofactor
    totp = _totp(site, user.id)
    twofactor.confirm(user.id, _at(clock, totp))
    statuses = at_once(24, lambda n: twofactor.check(user.id, f"{n:06}", "192.0.2.7"))
    assert statuses == [401] * 10 + [429] * 14


def test_a_right_code_is_not_counted_as_a_failure(site: Site, clock: Clock) -> None:
    user = site.user("alice")
    twofactor = site.core.twofactor
    totp = _totp(site, user.id)
    twofactor.confirm(user.id, _at(clock, totp))
    for _ in range(12):
        clock.advance(seconds=30)
        assert twofactor.check(user.id, _at(clock, totp), "192.0.2.7") == "totp"


@pytest.mark.parametrize(("purpose", "minutes"), [("reset", 60), ("signin", 10)])
def test_tokens_expire_and_are_used_once(site: Site, clock: Clock, purpose: str, minutes: int) -> None:
    user = site.user("alice")
    with site.core.db.session() as s:
        token = issue(s, user.id, purpose, timedelta(minutes=minutes))
        late = issue(s, user.id, purpose, timedelta(minutes=minutes))  # the first stops working
    with site.core.db.session() as s, refused(410, "expired or was already used"):
        redeem(s, purpose, token)
    clock.advance(minutes=minutes, seconds=1)
    with site.core.db.session() as s, refused(410, "expired or was already used"):
        redeem(s, purpose, late)


def test_a_reset_link_works_once_within_the_hour(site: Site, clock: Clock) -> None:
    user = site.user("alice")
    with site.core.db.session() as s:
        token = issue(s, user.id, "reset", timedelta(hours=1))
    clock.advance(minutes=59)
    site.core.account_mail.reset(token, "a new long passphrase 9")
    with refused(410, "expired or was already used"):
        site.core.account_mail.reset(token, "another long passphrase 9")
    assert site.core.accounts.authenticate("alice", "a new long passphrase 9") is not None
