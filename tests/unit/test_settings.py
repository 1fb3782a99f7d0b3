"""Settings read from the environment: defaults that depend on one another."""

from __future__ import annotations

import pytest

from nugat.settings import Settings


@pytest.mark.parametrize(
    ("read_access", "signup", "expected"),
    [
        (None, None, True),  # a public site: anyone may sign up
        ("users", None, False),  # a private site: a stranger's account would read everything
        ("users", "true", True),  # unless the operator says so
        ("public", "false", False),
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
    monkeypatch.setenv("NUGAT_SECRET_KEY", "the-server-secret")
    for name in ("NUGAT_DATABASE_URL", "NUGAT_STORAGE_URL"):
        monkeypatch.setenv(name, "scheme://user:the-url-password@host/x")
    settings = Settings(smtp_url="smtp://user:the-url-password@host:587")
    assert settings.metrics_token == long
    shown = repr(settings)
    assert long not in shown and "the-server-secret" not in shown and "the-url-password" not in shown
    monkeypatch.setenv("NUGAT_METRICS_TOKEN", " ")
    assert Settings().metrics_token is None
