"""Where each V3 document lives: its storage key is its URL path below the feed's base."""

from __future__ import annotations

import re

from nugat.feed import BASE
from nugat.versions import InvalidVersion, parse_version

FLAT = "v3/flatcontainer"
# The stored documents of an id: its flat container index, its registration indexes, pages and leaves.
_DOCUMENT = re.compile(r"v3/(?:flatcontainer/([^/]+)/index\.json|registration(?:-semver2)?/([^/]+)/.+)")
HIVES = {"registration": False, "registration-semver2": True}  # hive -> includes SemVer 2.0.0 versions


def flat_index(id_lower: str) -> str:
    return f"{FLAT}/{id_lower}/index.json"


def nupkg(id_lower: str, version_lower: str) -> str:
    return f"{FLAT}/{id_lower}/{version_lower}/{id_lower}.{version_lower}.nupkg"


_PACKAGE_ID = re.compile(r"[a-z0-9_.-]{1,100}")


def nupkg_named(package_id: str, version: str) -> str | None:
    """The storage key of the .nupkg an id and a version as a client wrote them name (any case, a version
    not normalized, as in a V2 download URL); None when they cannot name one."""
    id_lower = package_id.lower()
    if not _PACKAGE_ID.fullmatch(id_lower):
        return None
    try:
        return nupkg(id_lower, parse_version(version).normalized.lower())
    except InvalidVersion:
        return None


def nuspec(id_lower: str, version_lower: str) -> str:
    return f"{FLAT}/{id_lower}/{version_lower}/{id_lower}.nuspec"


def registration_index(hive: str, id_lower: str) -> str:
    return f"v3/{hive}/{id_lower}/index.json"


def registration_page(hive: str, id_lower: str, lower: str, upper: str) -> str:
    return f"v3/{hive}/{id_lower}/page/{lower}/{upper}.json"


def registration_leaf(hive: str, id_lower: str, version_lower: str) -> str:
    return f"v3/{hive}/{id_lower}/{version_lower}.json"


def absolute(key: str) -> str:
    return f"{BASE}/{key}"


def document_id(key: str) -> str | None:
    """The id (lowercased) whose document ``key`` is, or None for a package file or another key."""
    found = _DOCUMENT.fullmatch(key)
    return None if found is None else found.group(1) or found.group(2)
