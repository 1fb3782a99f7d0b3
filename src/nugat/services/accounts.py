"""Users, organizations' membership checks, and API keys: create, list, edit, regenerate, delete, verify."""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Row, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nugat import keys, metrics, passwords
from nugat.clock import isoformat, utcnow
from nugat.db import Database, Tx, conn
from nugat.db.models import (
    Account,
    ApiKey,
    Membership,
    PackageOwner,
    PackageRegistration,
    PackageVersion,
    table,
)
from nugat.services import AuthError, Conflict, Forbidden, NotFound, ServiceError, TooManyRequests
from nugat.services.audit import record, record_key_failure
from nugat.services.mail import Outbox
from nugat.services.throttle import Throttler
from nugat.versions import parse_version

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}$")
MIN_PASSWORD = 10

_hasher = PasswordHasher()

FAILED_KEY_LIMIT = 30  # failed key attempts per address (and per key id) per window
FAILED_KEY_WINDOW = timedelta(minutes=1)
PUSH_WINDOW = timedelta(hours=1)

# Statements of every push, built once (building one costs more than running it on SQLite).
_API_KEYS, _ACCOUNTS, _MEMBERSHIPS = table(ApiKey), table(Account), table(Membership)
_KEY_ROW = (
    select(
        _API_KEYS.c.key_id,
        _API_KEYS.c.user_id,
        _API_KEYS.c.owner_id,
        _API_KEYS.c.secret_hash,
        _API_KEYS.c.scopes,
        _API_KEYS.c.globs,
        _API_KEYS.c.packages,
        _API_KEYS.c.expires_at,
        _API_KEYS.c.name,
        _API_KEYS.c.policy_id,
        _API_KEYS.c.origin,
        _ACCOUNTS.c.name.label("owner_name"),
    )
    .join(_ACCOUNTS, _ACCOUNTS.c.id == _API_KEYS.c.owner_id)
    .where(_API_KEYS.c.key_id == bindparam("key_id"))
)
_TOUCH_KEY = (
    update(_API_KEYS)
    .where(
        _API_KEYS.c.key_id == bindparam("kid"),
        or_(_API_KEYS.c.last_used_at.is_(None), _API_KEYS.c.last_used_at <= bindparam("stale")),
    )
    .values(last_used_at=bindparam("now"))
)
_MEMBER = select(_MEMBERSHIPS.c.id).where(
    _MEMBERSHIPS.c.org_id == bindparam("org_id"), _MEMBERSHIPS.c.member_id == bindparam("member_id")
)
# Failed sign-ins per window: from one address at any accounts, and at one account from one address, are
# refused past these; at one account from everywhere, they only slow every attempt at it.
FAILED_SIGNIN_PER_ADDRESS = 30
FAILED_SIGNIN_PER_ACCOUNT_ADDRESS = 10
FAILED_SIGNIN_PER_ACCOUNT = 10
SLOWED_SIGNIN = 1.0  # seconds each attempt at an account past FAILED_SIGNIN_PER_ACCOUNT waits
FAILED_SIGNIN_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class OwnedVersion:
    version: str
    listed: bool
    published: datetime
    downloads: int


@dataclass(frozen=True)
class OwnedPackage:
    package_id: str
    owners: list[str]  # those of the accounts asked about
    versions: list[OwnedVersion]  # newest first


@dataclass(frozen=True)
class KeyView:
    """A key as its owner sees it: everything but the secret."""

    id: str
    name: str
    owner: str
    scopes: list[str]
    globs: list[str]
    packages: list[str]
    created: datetime
    expires: datetime
    last_used: datetime | None

    @property
    def expired(self) -> bool:
        return self.expires <= utcnow()

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "scopes": self.scopes,
            "globs": self.globs,
            "packages": self.packages,
            "created": isoformat(self.created),
            "expires": isoformat(self.expires),
            "expired": self.expired,
            "last_used": isoformat(self.last_used) if self.last_used else None,
        }


def check_name(name: str, what: str = "A username") -> None:
    """``what``: the kind of name with its article, as the message starts (``An organization name``)."""
    if not _NAME_RE.match(name):
        raise ServiceError(
            f"{what} is 1-64 letters, digits, '.', '-' or '_', starting with a letter or digit"
        )


def check_email(email: str) -> None:
    if not email:
        raise ServiceError("Enter an email address")
    if not _EMAIL_RE.match(email):
        raise ServiceError(f"{email!r} is not a valid email address")


def check_password(password: str, avoid: Sequence[str] = ()) -> None:
    """Strength rules; ``avoid``: the username and email, which the password must not be."""
    if len(password) < MIN_PASSWORD:
        raise ServiceError(f"The password must be at least {MIN_PASSWORD} characters long")
    if len(password) > 1024:
        raise ServiceError("The password is too long")
    if password.isdigit() or len(set(password)) < 4:
        raise ServiceError("The password is too easy to guess")
    if password.lower() in (a.lower() for a in avoid):
        raise ServiceError("The password must not be your username or email")
    if passwords.is_common(password):
        raise ServiceError(
            "The password is one of the most common passwords, or one with only digits or symbols added: "
            "choose another (three or four unrelated words make a strong one)"
        )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


_FIRST_USER_LOCK = 0x6E75676174  # any constant: the PostgreSQL advisory lock of "is this the first user?"
_USERS = select(func.count()).select_from(_ACCOUNTS).where(_ACCOUNTS.c.kind == "user")


def _no_user_yet(s: Session) -> bool:
    """Whether no user exists, with every other transaction asking it queued behind this one until it
    commits: SQLite's writers are already (BEGIN IMMEDIATE); PostgreSQL takes a transaction-scoped
    advisory lock, and its next statement then sees what the previous holder committed."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(select(func.pg_advisory_xact_lock(_FIRST_USER_LOCK)))
    return not s.scalar(_USERS)


class Accounts:
    def __init__(
        self, db: Database, pepper: bytes, outbox: Outbox | None = None, *, require_2fa: bool = False
    ) -> None:
        self.db = db
        self.require_2fa = require_2fa
        self.pepper = pepper
        self.throttle = Throttler(db)
        self.outbox = outbox

    # Users -----------------------------------------------------------------------------------------

    def create_user(
        self,
        name: str,
        email: str,
        password: str | None,
        *,
        admin: bool = False,
        admin_if_first: bool = False,
        confirmed: bool = True,
    ) -> Account:
        """A new user; a site admin if ``admin``, or if ``admin_if_first`` and no user exists yet (decided
        in the transaction that inserts it: of simultaneous first sign-ups, exactly one is made admin)."""
        check_name(name)
        check_email(email)
        if password is not None:
            check_password(password, (name, email))
        account = Account(
            name=name,
            name_lower=name.lower(),
            kind="user",
            email=email,
            email_lower=email.lower(),
            password_hash=_hasher.hash(password) if password is not None else None,
            is_admin=admin,
            created_at=utcnow(),
            email_confirmed=confirmed,
        )
        try:
            with self.db.session() as s:
                if admin_if_first and not admin:
                    account.is_admin = _no_user_yet(s)
                s.add(account)
        except IntegrityError:
            raise Conflict("That username or email is already taken") from None
        return account

    def users(self) -> list[Account]:
        with self.db.reading() as s:
            return list(s.scalars(select(Account).where(Account.kind == "user").order_by(Account.name_lower)))

    def find_account(self, s: Session, name: str) -> Account:
        account = s.scalar(select(Account).where(Account.name_lower == name.lower()))
        if account is None:
            raise NotFound(f"No account named {name!r}")
        return account

    def authenticate(self, login: str, password: str) -> Account | None:
        """The user whose name or email is ``login`` if ``password`` is theirs (argon2, constant work)."""
        with self.db.reading() as s:
            user = s.scalar(
                select(Account).where(
                    Account.kind == "user",
                    (Account.name_lower == login.lower()) | (Account.email_lower == login.lower()),
                )
            )
        stored = user.password_hash if user and user.password_hash else _dummy_hash()
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return user if user is not None and user.password_hash else None

    def _signin_buckets(self, login: str, address: str) -> tuple[str, str, str]:
        """A sign-in's failure counters: its address's, its account's from that address, its account's."""
        with self.db.reading() as s:
            user_id = s.scalar(
                select(Account.id).where(
                    Account.kind == "user",
                    (Account.name_lower == login.lower()) | (Account.email_lower == login.lower()),
                )
            )
        # An unknown login is counted too (the same answer as a known one), under a digest of bounded size.
        digest = hashlib.sha256(login.lower().encode("utf-8", "replace")).hexdigest()[:32]
        who = f"account:{user_id}" if user_id is not None else f"login:{digest}"
        return f"signin-fail:addr:{address}", f"signin-fail:{who}:addr:{address}", f"signin-fail:{who}"

    def sign_in_delay(self, login: str, address: str) -> float:
        """Before a sign-in: 429 if ``address`` may not try now, else the seconds to slow the attempt by.

        Failures refuse only where they came from: 30 from one address (at any accounts), or 10 at one
        account from one address. Failures at an account from everywhere only slow every attempt at it
        (``SLOWED_SIGNIN`` seconds), so nobody without the password can stop its owner from signing in.
        """
        by_address, by_account_address, by_account = self._signin_buckets(login, address)
        window = FAILED_SIGNIN_WINDOW
        with self.db.reading() as s:
            for bucket, limit in (
                (by_address, FAILED_SIGNIN_PER_ADDRESS),
                (by_account_address, FAILED_SIGNIN_PER_ACCOUNT_ADDRESS),
            ):
                wait = Throttler.blocked_in(s, bucket, limit, window)
                if wait:
                    raise _too_many_sign_ins(wait)
            slowed = Throttler.blocked_in(s, by_account, FAILED_SIGNIN_PER_ACCOUNT, window)
        return SLOWED_SIGNIN if slowed else 0.0

    def sign_in(self, login: str, password: str, address: str) -> Account:
        """``authenticate`` for the sign-in page, throttled as ``sign_in_delay`` says (the caller waits
        out its delay first); a failure counts against the address, the account there, and the account.

        A refused address is refused even with the right password, so guessing on from it stops paying.
        """
        self.sign_in_delay(login, address)
        user = self.authenticate(login, password)
        if user is None:
            for bucket in self._signin_buckets(login, address):
                self.throttle.hit(bucket, FAILED_SIGNIN_WINDOW)
            raise AuthError("Wrong username, email or password")
        return user

    def key_owners(self, user_id: int) -> list[Account]:
        """Whom a user's keys may act for: the user, then the organizations it is a member of."""
        with self.db.reading() as s:
            user = s.get(Account, user_id)
            if user is None:
                raise NotFound("No such user")
            orgs = s.scalars(
                select(Account)
                .join(Membership, Membership.org_id == Account.id)
                .where(Membership.member_id == user_id, Account.kind == "org")
                .order_by(Account.name_lower)
            )
            return [user, *orgs]

    def packages_of(self, account_ids: Sequence[int]) -> list[OwnedPackage]:
        """The packages any of these accounts owns, by id, each with all its versions."""
        with self.db.reading() as s:
            owned = s.execute(
                select(PackageRegistration.id, PackageRegistration.package_id, Account.name)
                .join(PackageOwner, PackageOwner.registration_id == PackageRegistration.id)
                .join(Account, Account.id == PackageOwner.account_id)
                .where(PackageOwner.account_id.in_(account_ids))
                .order_by(PackageRegistration.id_lower, Account.name_lower)
            ).all()
            versions = s.scalars(
                select(PackageVersion).where(PackageVersion.registration_id.in_({row[0] for row in owned}))
            )
            by_reg: dict[int, list[PackageVersion]] = {}
            for v in versions:
                by_reg.setdefault(v.registration_id, []).append(v)
        owners: dict[int, tuple[str, list[str]]] = {}
        for reg_id, package_id, owner in owned:
            owners.setdefault(reg_id, (package_id, []))[1].append(owner)
        result = []
        for reg_id, (package_id, names) in owners.items():
            rows = sorted(by_reg.get(reg_id, []), key=lambda v: parse_version(v.version), reverse=True)
            listing = [OwnedVersion(v.version, v.listed, v.published_at, v.downloads) for v in rows]
            result.append(OwnedPackage(package_id, names, listing))
        return result

    def set_password(self, account_id: int, password: str) -> None:
        check_password(password)
        with self.db.session() as s:
            account = s.get(Account, account_id)
            assert account is not None
            account.password_hash = _hasher.hash(password)

    def set_email(self, account_id: int, email: str) -> None:
        check_email(email)
        try:
            with self.db.session() as s:
                account = s.get(Account, account_id)
                assert account is not None
                account.email, account.email_lower = email, email.lower()
        except IntegrityError:
            raise Conflict("That email is already taken") from None

    # Keys ------------------------------------------------------------------------------------------

    def _owner_for(self, s: Session, user: Account, owner: str | None) -> Account:
        if owner is None or owner.lower() == user.name_lower:
            return user
        org = self.find_account(s, owner)
        if org.kind != "org" or not is_member(s, user.id, org.id):
            raise ServiceError(
                f"{user.name} cannot create keys for {owner}: not a member of that organization"
            )
        return org

    def create_key(
        self,
        user_name: str,
        name: str,
        scopes: list[str],
        globs: list[str],
        packages: list[str],
        expires_in_days: int | None,
        owner: str | None = None,
        address: str | None = None,
    ) -> tuple[KeyView, str]:
        """Create a key; return its view and the secret, which is never available again."""
        name = name.strip()
        if not 1 <= len(name) <= 128:
            raise ServiceError("A key name is 1 to 128 characters")
        try:
            scopes, globs, packages, days = keys.normalize_settings(scopes, globs, packages, expires_in_days)
        except keys.InvalidKeySettings as exc:
            raise ServiceError(str(exc)) from None
        key_id = keys.new_key_id()
        secret = keys.new_key(key_id)
        parsed = keys.parse_key(secret)
        assert parsed is not None
        now = utcnow()
        with self.db.session() as s:
            user = self.find_account(s, user_name)
            owner_account = self._owner_for(s, user, owner)
            self._may_hold_keys(user, owner_account)
            row = ApiKey(
                key_id=key_id,
                name=name,
                user_id=user.id,
                owner_id=owner_account.id,
                secret_hash=keys.hash_secret(self.pepper, parsed),
                scopes=scopes,
                globs=globs,
                packages=packages,
                created_at=now,
                expires_at=now + timedelta(days=days),
                last_used_at=None,
            )
            s.add(row)
            s.flush()
            view = _view(row, owner_account.name)
            _record_key(s, "key.create", row, address)
            self._key_mail(s, row, "created")
        return view, secret

    def list_keys(self, user_name: str) -> list[KeyView]:
        with self.db.reading() as s:
            user = self.find_account(s, user_name)
            rows = s.execute(
                select(ApiKey, Account.name)
                .join(Account, Account.id == ApiKey.owner_id)
                .where(ApiKey.user_id == user.id, ApiKey.policy_id.is_(None))  # minted keys: trusted.py
                .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
            ).all()
            return [_view(row, owner_name) for row, owner_name in rows]

    def _own_key(self, s: Session, user_name: str, key_id: str) -> tuple[ApiKey, Account]:
        user = self.find_account(s, user_name)
        row = s.scalar(
            select(ApiKey).where(
                ApiKey.key_id == key_id, ApiKey.user_id == user.id, ApiKey.policy_id.is_(None)
            )
        )
        if row is None:
            raise NotFound(f"{user.name} has no API key {key_id!r}")
        return row, user

    def regenerate_key(self, user_name: str, key_id: str, address: str | None = None) -> tuple[KeyView, str]:
        """A new secret for the same key id and settings; the old secret stops working at once."""
        with self.db.session() as s:
            row, user = self._own_key(s, user_name, key_id)
            owner = s.get(Account, row.owner_id)
            assert owner is not None
            self._may_hold_keys(user, owner)
            secret = keys.new_key(row.key_id)
            parsed = keys.parse_key(secret)
            assert parsed is not None
            row.secret_hash = keys.hash_secret(self.pepper, parsed)
            _record_key(s, "key.regenerate", row, address)
            self._key_mail(s, row, "regenerated")
            return _view(row, owner.name), secret

    def edit_key(
        self,
        user_name: str,
        key_id: str,
        *,
        name: str | None = None,
        scopes: list[str] | None = None,
        globs: list[str] | None = None,
        packages: list[str] | None = None,
        address: str | None = None,
    ) -> KeyView:
        """Change a key's name, scopes or package selection (not its owner or expiry, as nuget.org)."""
        with self.db.session() as s:
            row, _ = self._own_key(s, user_name, key_id)
            days_left = max(1, (row.expires_at - utcnow()).days)
            new_globs = row.globs if globs is None else globs
            new_packages = row.packages if packages is None else packages
            try:
                clean = keys.normalize_settings(
                    row.scopes if scopes is None else scopes, new_globs, new_packages, min(days_left, 365)
                )
            except keys.InvalidKeySettings as exc:
                raise ServiceError(str(exc)) from None
            row.scopes, row.globs, row.packages = clean[0], clean[1], clean[2]
            if name is not None:
                if not 1 <= len(name.strip()) <= 128:
                    raise ServiceError("A key name is 1 to 128 characters")
                row.name = name.strip()
            _record_key(s, "key.edit", row, address)
            owner = s.get(Account, row.owner_id)
            assert owner is not None
            return _view(row, owner.name)

    def delete_key(self, user_name: str, key_id: str, address: str | None = None) -> None:
        with self.db.session() as s:
            row, _ = self._own_key(s, user_name, key_id)
            _record_key(s, "key.delete", row, address)
            self._key_mail(s, row, "deleted")
            s.delete(row)

    def revoke(self, key_id: str, reason: str, *, source: str | None = None, by: str | None = None) -> bool:
        """Revoke a key at once (leaked: reported, pasted by a site admin, found in a package): audited
        with the reason and where it was found, and its creator mailed. False if there is no such key.

        The one place a key is revoked rather than deleted by its owner: it deletes the key for now.
        """
        with self.db.session() as s:
            row = s.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
            if row is None:
                return False
            record(
                s,
                "key.revoke",
                account_id=row.owner_id,
                key_id=row.key_id,
                name=row.name,
                reason=reason,
                source=(source or "")[:500] or None,
                by=by,
            )
            self._key_mail(s, row, "revoked", reason=reason, regenerate=False)
            s.delete(row)
        return True

    def valid_key_id(self, presented: str) -> str | None:
        """The key id of ``presented`` if it is a key of this server (expired or not), else None."""
        parsed = keys.parse_key(presented.strip())
        if parsed is None:
            return None
        with self.db.read_transaction() as c:
            row = self._key_row(c, parsed)
        grant = self._grant(parsed, row)
        return grant.key_id if grant is not None else None

    def _may_hold_keys(self, user: Account, owner: Account) -> None:
        """Refuse a key to an unconfirmed account, or to one without two-factor sign-in where the site
        or the key's organization requires it."""
        if not user.email_confirmed:
            raise Forbidden(
                f"Confirm your email address ({user.email}) before creating API keys or pushing: open the "
                "link mailed to you (your account page sends it again)"
            )
        if user.totp_enabled_at is None:
            if self.require_2fa:
                raise Forbidden(
                    "This site requires two-factor sign-in to create or regenerate API keys: turn it on "
                    "in your account settings"
                )
            if owner.kind == "org" and owner.require_2fa:
                raise Forbidden(
                    f"{owner.name} requires two-factor sign-in of its members to create or regenerate API "
                    "keys for it: turn it on in your account settings"
                )

    def _key_mail(
        self, s: Session, row: ApiKey, event: str, *, reason: str | None = None, regenerate: bool = False
    ) -> None:
        if self.outbox is None or not self.outbox.enabled:
            return
        user, owner = s.get(Account, row.user_id), s.get(Account, row.owner_id)
        if user is None or owner is None:
            return
        self.outbox.enqueue(s, user.email, "key_event", name=user.name, key_name=row.name, key_id=row.key_id,
                            owner=owner.name, event=event, by=None, reason=reason,
                            regenerate=regenerate)  # fmt: skip

    def verify_key(
        self, presented: str | None, address: str, *, push_limit: int | None = None
    ) -> tuple[keys.KeyGrant, list[str]]:
        """Check a presented key; return what it grants and warnings for the client, or raise 401/429.

        ``push_limit``: the key is about to push; refuse it (429) if it has used up its pushes this hour
        (``count_push`` counts them, in the push's own transaction).
        """
        if not presented:
            metrics.auth_failure("missing")
            raise AuthError("An API key is required: pass it with -ApiKey (header X-NuGet-ApiKey)")
        addr_bucket = f"key-fail:addr:{address}"
        parsed = keys.parse_key(presented.strip())
        pushes_wait = 0
        with self.db.read_transaction() as s:  # one read transaction: it runs before every push
            wait = self.throttle.blocked_in(s, addr_bucket, FAILED_KEY_LIMIT, FAILED_KEY_WINDOW)
            found = self._key_row(s, parsed) if parsed and not wait else None
            if found is not None and push_limit is not None:
                pushes_wait = self.throttle.blocked_in(s, _push_bucket(found.key_id), push_limit, PUSH_WINDOW)
        if wait:
            metrics.auth_failure("throttled")
            raise TooManyRequests(f"Too many failed API key attempts from {address}; retry later", wait)
        grant = self._grant(parsed, found) if parsed else None
        if grant is None or parsed is None:
            metrics.auth_failure("malformed" if parsed is None else "unknown")
            reason = "The API key is invalid, revoked or unknown"
            record_key_failure(self.db, parsed.key_id if parsed else None, address, reason)
            self._failed(addr_bucket, parsed.key_id if parsed else None)
            raise AuthError(reason)
        now = utcnow()
        if grant.expires_at <= now:
            metrics.auth_failure("expired")
            reason = f"The API key {grant.key_id} expired on {isoformat(grant.expires_at)}"
            record_key_failure(self.db, grant.key_id, address, reason)
            self._failed(addr_bucket, None)
            raise AuthError(reason)
        if pushes_wait:
            raise _push_limit_reached(grant.key_id, push_limit or 0, pushes_wait)
        warnings = []
        if grant.expires_at - now <= keys.EXPIRY_WARNING:
            warnings.append(
                f"The API key {grant.key_id} expires on {isoformat(grant.expires_at)}: "
                "regenerate or create a new one"
            )
        return grant, warnings

    def _failed(self, addr_bucket: str, key_id: str | None) -> None:
        self.throttle.hit(addr_bucket, FAILED_KEY_WINDOW)
        if key_id is not None:
            count = self.throttle.hit(f"key-fail:key:{key_id}", FAILED_KEY_WINDOW)
            if count > FAILED_KEY_LIMIT:
                # Only failures are counted and refused: the holder of the right secret is never locked out.
                raise TooManyRequests(f"Too many failed attempts for API key {key_id}; retry later", 60)

    @staticmethod
    def _key_row(s: Tx, parsed: keys.ParsedKey) -> Row[*tuple[Any, ...]] | None:
        """The key's columns and its owner's name (a plain statement: this runs before every push)."""
        return conn(s).execute(_KEY_ROW, {"key_id": parsed.key_id}).first()

    def _grant(self, parsed: keys.ParsedKey, row: Row[*tuple[Any, ...]] | None) -> keys.KeyGrant | None:
        if row is None:
            return None
        if not keys.verify_secret(self.pepper, parsed, row.secret_hash):
            return None
        return keys.KeyGrant(
            key_id=row.key_id,
            user_id=row.user_id,
            owner_id=row.owner_id,
            owner_name=row.owner_name,
            scopes=frozenset(row.scopes),
            globs=tuple(row.globs),
            packages=tuple(row.packages),
            expires_at=row.expires_at,
            name=row.name,
            policy_id=row.policy_id,
            origin=row.origin,
        )


def _too_many_sign_ins(wait: int) -> TooManyRequests:
    minutes = math.ceil(wait / 60)
    return TooManyRequests(
        f"Too many failed sign-in attempts: try again in {minutes} minute{'s' * (minutes != 1)}", wait
    )


def _push_bucket(key_id: str) -> str:
    return f"push:key:{key_id}"


def _push_limit_reached(key_id: str, limit: int, wait: int) -> TooManyRequests:
    return TooManyRequests(
        f"API key {key_id} has pushed {limit} packages this hour, the limit; retry in {wait} seconds", wait
    )


def count_push(s: Tx, key_id: str, limit: int) -> None:
    """Count a push of a verified key in the push's transaction; raise 429 past ``limit`` in the hour."""
    bucket = _push_bucket(key_id)
    if Throttler.hit_in(s, bucket, PUSH_WINDOW) > limit:
        raise _push_limit_reached(key_id, limit, max(1, Throttler.blocked_in(s, bucket, limit, PUSH_WINDOW)))


def touch_key(s: Tx, key_id: str) -> None:
    """Record a key's last use (at most once a minute, to keep pushes from rewriting the row)."""
    now = utcnow()
    conn(s).execute(_TOUCH_KEY, {"kid": key_id, "now": now, "stale": now - timedelta(minutes=1)})


def is_member(s: Tx, user_id: int, org_id: int) -> bool:
    return conn(s).execute(_MEMBER, {"org_id": org_id, "member_id": user_id}).first() is not None


def acts_for(s: Tx, grant: keys.KeyGrant) -> bool:
    """Whether the key's creator still acts for the key's owner (itself, or an org it is a member of)."""
    return grant.owner_id == grant.user_id or is_member(s, grant.user_id, grant.owner_id)


def _record_key(s: Session, action: str, row: ApiKey, address: str | None) -> None:
    record(
        s,
        action,
        actor_id=row.user_id,
        account_id=row.owner_id,
        key_id=row.key_id,
        address=address,
        name=row.name,
        scopes=list(row.scopes),
        globs=list(row.globs),
        packages=list(row.packages),
    )


def _view(row: ApiKey, owner_name: str) -> KeyView:
    return KeyView(
        id=row.key_id,
        name=row.name,
        owner=owner_name,
        scopes=list(row.scopes),
        globs=list(row.globs),
        packages=list(row.packages),
        created=row.created_at,
        expires=row.expires_at,
        last_used=row.last_used_at,
    )


@functools.cache
def _dummy_hash() -> str:
    """Verified against when no such user exists, so that answer takes as long as a wrong password."""
    return _hasher.hash("nugat-dummy-password-for-constant-work")
