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
