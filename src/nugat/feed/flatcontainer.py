"""PackageBaseAddress/3.0.0: the version list of an id (listed and unlisted)."""

from __future__ import annotations

from collections.abc import Sequence

from nugat.feed.registration import VersionRecord
from nugat.versions import version_key


def version_list(versions: Sequence[VersionRecord]) -> dict[str, list[str]]:
    ordered = sorted(versions, key=lambda v: version_key(v.version))
    return {"versions": [v.version_lower for v in ordered]}
