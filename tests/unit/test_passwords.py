"""The list of common passwords (``nugat.passwords``) and the rule that refuses them (``check_password``)."""

from __future__ import annotations

import pytest

from nugat.passwords import common_passwords, is_common
from nugat.services import ServiceError
from nugat.services.accounts import check_password


def test_the_list_is_read_from_the_package() -> None:
    known = common_passwords()
    assert len(known) >= 20_000
    assert {"password", "qwertyuiop", "iloveyou", "password12"} <= known


@pytest.mark.parametrize(
    "password",
    [
        "password12",  # on the list
        "qwertyuiop",
        "QWERTYUIOP",  # any case
        "Password1!",  # digits and symbols added at the end
        "2024 summer",  # or at the start
        "!!!monkey###",
        "P@ssw0rd1",  # symbols for letters
        "p4$$w0rd2024",
        "l3tm31n!",
    ],
)
def test_common_passwords(password: str) -> None:
    assert is_common(password)


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "x7Gq!pL2vR",
        "dragonfly-summer-2024",
        "Tr0ub4dor&3",
        "1234567890ab",  # what is left is too short to be called a common password
        "new password 12345",
    ],
)
def test_uncommon_passwords(password: str) -> None:
    assert not is_common(password)


def test_check_password_says_why() -> None:
    with pytest.raises(ServiceError) as refused:
        check_password("Password1!")
    assert refused.value.message == (
        "The password is one of the most common passwords, or one with only digits or symbols added: "
        "choose another (three or four unrelated words make a strong one)"
    )
    check_password("correct horse battery staple")
