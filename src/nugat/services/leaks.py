"""Leaked keys: found in text reported by a secret scanner or pasted by a site admin, or inside a package
being pushed. Every valid nugat key among them is revoked at once (``Accounts.revoke``: audited with the
reason and where it was found, its creator mailed); what was not a valid key is ignored, and no answer
to a stranger says which were.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from pathlib import Path

from nugat import nuspec
from nugat.services import ServiceError
from nugat.services.accounts import Accounts

KEY_PATTERN = re.compile(r"nugat_[a-z2-7]{16}_[A-Za-z0-9_-]{43}[a-z2-7]{7}")
_KEY_BYTES = re.compile(KEY_PATTERN.pattern.encode())
_KEY_LENGTH = 6 + 16 + 1 + 43 + 7
SCAN_BYTES = 256 << 20  # of a package's uncompressed content, at most (a bounded scan)
MAX_CANDIDATES = 1000
IN_PACKAGE = "The package contains an API key"


def find_keys(text: str) -> list[str]:
    """The strings of ``text`` shaped like nugat keys (in order, once each)."""
    return list(dict.fromkeys(KEY_PATTERN.findall(text)))[:MAX_CANDIDATES]


def scan_package(path: Path, budget: int = SCAN_BYTES) -> list[str]:
    """The key-shaped strings in any entry of a package ``nuspec.read_package`` has accepted (and in the
    entry names), reading at most ``budget`` uncompressed bytes in all; InvalidPackage for a corrupt entry.
    Only after that reader: its checks of the zip's headers (entry count, compression ratio, methods) are
    what bound this read."""
    found: dict[str, None] = {}
    tail, current = b"", None
    with contextlib.closing(nuspec.read_contents(path, budget)) as contents:
        for info, chunk in contents:
            if info is not current:  # a new entry: its name first
                if len(found) >= MAX_CANDIDATES:
                    break
                current, tail = info, b""
                found.update(dict.fromkeys(KEY_PATTERN.findall(info.filename)))
            window = tail + chunk
            found.update((m.decode(), None) for m in _KEY_BYTES.findall(window))
            tail = window[-(_KEY_LENGTH - 1) :]
    return list(found)[:MAX_CANDIDATES]


class Leaks:
    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    def revoke(
        self,
        candidates: Iterable[str],
        reason: str,
        *,
        source: str | None = None,
        by: str | None = None,
        actor_id: int | None = None,
        address: str | None = None,
    ) -> int:
        """Revoke every valid key among ``candidates``; returns how many were revoked. ``actor_id`` and
        ``address``: who made the request that found them, for the audit log (none: the command line)."""
        revoked = 0
        for candidate in list(dict.fromkeys(candidates))[:MAX_CANDIDATES]:
            key_id = self.accounts.valid_key_id(candidate)
            if key_id is not None and self.accounts.revoke(
                key_id, reason, source=source, by=by, actor_id=actor_id, address=address
            ):
                revoked += 1
        return revoked

    def check_package(
        self,
        path: Path,
        package_hint: str | None = None,
        *,
        actor_id: int | None = None,
        address: str | None = None,
    ) -> None:
        """Refuse a package that holds a valid key (400), revoking that key (npm does the same), or that has
        a corrupt entry; for a package ``nuspec.read_package`` has accepted (``Packages.screen``)."""
        try:
            found = scan_package(path)
        except nuspec.InvalidPackage as exc:
            raise ServiceError(str(exc)) from None
        if not found:
            return
        reason = "It was found inside a package pushed to this server, where anyone could read it."
        if self.revoke(found, reason, source=package_hint, actor_id=actor_id, address=address):
            raise ServiceError(
                f"{IN_PACKAGE}: it was revoked, and its owner was told. Remove it from the package, and "
                "create a new key for whatever used it."
            )
