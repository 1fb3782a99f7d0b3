"""API keys: their format, hashing, scopes and package globs (pure; no database, no web).

A key reads ``nugat_<key id>_<secret><checksum>``: the prefix lets secret scanners find leaked keys, the
key id finds the row without touching the secret, and the CRC32 checksum rejects a mistyped key before
any lookup. The 256-bit secret is stored only as HMAC-SHA-256 under a server-side pepper: a random
secret that long needs no slow hash, so a push pays microseconds rather than an argon2 run.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

PREFIX = "nugat_"
_SECRET_BYTES = 32  # 43 base64url characters
_KEY_RE = re.compile(r"^nugat_([a-z2-7]{16})_([A-Za-z0-9_-]{43})([a-z2-7]{7})$")

MIN_EXPIRY_DAYS = 1
MAX_EXPIRY_DAYS = 365
EXPIRY_WARNING = timedelta(days=10)


@dataclass(frozen=True)
class Action:
    """A checkbox of the key form that offers several scopes as its kinds, chosen by radio buttons."""

    name: str  # the checkbox's field (its radio buttons post ``<name>_kind``)
    label: str


PUSHING = Action("push", "Push")


class Scope(StrEnum):
    """What a key may do: the one place a scope is defined, with how the pages and the CLI name it.

    ``label`` is the pages' name for it, ``help`` the CLI's. ``action`` is the key form's checkbox it
    sits under: scopes sharing an ``Action`` are its kinds, the broadest first (choosing both keeps the
    first); a scope given none has a checkbox of its own. What each scope allows is decided in ``authz``.
    """

    label: str
    help: str
    action: Action

    def __new__(cls, value: str, label: str, help_: str, action: Action | None = None) -> Scope:
        scope = str.__new__(cls, value)
        scope._value_ = value
        scope.label, scope.help = label, help_
        scope.action = action or Action(value, label)
        return scope

    PUSH = "push", "Push new packages and package versions", "push new packages and new versions", PUSHING
    PUSH_VERSION = (
        "push-version",
        "Push only new package versions",
        "push only new versions of existing packages",
        PUSHING,
    )
    UNLIST = "unlist", "Unlist package", "unlist and relist versions"
    READ = "read", "Read packages", "read the packages (restore, download, search) as a feed's password"

    @classmethod
    def named(cls, text: str) -> Scope | None:
        """The scope called ``text`` (in any case), or None."""
        name = text.strip().lower()
        return next((scope for scope in cls if scope.value == name), None)


DEFAULT_SCOPE = Scope.PUSH  # checked on a new key's (and policy's) form, as on nuget.org


def scope_actions() -> dict[Action, list[Scope]]:
    """The key form's checkboxes in order, each with its scopes (several: the kinds it offers)."""
    actions: dict[Action, list[Scope]] = {}
    for scope in Scope:
        actions.setdefault(scope.action, []).append(scope)
    return actions


def one_of(items: Iterable[str]) -> str:
    """``a, b or c``: the choices a message offers."""
    return _and(items, "or")


def scope_help() -> str:
    """The CLI's help for ``--scope``: each scope and what it allows."""
    return "; ".join(f"{scope.value}: {scope.help}" for scope in Scope) + " (repeat for several)"


class InvalidKeySettings(ValueError):
    """The key's settings (scopes, packages, expiry) are not acceptable; the message says why."""


@dataclass(frozen=True)
class ParsedKey:
    key_id: str
    secret: str


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def _checksum(body: str) -> str:
    return _b32(binascii.crc32(body.encode()).to_bytes(4, "big"))


def new_key_id() -> str:
    return _b32(secrets.token_bytes(10))  # 16 characters


def new_key(key_id: str) -> str:
    """A fresh key for ``key_id``; shown to its owner once, never stored."""
    body = f"{PREFIX}{key_id}_{base64.urlsafe_b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()[:43]}"
    return body + _checksum(body)


def parse_key(text: str) -> ParsedKey | None:
    """Split a presented key, or None when it is malformed or its checksum is wrong (a typo)."""
    if len(text) > 128:
        return None
    match = _KEY_RE.match(text)
    if not match:
        return None
    body = text[: -len(match.group(3))]
    if not hmac.compare_digest(_checksum(body), match.group(3)):
        return None
    return ParsedKey(key_id=match.group(1), secret=match.group(2))


def hash_secret(pepper: bytes, key: ParsedKey) -> bytes:
    return hmac.new(pepper, f"{key.key_id}:{key.secret}".encode(), hashlib.sha256).digest()


def verify_secret(pepper: bytes, key: ParsedKey, stored: bytes) -> bool:
    return hmac.compare_digest(hash_secret(pepper, key), stored)


def glob_matches(pattern: str, package_id: str) -> bool:
    """nuget.org globs: ``*`` is the only wildcard, matching any run of characters; case-insensitive.

    Matched piece by piece, leftmost first, in linear time: as a regex, ``*a*a*a*a*a*b`` against a long
    id backtracks for hours (a key's owner could stall every push it makes).
    """
    first, *middle = pattern.lower().split("*")
    text = package_id.lower()
    if not middle:
        return text == first
    last = middle.pop()
    if len(text) < len(first) + len(last) or not (text.startswith(first) and text.endswith(last)):
        return False
    pos, end = len(first), len(text) - len(last)
    for piece in middle:
        found = text.find(piece, pos, end)
        if found < 0:
            return False
        pos = found + len(piece)
    return True


MAX_NAME = 128
# Bidirectional embeddings, overrides and isolates: a name holding one is shown in another order than
# it is typed (``ci\u202e...``), which would let one key pass for another in a list.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def name_problem(name: str, what: str = "key") -> str | None:
    """Why ``name`` (already stripped) cannot name a key (or a policy: ``what``), or None.

    1 to ``MAX_NAME`` characters, none of them a control character (NUL, a line break, a tab; which
    PostgreSQL refuses in text, or which would break the line a list or a log shows it on) or a
    bidirectional control.
    """
    if not 1 <= len(name) <= MAX_NAME:
        return f"A {what} name is 1 to {MAX_NAME} characters"
    bad = [c for c in name if c in _BIDI_CONTROLS or unicodedata.category(c) in ("Cc", "Zl", "Zp")]
    if bad:
        shown = _and(dict.fromkeys(_shown_char(c) for c in bad))
        return f"A {what} name cannot contain control characters such as line breaks or tabs ({shown})"
    return None


MAX_GLOB = 100
_GLOB_RE = re.compile(rf"^[A-Za-z0-9_.*-]{{1,{MAX_GLOB}}}$")
_GLOB_CHAR = re.compile(r"[A-Za-z0-9_.*-]")


def _shown_char(char: str) -> str:
    """A character as a sentence can show it: ``'/'``, ``a space``, or ``U+0430`` when not plain ASCII."""
    if char == " ":
        return "a space"
    return repr(char) if char.isascii() and char.isprintable() else f"U+{ord(char):04X}"


def _glob_problem(glob: str) -> str:
    shown = repr(glob) if len(glob) <= 40 else repr(glob[:37] + "...")
    if len(glob) > MAX_GLOB:
        return f"{shown} is longer than {MAX_GLOB} characters"
    bad = dict.fromkeys(c for c in glob if not _GLOB_CHAR.fullmatch(c))
    return f"{shown} contains {_and(_shown_char(c) for c in bad)}"


def _and(items: Iterable[str], conjunction: str = "and") -> str:
    listed = list(items)
    return listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} {conjunction} {listed[-1]}"


def glob_problems(bad: list[str]) -> str:
    """One sentence naming every refused glob pattern and why, then what a pattern may hold."""
    rule = f"A pattern uses only letters, digits, '.', '-', '_' and '*', at most {MAX_GLOB} characters."
    if len(bad) == 1:
        return f"The glob pattern {_glob_problem(bad[0])}. {rule}"
    problems = "; ".join(_glob_problem(g) for g in bad)
    return f"{len(bad)} glob patterns are not valid: {problems}. {rule}"


def normalize_settings(
    scopes: list[str], globs: list[str], packages: list[str], expires_in_days: int | None
) -> tuple[list[str], list[str], list[str], int]:
    """Validate a key's settings as the create/edit forms and CLI give them; return them cleaned."""
    every = one_of(Scope)
    chosen: list[Scope] = []
    for scope in scopes:
        value = Scope.named(scope)
        if value is None:
            raise InvalidKeySettings(f"unknown scope {scope!r}: use {every}")
        if value not in chosen:
            chosen.append(value)
    if not chosen:
        raise InvalidKeySettings(f"choose at least one scope: {every}")
    order = list(Scope)  # of one action's kinds, only the broadest: push already allows new versions
    clean_scopes = [
        s.value
        for s in chosen
        if not any(o.action == s.action and order.index(o) < order.index(s) for o in chosen)
    ]
    clean_globs = [g.strip() for g in globs if g.strip()]
    bad_globs = [g for g in clean_globs if not _GLOB_RE.match(g)]
    if bad_globs:
        raise InvalidKeySettings(glob_problems(bad_globs))
    clean_packages = list(dict.fromkeys(p.strip() for p in packages if p.strip()))
    if not clean_globs and not clean_packages:
        raise InvalidKeySettings(
            "select packages: give a glob pattern (such as * or Contoso.*) or package ids"
        )
    days = MAX_EXPIRY_DAYS if expires_in_days is None else expires_in_days
    if not MIN_EXPIRY_DAYS <= days <= MAX_EXPIRY_DAYS:
        raise InvalidKeySettings(f"expiration must be {MIN_EXPIRY_DAYS} to {MAX_EXPIRY_DAYS} days")
    return clean_scopes, clean_globs, clean_packages, days


@dataclass(frozen=True)
class KeyGrant:
    """What a verified key may do: everything authz needs, without the database."""

    key_id: str
    user_id: int
    owner_id: int
    owner_name: str
    scopes: frozenset[str]
    globs: tuple[str, ...]
    packages: tuple[str, ...]
    expires_at: datetime
    name: str = ""
    policy_id: int | None = None  # minted by a trusted publishing policy (``services.trusted``)
    origin: str | None = None  # for a minted key: the CI run it was minted for
    # The organizations the key's owner belongs to, when that owner is a user: a read key reads their
    # private packages too (``authz.reads_for``; filled where reads are verified, ``services.readers``).
    owner_member_of: frozenset[int] = frozenset()
    # When the key was last used, as read when it was verified (``services.accounts.touch_key``).
    last_used_at: datetime | None = field(default=None, compare=False)

    @property
    def trusted(self) -> bool:
        """A short-lived key minted for a CI job by trusted publishing, not a long-lived key."""
        return self.policy_id is not None

    @property
    def credential(self) -> str:
        """What published with this key, as the audit log shows it: the CI run, or the key's name."""
        return self.origin or f"API key {self.name or self.key_id}"

    def covers(self, package_id: str) -> bool:
        lowered = package_id.lower()
        return any(p.lower() == lowered for p in self.packages) or any(
            glob_matches(g, package_id) for g in self.globs
        )
