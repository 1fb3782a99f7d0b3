"""``readgate``'s pure parts: which paths are feed reads and the id each names, and the Basic password."""

from __future__ import annotations

import base64

import pytest

from nugat.readgate import FeedRead, basic_password, package_of


@pytest.mark.parametrize(
    ("path", "read"),
    [
        ("/v3/flatcontainer/contoso.lib/index.json", FeedRead("contoso.lib")),
        ("/v3/flatcontainer/contoso.lib/1.0.0/contoso.lib.1.0.0.nupkg", FeedRead("contoso.lib")),
        ("/v3/flatcontainer/contoso.lib/1.0.0/readme", FeedRead("contoso.lib")),
        ("/v3/registration-semver2/contoso.lib/page/1.0.0/2.0.0.json", FeedRead("contoso.lib")),
        ("/v3/registration/Contoso.Lib/index.json", FeedRead("Contoso.Lib")),  # compared in lower case
        ("/v3/flatcontainer/", FeedRead(None)),
        ("/v3/search", FeedRead(None)),
        ("/v3/autocomplete", FeedRead(None)),
        ("/api/v2/FindPackagesById()", FeedRead(None)),  # the V2 handlers ask about each id themselves
        ("/api/v2/package/Contoso.Lib/1.0.0", FeedRead(None)),
        ("/v3/index.json", None),  # the service index needs no credentials
        ("/api/v2/", None),
        ("/api/v2/$metadata", None),
        ("/api/v2", None),
        ("/packages/Contoso.Lib", None),  # pages: the page layer decides
        ("/health", None),
    ],
)
def test_which_paths_are_feed_reads(path: str, read: FeedRead | None) -> None:
    assert package_of(path) == read


def basic(text: str) -> list[tuple[bytes, bytes]]:
    return [(b"host", b"feed.test"), (b"authorization", b"Basic " + base64.b64encode(text.encode()))]


def test_the_password_of_a_basic_header() -> None:
    assert basic_password(basic("any:nugat_key")) == "nugat_key"
    assert basic_password(basic("any:with:colons")) == "with:colons"
    assert basic_password(basic(":")) is None  # what mono sends for a source without credentials
    assert basic_password(basic("user-only")) is None
    assert basic_password([(b"host", b"feed.test")]) is None
    assert basic_password([(b"authorization", b"Bearer nugat_key")]) is None  # another scheme
    assert basic_password([(b"authorization", b"Basic %%%")]) == "?"  # unreadable: a malformed key
    assert basic_password([(b"authorization", b"Basic " + base64.b64encode(b"\xff:\xfe"))]) == "?"
