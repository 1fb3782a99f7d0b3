import itertools
import random

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nugat.versions import InvalidVersion, NuGetVersion, VersionRange, parse_range, parse_version

# --- examples -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalized", "full"),
    [
        ("1", "1.0.0", "1.0.0"),
        ("1.0", "1.0.0", "1.0.0"),
        ("1.0.0.0", "1.0.0", "1.0.0"),
        ("1.02.3.0", "1.2.3", "1.2.3"),
        ("01.002.0003", "1.2.3", "1.2.3"),
        ("1.2.3.4", "1.2.3.4", "1.2.3.4"),
        ("1.2.3.4-rc", "1.2.3.4-rc", "1.2.3.4-rc"),
        ("  1.0.0-Beta  ", "1.0.0-Beta", "1.0.0-Beta"),
        ("1.0-beta.1+build.5", "1.0.0-beta.1", "1.0.0-beta.1+build.5"),
        ("1.0.0+meta-data", "1.0.0", "1.0.0+meta-data"),
        ("1.0.0+0001.02", "1.0.0", "1.0.0+0001.02"),
        ("1.0.0-0", "1.0.0-0", "1.0.0-0"),
        ("1.0.0-0A.-.x-1", "1.0.0-0A.-.x-1", "1.0.0-0A.-.x-1"),
        ("2147483647.0", "2147483647.0.0", "2147483647.0.0"),
    ],
)
def test_normalization(text: str, normalized: str, full: str) -> None:
    version = parse_version(text)
    assert version.normalized == normalized
    assert version.full == full
    assert version.original == text.strip()


def test_fields() -> None:
    assert NuGetVersion.parse("1.2.3.4-a.B+m.1") == NuGetVersion(1, 2, 3, 4, ("a", "B"), "m.1", "x")
    version = parse_version("1.2.3.4-a.B+m.1")
    assert (version.major, version.minor, version.patch, version.revision) == (1, 2, 3, 4)
    assert version.release_labels == ("a", "B")
    assert version.metadata == "m.1"
    assert parse_version("1.0").release_labels == ()
    assert parse_version("1.0").metadata is None


ORDERED = [
    "0.0.0-0",
    "0.9.9",
    "1.0.0-0",
    "1.0.0-2",
    "1.0.0-10",
    "1.0.0-a",
    "1.0.0-a.b",
    "1.0.0-a-b",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-Beta",
    "1.0.0-beta.2",
    "1.0.0-BETA.11",
    "1.0.0-beta.x",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.0.1-alpha",
    "1.0.0.1",
    "1.0.1",
    "1.1",
    "1.10",
    "2.0.0-pre",
    "2.0",
    "10.0.0",
]


def test_ordering() -> None:
    expected = [parse_version(text) for text in ORDERED]
    shuffled = expected[:]
    random.Random(1234).shuffle(shuffled)
    assert [v.original for v in sorted(shuffled)] == ORDERED
    for lower, higher in itertools.pairwise(expected):
        assert lower < higher and lower <= higher and higher > lower and higher >= lower
        assert lower != higher


def test_ordering_quirks_follow_nuget() -> None:
    # NuGet uses int.TryParse to spot numeric labels: "-1" is the number -1, and a label that
    # does not fit in an int32 is compared as text, after all numeric labels.
    assert parse_version("1.0.0--1") < parse_version("1.0.0-0")
    assert parse_version("1.0.0--0") == parse_version("1.0.0-0")
    assert parse_version("1.0.0-2147483647") < parse_version("1.0.0-2147483648")
    assert parse_version("1.0.0-3") < parse_version("1.0.0-2147483648")
    assert parse_version("1.0.0-99999999999") < parse_version("1.0.0-a")


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("1.0", "1.0.0"),
        ("1", "1.0.0.0"),
        ("1.0.0", "1.0.0+meta"),
        ("1.0.0-BETA", "1.0.0-beta"),
        ("1.0.0-beta.X+a", "1.0.0-Beta.x+b"),
        ("01.002.0003", "1.2.3"),
    ],
)
def test_equal(left: str, right: str) -> None:
    a, b = parse_version(left), parse_version(right)
    assert a == b and hash(a) == hash(b) and a <= b and a >= b
    assert not (a < b or a > b)
    assert len({a, b}) == 1


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("1.0.0", "1.0.0-0"),
        ("1.0.0-beta", "1.0.0-beta.0"),
        ("1.0.0.1", "1.0.0"),
        ("1.0.0-alpha", "1.0.0-alpha1"),
    ],
)
def test_not_equal(left: str, right: str) -> None:
    assert parse_version(left) != parse_version(right)


def test_not_equal_to_other_types() -> None:
    assert parse_version("1.0.0") != "1.0.0"
    with pytest.raises(TypeError):
        _ = parse_version("1.0.0") < "1.0.0"  # type: ignore[operator]


@pytest.mark.parametrize(
    ("text", "prerelease", "semver2"),
    [
        ("1.0.0", False, False),
        ("1.0.0.1", False, False),
        ("1.0.0-beta", True, False),
        ("1.0.0-beta-1", True, False),
        ("1.0.0.1-rc", True, False),
        ("1.0.0-beta.1", True, True),
        ("1.0.0+meta", False, True),
        ("1.0.0-beta+meta", True, True),
    ],
)
def test_prerelease_and_semver2(text: str, prerelease: bool, semver2: bool) -> None:
    version = parse_version(text)
    assert version.is_prerelease is prerelease
    assert version.is_semver2 is semver2


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "1.0.0.0.0",
        "a.b",
        "1.a",
        "1..0",
        ".1",
        "1.",
        "v1.0",
        "-1.0",
        "+1.0",
        "1.0-",
        "1.0+",
        "1.0-beta+",
        "1.0-+meta",
        "1.0-beta..1",
        "1.0-.beta",
        "1.0-beta.",
        "1.0+meta..x",
        "1.0+a+b",
        "1.0-be_ta",
        "1.0+m_x",
        "1.0.0-01",
        "01.0-beta.01",
        "1. 0",
        "1.0 -beta",
        "2147483648.0",
        "1.0.0.99999999999",
        "9" * 5000,  # past what Python's int() takes from text: still only invalid
        "1." + "0" * 4000 + "1" * 11,
        "1.0.*",
        "1.0.0-béta",
        "\u0661.\u0660",  # Arabic-Indic digits
    ],
)
def test_invalid_versions(text: str) -> None:
    with pytest.raises(InvalidVersion):
        parse_version(text)


def test_a_numeric_label_of_thousands_of_digits_sorts_as_text() -> None:
    huge = parse_version("1.0.0-" + "9" * 5000)
    assert parse_version("1.0.0-2147483647") < huge < parse_version("1.0.0-a")


def test_invalid_version_message() -> None:
    with pytest.raises(InvalidVersion) as info:
        parse_version("1.0.0-01")
    assert (
        str(info.value)
        == "'1.0.0-01' is not a valid version: numeric prerelease label '01' has a leading zero"
    )
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("1.0", "[1.0.0, )"),
        ("  1.0-beta+meta ", "[1.0.0-beta, )"),
        ("[1.0]", "[1.0.0]"),
        ("[1.0, 1.0.0.0]", "[1.0.0]"),
        ("[1.0,2.0)", "[1.0.0, 2.0.0)"),
        ("[1.0,2.0]", "[1.0.0, 2.0.0]"),
        ("(1.0,2.0)", "(1.0.0, 2.0.0)"),
        ("(,2.0]", "(, 2.0.0]"),
        ("[,2.0]", "(, 2.0.0]"),
        ("(,2.0)", "(, 2.0.0)"),
        ("(1.0,)", "(1.0.0, )"),
        ("[1.0,]", "[1.0.0, )"),
        ("[1.0,)", "[1.0.0, )"),
        (" [ 1.0 , 2.0.0.1 ) ", "[1.0.0, 2.0.0.1)"),
        ("[1.0.0-alpha.1, 1.0.0]", "[1.0.0-alpha.1, 1.0.0]"),
    ],
)
def test_range_parse_and_str(text: str, normalized: str) -> None:
    parsed = parse_range(text)
    assert str(parsed) == normalized
    assert VersionRange.parse(normalized) == parsed


def test_range_fields() -> None:
    assert parse_range("(1.0,2.0]") == VersionRange(parse_version("1.0"), False, parse_version("2.0"), True)
    assert parse_range("1.0") == VersionRange(parse_version("1.0"), True, None, False)
    # A missing bound is never inclusive.
    unbounded = parse_range("[,2.0]")
    assert unbounded.min_version is None and unbounded.include_min is False


@pytest.mark.parametrize(
    ("text", "version", "expected"),
    [
        ("1.0", "1.0.0", True),
        ("1.0", "0.9", False),
        ("1.0", "99.0", True),
        ("1.0", "1.0.0-beta", False),
        ("1.0-beta", "1.0.0-beta", True),
        ("1.0-beta", "1.0.0-BETA+meta", True),
        ("[1.0]", "1.0.0.0", True),
        ("[1.0]", "1.0.0.1", False),
        ("[1.0,2.0)", "2.0", False),
        ("[1.0,2.0)", "2.0.0-rc", True),
        ("[1.0,2.0)", "1.9999", True),
        ("[1.0,2.0]", "2.0", True),
        ("(1.0,2.0)", "1.0", False),
        ("(1.0,2.0)", "1.0.0.1", True),
        ("(,2.0]", "0.0.0-0", True),
        ("(,2.0]", "2.0.0.1", False),
        ("(1.0,)", "1.0.1-alpha", True),
    ],
)
def test_range_contains(text: str, version: str, expected: bool) -> None:
    assert parse_range(text).contains(parse_version(version)) is expected


@pytest.mark.parametrize(
    ("text", "semver2"),
    [
        ("1.0", False),
        ("[1.0-beta, 2.0)", False),
        ("[1.0-beta.1, 2.0)", True),
        ("(, 2.0+meta]", True),
    ],
)
def test_range_semver2(text: str, semver2: bool) -> None:
    assert parse_range(text).is_semver2 is semver2


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        "[",
        "(",
        "[]",
        "()",
        "[ ]",
        "[,]",
        "(,)",
        "( , )",
        "(1.0)",
        "[1.0)",
        "(1.0]",
        "[1.0",
        "1.0]",
        "[1.0,2.0",
        "[1.0,2.0,3.0]",
        "[2.0,1.0]",
        "(1.0,1.0)",
        "[1.0,1.0)",
        "(1.0,1.0]",
        "[a,2.0]",
        "[1.0,b]",
        "1.0,2.0",
        "1.0.*",
        "*",
        "{1.0,2.0}",
    ],
)
def test_invalid_ranges(text: str) -> None:
    with pytest.raises(InvalidVersion):
        parse_range(text)


def test_invalid_range_message_names_the_bad_version() -> None:
    with pytest.raises(
        InvalidVersion, match=r"'\[1\.0, 1\.0\.0-01\]' is not a valid version range: '1\.0\.0-01'"
    ):
        parse_range("[1.0, 1.0.0-01]")


# --- properties -----------------------------------------------------------------------------------

IDENTIFIER_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-"
numbers = st.one_of(st.integers(0, 3), st.integers(0, 2**31 - 1))
identifiers = st.text(IDENTIFIER_CHARS, min_size=1, max_size=6)
labels = st.one_of(
    st.sampled_from(["alpha", "Beta", "rc", "0", "1", "10"]),
    numbers.map(str),
    identifiers.filter(lambda s: not (len(s) > 1 and s[0] == "0" and s.isdigit())),
)


@st.composite
def version_texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(numbers, min_size=1, max_size=4))
    text = ".".join("0" * draw(st.integers(0, 2)) + str(part) for part in parts)
    release = draw(st.lists(labels, max_size=3))
    if release:
        text += "-" + ".".join(release)
    if draw(st.booleans()):
        text += "+" + ".".join(draw(st.lists(identifiers, min_size=1, max_size=3)))
    return text


versions = version_texts().map(parse_version)


@given(version_texts())
def test_parse_normalized_round_trips(text: str) -> None:
    version = parse_version(text)
    again = parse_version(version.normalized)
    assert again == version
    assert again.normalized == version.normalized
    assert again.metadata is None


@given(version_texts())
def test_full_round_trip_keeps_metadata(text: str) -> None:
    version = parse_version(text)
    again = parse_version(version.full)
    assert again.full == version.full
    assert again.metadata == version.metadata
    assert again.release_labels == version.release_labels


@given(st.text(max_size=20))
def test_arbitrary_text_is_rejected_cleanly_or_round_trips(text: str) -> None:
    try:
        version = parse_version(text)
    except InvalidVersion:
        return
    assert parse_version(version.full).full == version.full


@given(versions, versions, versions)
def test_total_order_consistent_with_eq_and_hash(a: NuGetVersion, b: NuGetVersion, c: NuGetVersion) -> None:
    assert [a < b, a == b, a > b].count(True) == 1
    assert (a <= b) == (a < b or a == b)
    assert (a >= b) == (a > b or a == b)
    assert (a < b) == (b > a)
    assert (a != b) is not (a == b)
    if a == b:
        assert hash(a) == hash(b)
    if a <= b and b <= c:
        assert a <= c
    if a < b and b < c:
        assert a < c
    ordered = sorted([c, a, b])
    assert ordered[0] <= ordered[1] <= ordered[2]


@given(versions, st.one_of(st.none(), identifiers))
def test_equality_ignores_metadata_case_and_padding(version: NuGetVersion, metadata: str | None) -> None:
    text = f"{version.major:03d}.{version.minor}.{version.patch}.{version.revision}"
    if version.release_labels:
        text += "-" + ".".join(version.release_labels).swapcase()
    if metadata is not None:
        text += "+" + metadata
    variant = parse_version(text)
    assert variant == version
    assert hash(variant) == hash(version)


@given(versions, versions)
def test_range_contains_inclusive_bounds(a: NuGetVersion, b: NuGetVersion) -> None:
    low, high = min(a, b), max(a, b)
    closed = parse_range(f"[{low.full}, {high.full}]")
    assert closed.contains(low) and closed.contains(high)
    assert parse_range(str(closed)) == closed
    assert parse_range(low.full).contains(high)
    assert not parse_range(f"(, {low.full})").contains(low)
    if low < high:
        opened = parse_range(f"({low.full}, {high.full})")
        assert not opened.contains(low) and not opened.contains(high)
        assert parse_range(str(opened)) == opened


@given(versions, versions, versions)
def test_range_contains_matches_comparisons(a: NuGetVersion, b: NuGetVersion, v: NuGetVersion) -> None:
    assume(a < b)
    half_open = parse_range(f"[{a.normalized}, {b.normalized})")
    assert half_open.contains(v) == (a <= v < b)
