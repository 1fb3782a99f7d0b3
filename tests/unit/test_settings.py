"""Settings read from the environment: defaults that depend on one another."""

from __future__ import annotations

import logging
import re

import pytest

from nugat.settings import Settings


@pytest.mark.parametrize(
    ("read_access", "signup", "expected"),
    [
        (None, None, True),  # a public site: anyone may sign up
        ("users", None, False),  # a private site: a stranger's account would read everything
        ("users", "true", True),  # unless the operator says so
        ("public", "false", False),
        ("users", "off", False),  # was on: a stranger signed up on a private site
        ("users", " On ", True),
    ],
)
def test_sign_up_is_open_by_default_only_on_a_public_site(
    monkeypatch: pytest.MonkeyPatch, read_access: str | None, signup: str | None, expected: bool
) -> None:
    for name, value in (("NUGAT_READ_ACCESS", read_access), ("NUGAT_ALLOW_SIGNUP", signup)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert Settings().allow_signup is expected


def test_a_short_metrics_token_is_refused_and_no_secret_is_in_the_repr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short = "short-token-" + "s" * 19  # 31 characters
    monkeypatch.setenv("NUGAT_METRICS_TOKEN", f"  {short}  ")
    settings = Settings()
    assert settings.metrics_token == short  # the spaces around are dropped
    assert any("NUGAT_METRICS_TOKEN must be at least 32 characters" in p for p in settings.problems())
    assert "short-token" not in " ".join(settings.problems())
    long = "x" * 32
    monkeypatch.setenv("NUGAT_METRICS_TOKEN", long)
    assert Settings().problems() == []
    monkeypatch.setenv("NUGAT_SECRET_KEY", "the-server-secret-of-34-characters")
    for name in ("NUGAT_DATABASE_URL", "NUGAT_STORAGE_URL"):
        monkeypatch.setenv(name, "scheme://user:the-url-password@host/x")
    settings = Settings(smtp_url="smtp://user:the-url-password@host:587")
    assert settings.metrics_token == long
    shown = repr(settings)
    assert long not in shown and "the-server-secret" not in shown and "the-url-password" not in shown
    monkeypatch.setenv("NUGAT_METRICS_TOKEN", " ")
    assert Settings().metrics_token is None


BOOLEANS = {  # every on/off setting, and the field it sets
    "NUGAT_ALLOW_SIGNUP": "allow_signup",
    "NUGAT_TRUST_FORWARDED": "trust_forwarded",
    "NUGAT_FIRST_SIGNUP_ADMIN": "first_signup_is_admin",
    "NUGAT_REQUIRE_2FA": "require_2fa",
}
WORDS = [
    ("on", True),
    ("ON", True),
    (" Yes ", True),
    ("1", True),
    ("TRUE", True),
    ("off", False),
    ("Off", False),
    ("no", False),
    ("0", False),
    (" false ", False),
    ("enabled", None),  # refused: neither on nor off
    ("disabled", None),
    ("maybe", None),
    ("2", None),
    ("y", None),
]


@pytest.mark.parametrize("name", sorted(BOOLEANS))
@pytest.mark.parametrize(("value", "expected"), WORDS)
def test_every_on_off_setting_reads_the_same_words_and_refuses_any_other(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: bool | None
) -> None:
    # A private site, where NUGAT_ALLOW_SIGNUP=off once opened sign-up to strangers.
    monkeypatch.setenv("NUGAT_READ_ACCESS", "users")
    monkeypatch.setenv(name, value)
    if expected is None:
        with pytest.raises(
            ValueError, match=rf"^{name} must be true/false, 1/0, yes/no or on/off .*'{value}'"
        ):
            Settings()
    else:
        assert getattr(Settings(), BOOLEANS[name]) is expected


@pytest.mark.parametrize(
    ("value", "smtp", "expected"),
    [
        ("on", None, True),
        ("OFF", "smtp://mail.test:587", False),
        ("Auto", "smtp://mail.test:587", True),
        (" auto ", None, False),
        ("", "smtp://mail.test:587", True),
        ("maybe", None, None),  # was "never"
        ("enabled", None, None),
        ("always", None, None),
    ],
)
def test_confirm_email_is_auto_or_an_on_off_word(
    monkeypatch: pytest.MonkeyPatch, value: str, smtp: str | None, expected: bool | None
) -> None:
    monkeypatch.setenv("NUGAT_CONFIRM_EMAIL", value)
    if expected is None:
        with pytest.raises(
            ValueError, match=r"^NUGAT_CONFIRM_EMAIL must be auto or true/false, 1/0, yes/no or"
        ):
            Settings()
    else:
        assert Settings(smtp_url=smtp).email_confirmation is expected


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("NUGAT_PORT", "abc", "a whole number from 0 to 65535"),
        ("NUGAT_PORT", "70000", "a whole number from 0 to 65535"),
        ("NUGAT_PORT", "-1", "a whole number from 0 to 65535"),
        ("NUGAT_MAX_PACKAGE_BYTES", "0", "a whole number of bytes, 1 or more"),
        ("NUGAT_MAX_PACKAGE_BYTES", "-1", "a whole number of bytes, 1 or more"),
        ("NUGAT_MAX_PACKAGE_BYTES", "250MB", "a whole number of bytes, 1 or more"),
        ("NUGAT_UPLOAD_IDLE_TIMEOUT", "0", "a number of seconds above 0"),
        ("NUGAT_UPLOAD_IDLE_TIMEOUT", "abc", "a number of seconds above 0"),
        ("NUGAT_UPLOAD_TIMEOUT", "-5", "a number of seconds above 0"),
        ("NUGAT_UPLOAD_TIMEOUT", "inf", "a number of seconds above 0"),
        ("NUGAT_UPLOAD_TIMEOUT", "nan", "a number of seconds above 0"),
        ("NUGAT_PUSH_LIMIT_PER_HOUR", "-1", "a whole number of pushes (0: no limit), 0 or more"),
        ("NUGAT_PUSH_LIMIT_PER_HOUR", "1.5", "a whole number of pushes (0: no limit), 0 or more"),
        ("NUGAT_CLIENT_REQUEST_LIMIT", "-1", "a whole number (0: no limit), 0 or more"),
        ("NUGAT_MAIL_POLL_SECONDS", "0", "a number of seconds above 0"),
        ("NUGAT_MAIL_RETRY_SECONDS", "abc", "a number of seconds above 0"),
        ("NUGAT_LOG_FORMAT", "xml", "text or json"),
    ],
)
def test_a_number_out_of_range_or_not_a_number_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, accepted: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=rf"^{name} must be {re.escape(accepted)}"):
        Settings()


def test_numbers_in_range_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in [
        ("NUGAT_PORT", " 0 "),
        ("NUGAT_MAX_PACKAGE_BYTES", "1"),
        ("NUGAT_UPLOAD_IDLE_TIMEOUT", "1.5"),
        ("NUGAT_UPLOAD_TIMEOUT", "30"),
        ("NUGAT_PUSH_LIMIT_PER_HOUR", "0"),  # no limit, as NUGAT_CLIENT_REQUEST_LIMIT=0
        ("NUGAT_CLIENT_REQUEST_LIMIT", "0"),
        ("NUGAT_MAIL_RETRY_SECONDS", "0.5"),
    ]:
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert (settings.port, settings.max_package_bytes, settings.client_request_limit) == (0, 1, 0)
    assert (settings.upload_idle_timeout, settings.upload_timeout, settings.mail_retry_seconds) == (
        1.5,
        30,
        0.5,
    )
    assert settings.push_limit_per_hour is None
    monkeypatch.setenv("NUGAT_PUSH_LIMIT_PER_HOUR", "12")
    assert Settings().push_limit_per_hour == 12
    monkeypatch.delenv("NUGAT_PUSH_LIMIT_PER_HOUR")
    assert Settings().push_limit_per_hour == 350


def test_a_short_secret_key_is_warned_about_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Warned, not refused: changing a deployment's secret would end every key and session."""
    monkeypatch.setenv("NUGAT_SECRET_KEY", "s3cr3t-" + "k" * 24)  # 31 characters
    with caplog.at_level(logging.WARNING, logger="nugat"):
        assert Settings().server_secret() == b"s3cr3t-" + b"k" * 24
    [warning] = [r.getMessage() for r in caplog.records if "NUGAT_SECRET_KEY" in r.getMessage()]
    assert (
        warning.startswith("NUGAT_SECRET_KEY has 31 characters: use 32 or more") and "s3cr3t" not in warning
    )
    caplog.clear()
    monkeypatch.setenv("NUGAT_SECRET_KEY", "k" * 32)
    with caplog.at_level(logging.WARNING, logger="nugat"):
        assert Settings().server_secret() == b"k" * 32
    assert caplog.records == []
