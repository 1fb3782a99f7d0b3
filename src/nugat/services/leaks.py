"""Leaked keys: found in text reported by a secret scanner or pasted by a site admin, or inside a package
being pushed. Every valid nugat key among them is revoked at once (``Accounts.revoke``: audited with the
reason and where it was found, its creator mailed); what was not a valid key is ignored, and no answer
to a stranger says which were.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

from nugat.services import ServiceError
from nugat.services.accounts import Accounts

KEY_PATTERN = re.compile(r"nugat_[a-z2-7]{16}_[A-Za-z0-9_-]{43}[a-z2-7]{7}")
_KEY_BYTES = re.compile(KEY_PATTERN.pattern.encode())
_KEY_LENGTH = 6 + 16 + 1 + 43 + 7
SCAN_BYTES = 256 << 20  # of a package's uncompressed content, at most (a bounded scan)
CHUNK = 1 << 20
MAX_CANDIDATES = 1000
IN_PACKAGE = "The package contains an API key"


def find_keys(text: str) -> list[str]:
    """The strings of ``text`` shaped like nugat keys (in order, once each)."""
    return list(dict.fromkeys(KEY_PATTERN.findall(text)))[:MAX_CANDIDATES]


def scan_package(path: Path, budget: int = SCAN_BYTES) -> list[str]:
    """The key-shaped strings in any entry of the package (and in the entry names), reading at most
    ``budget`` uncompressed bytes in all."""
    found: dict[str, None] = {}
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                for m in KEY_PATTERN.findall(info.filename):
                    found[m] = None
                if budget <= 0 or info.is_dir():
                    continue
                with z.open(info) as entry:
                    tail = b""
                    while budget > 0:
                        chunk = entry.read(min(CHUNK, budget))
                        if not chunk:
                            break
                        budget -= len(chunk)
                        window = tail + chunk
                        for m in _KEY_BYTES.findall(window):
                            found[m.decode()] = None
                        tail = window[-(_KEY_LENGTH - 1) :]
                if len(found) >= MAX_CANDIDATES:
                    break
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError):
        pass  # the package reader refuses a broken package with its own reason
    return list(found)[:MAX_CANDIDATES]


class Leaks:
    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    def revoke(
        self, candidates: Iterable[str], reason: str, *, source: str | None = None, by: str | None = None
    ) -> int:
        """Revoke every valid key among ``candidates``; returns how many were revoked."""
        revoked = 0
        for candidate in list(dict.fromkeys(candidates))[:MAX_CANDIDATES]:
            key_id = self.accounts.valid_key_id(candidate)
            if key_id is not None and self.accounts.revoke(key_id, reason, source=source, by=by):
                revoked += 1
        return revoked

    def check_package(self, path: Path, package_hint: str | None = None) -> None:
        """Refuse a package that holds a valid key (400), revoking that key (npm does the same)."""
        found = scan_package(path)
        if not found:
            return
        reason = "It was found inside a package pushed to this server, where anyone could read it."
        if self.revoke(found, reason, source=package_hint):
            raise ServiceError(
                f"{IN_PACKAGE}: it was revoked, and its owner was told. Remove it from the package, and "
                "create a new key for whatever used it."
            )
