"""API keys (``nugat.keys``): format, checksum, parsing of hostile input, hashing, glob matching, scopes."""

from __future__ import annotations

import re
import string
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nugat.keys import (
    InvalidKeySettings,
    ParsedKey,
    Scope,
    glob_matches,
    hash_secret,
    new_key,
    new_key_id,
    normalize_settings,
    parse_key,
    scope_actions,
    scope_help,
    verify_secret,
)

KEY_FORMAT = re.compile(r"nugat_[a-z2-7]{16}_[A-Za-z0-9_-]{43}[a-z2-7]{7}")
PEPPER = b"pepper-for-tests"
ID_CHARS = string.ascii_letters + string.digits + "._-"


@pytest.fixture(scope="module")
def key() -> str:
    return new_key(new_key_id())


# --- format and parsing ----------------------------------------------------------------------------


def test_new_key_format_and_round_trip() -> None:
    key_id = new_key_id()
    keys = {new_key(key_id) for _ in range(50)}
    assert len(keys) == 50  # a fresh secret each time
    for key in keys:
        assert KEY_FORMAT.fullmatch(key), key
        parsed = parse_key(key)
        assert parsed is not None and parsed.key_id == key_id
        assert key == f"nugat_{key_id}_{parsed.secret}{key[-7:]}"
    assert len({new_key_id() for _ in range(50)}) == 50


@given(st.data())
def test_every_single_character_typo_is_caught_by_the_checksum(data: st.DataObject) -> None:
    key = new_key(new_key_id())
    pos = data.draw(st.integers(0, len(key) - 1))
    # The key is random outside hypothesis: draw an index into the other characters, never a filter
    # on the key's own (which would draw a varying number of times and make hypothesis call it flaky).
    others = [c for c in string.ascii_letters + string.digits + "_-" if c != key[pos]]
    typo = others[data.draw(st.integers(0, len(string.ascii_letters + string.digits + "_-") - 2))]
    assert parse_key(key[:pos] + typo + key[pos + 1 :]) is None


@given(st.data())
def test_swapped_neighbours_are_caught_by_the_checksum(data: st.DataObject) -> None:
    key = new_key(new_key_id())
    pos = data.draw(st.integers(0, len(key) - 2))
    swapped = key[:pos] + key[pos + 1] + key[pos] + key[pos + 2 :]
    assert swapped == key or parse_key(swapped) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nugat_",
        "nugat__",
        "x" * 73,
        "NUGAT_" + "a" * 67,
        "nugat_" + "A" * 100_000,  # huge
        "nugat_" + "a" * 16 + "_" + "=" * 43 + "a" * 7,
        "\x00" * 73,
        "nugat_\u0430bcdefghijklmnop_" + "A" * 43 + "aaaaaaa",  # Cyrillic a in the key id
        "nugat_abcdefghijklmnop_" + "\uff21" * 43 + "aaaaaaa",  # fullwidth A in the secret
        "nugat_abcdefghijklmnop_" + "\u0663" * 43 + "aaaaaaa",  # Arabic-Indic digit three
        "' OR '1'='1",
    ],
    ids=lambda t: repr(t[:20]),
)
def test_malformed_keys_are_refused(text: str) -> None:
    assert parse_key(text) is None


def test_whitespace_around_a_key_is_not_part_of_it(key: str) -> None:
    for variant in (key + "\n", key + " ", " " + key, key + "\r\n", key + "\x00"):
        assert parse_key(variant) is None, repr(variant)


@given(st.text(max_size=200))
def test_arbitrary_text_is_refused_unless_it_is_a_key(text: str) -> None:
    parsed = parse_key(text)
    assert parsed is None or KEY_FORMAT.fullmatch(text)


def test_parsing_a_huge_value_is_cheap() -> None:
    start = time.perf_counter()
    for _ in range(100):
        assert parse_key("nugat_" + "a" * (1 << 20)) is None
    assert time.perf_counter() - start < 1


# --- hashing ---------------------------------------------------------------------------------------


def test_hash_verifies_only_the_right_secret_under_the_right_pepper(key: str) -> None:
    parsed = parse_key(key)
    assert parsed is not None
    stored = hash_secret(PEPPER, parsed)
    assert len(stored) == 32 and stored == hash_secret(PEPPER, parsed)
    assert parsed.secret.encode() not in stored
    assert verify_secret(PEPPER, parsed, stored)
    assert not verify_secret(b"another pepper", parsed, stored)
    other = parse_key(new_key(parsed.key_id))
    assert other is not None and not verify_secret(PEPPER, other, stored)
    # The key id is part of what is hashed: a secret moved to another key id does not verify.
    assert not verify_secret(PEPPER, ParsedKey(new_key_id(), parsed.secret), stored)


# --- globs -----------------------------------------------------------------------------------------

ids = st.text(alphabet=ID_CHARS, min_size=1, max_size=40)
pieces = st.text(alphabet=ID_CHARS, max_size=10)


@given(ids)
def test_star_matches_every_id(package_id: str) -> None:
    assert glob_matches("*", package_id)
    assert glob_matches("**", package_id)


@given(pieces, ids)
def test_a_glob_without_star_is_an_exact_id(pattern: str, package_id: str) -> None:
    assert glob_matches(pattern, package_id) == (pattern.lower() == package_id.lower())


@given(pieces, ids)
def test_prefix_suffix_and_infix_globs(piece: str, package_id: str) -> None:
    lowered, p = package_id.lower(), piece.lower()
    assert glob_matches(piece + "*", package_id) == lowered.startswith(p)
    assert glob_matches("*" + piece, package_id) == lowered.endswith(p)
    assert glob_matches("*" + piece + "*", package_id) == (p in lowered)


@given(st.lists(pieces, min_size=1, max_size=5), st.lists(pieces, min_size=4, max_size=4))
def test_a_glob_matches_every_filling_of_its_stars(parts: list[str], fillings: list[str]) -> None:
    pattern = "*".join(parts)
    filled = parts[0] + "".join(f + p for f, p in zip(fillings, parts[1:], strict=False))
    assert glob_matches(pattern, filled.upper())
    assert glob_matches(pattern.upper(), filled.lower())


def test_globs_are_literal_apart_from_the_star() -> None:
    assert glob_matches("Contoso.*", "contoso.Utils")
    assert not glob_matches("Contoso.*", "ContosoXUtils")  # '.' is a dot, not "any character"
    assert not glob_matches("Contoso.*", "Contoso")
    assert glob_matches("a*a", "aa") and not glob_matches("a*a", "a")
    assert not glob_matches("A-B", "A_B")


def test_pathological_globs_match_in_linear_time() -> None:
    start = time.perf_counter()
    for stars in range(1, 50):
        assert not glob_matches("*a" * stars + "*X", "a" * 100)
        assert glob_matches("*a" * stars + "*", "a" * 100)
    assert time.perf_counter() - start < 1


# --- key settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("glob", ["Contoso.[a-z]", "(a|b)", "a?", "a b", "../x", "x" * 101, "\u0430*"])
def test_globs_other_than_id_characters_and_stars_are_refused(glob: str) -> None:
    with pytest.raises(InvalidKeySettings, match=r"^The glob pattern '.*' (contains|is longer).*\.$"):
        normalize_settings(["push"], [glob], [], 30)


def test_every_bad_glob_is_named_at_once_in_sentences() -> None:
    with pytest.raises(InvalidKeySettings) as refused:
        normalize_settings(["push"], ["Good.*", "a b", "c!d/", "x" * 101, "\u0430*"], [], 30)
    assert str(refused.value) == (
        "4 glob patterns are not valid: 'a b' contains a space; 'c!d/' contains '!' and '/'; "
        f"'{'x' * 37}...' is longer than 100 characters; '\u0430*' contains U+0430. "
        "A pattern uses only letters, digits, '.', '-', '_' and '*', at most 100 characters."
    )
    with pytest.raises(InvalidKeySettings) as refused:
        normalize_settings(["push"], ["Contoso/*"], [], 30)
    assert str(refused.value) == (
        "The glob pattern 'Contoso/*' contains '/'. "
        "A pattern uses only letters, digits, '.', '-', '_' and '*', at most 100 characters."
    )


@pytest.mark.parametrize("days", [0, -1, 366, 10**9])
def test_expiry_outside_one_to_365_days_is_refused(days: int) -> None:
    with pytest.raises(InvalidKeySettings, match="expiration must be 1 to 365 days"):
        normalize_settings(["push"], ["*"], [], days)


# --- scopes: each defined once, with the names the pages and the CLI give it ------------------------------


def test_every_scope_has_its_label_help_and_one_checkbox_of_the_key_form() -> None:
    actions = scope_actions()
    assert [scope for kinds in actions.values() for scope in kinds] == list(Scope)  # each once, in order
    names = [action.name for action in actions]
    assert len(set(names)) == len(names)
    assert not {*names, *(f"{n}_kind" for n in names)} & {
        "csrf",
        "once",
        "name",
        "owner",
        "glob",
        "package",
        "expires",
    }
    for action, kinds in actions.items():
        assert re.fullmatch(r"[a-z][a-z-]*", action.name) and action.label[:1].isupper()
        if len(kinds) == 1:  # a checkbox of its own: the scope's name and label
            assert (action.name, action.label) == (kinds[0].value, kinds[0].label)
    for scope in Scope:
        assert scope.label[:1].isupper() and scope.help[:1].islower()
        assert f"{scope.value}: {scope.help}" in scope_help()
    assert Scope.named(" Push-Version ") is Scope.PUSH_VERSION and Scope.named("delete") is None


def test_of_one_checkboxs_kinds_a_key_keeps_only_the_broadest() -> None:
    assert Scope.PUSH.action == Scope.PUSH_VERSION.action != Scope.UNLIST.action
    assert normalize_settings(["push-version", "UNLIST", "push"], ["*"], [], None)[0] == ["unlist", "push"]
    assert normalize_settings(["push-version", "push-version"], ["*"], [], None)[0] == ["push-version"]


def test_the_messages_offer_every_scope() -> None:
    every = "push, push-version, unlist or read"
    with pytest.raises(InvalidKeySettings, match=f"^unknown scope 'delete': use {every}$"):
        normalize_settings(["delete"], ["*"], [], None)
    with pytest.raises(InvalidKeySettings, match=f"^choose at least one scope: {every}$"):
        normalize_settings([], ["*"], [], None)
