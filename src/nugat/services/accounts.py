"""Users, organizations' membership checks, and API keys: create, list, edit, regenerate, delete, verify."""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, Row, bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nugat import authz, keys, metrics, passwords
from nugat.authz import OPERATOR, Actor
from nugat.clock import isoformat, utcnow
from nugat.db import Database, Tx, conn
from nugat.db.models import (
    Account,
    AccountToken,
    ApiKey,
    Membership,
    OwnershipRequest,
    PackageOwner,
    PackageRegistration,
    PackageVersion,
    WebSession,
    table,
)
from nugat.services import (
    AuthError,
    Conflict,
    Forbidden,
    KeyRefused,
    NotFound,
    ServiceError,
    TooManyRequests,
)
from nugat.services.actors import By, actor_id, holds_keys, resolve, user_actor
from nugat.services.audit import record, record_key_failure
from nugat.services.invitations import drop_dead_invitations
from nugat.services.mail import Outbox
from nugat.services.search_index import index_ids
from nugat.services.throttle import Throttler, count_params
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
_CREATORS = _ACCOUNTS.alias("creators")
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
        _API_KEYS.c.revoked_at,
        _API_KEYS.c.revoked_reason,
        _API_KEYS.c.regenerated_at,
        _API_KEYS.c.previous_secret_hash,
        _API_KEYS.c.last_used_at,
        _ACCOUNTS.c.name.label("owner_name"),
        _ACCOUNTS.c.kind.label("owner_kind"),
        _ACCOUNTS.c.disabled_at.label("owner_disabled_at"),
        _CREATORS.c.name.label("creator_name"),
        _CREATORS.c.disabled_at.label("creator_disabled_at"),
    )
    .join(_ACCOUNTS, _ACCOUNTS.c.id == _API_KEYS.c.owner_id)
    .join(_CREATORS, _CREATORS.c.id == _API_KEYS.c.user_id)
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
    lifetime_days: int = keys.MAX_EXPIRY_DAYS
    revoked: datetime | None = None
    revoked_reason: str | None = None

    @property
    def expired(self) -> bool:
        return self.expires <= utcnow()

    @property
    def expiring_soon(self) -> bool:
        """Alive, and expiring within ``keys.EXPIRY_WARNING`` (10 days): the list highlights it."""
        return not self.expired and self.expires - utcnow() <= keys.EXPIRY_WARNING

    @property
    def state(self) -> str:
        """``revoked``, ``expired``, ``expiring`` (within 10 days) or ``active``."""
        if self.revoked is not None:
            return "revoked"
        if self.expired:
            return "expired"
        return "expiring" if self.expiring_soon else "active"

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
            "state": self.state,
            "lifetime_days": self.lifetime_days,
            "revoked": isoformat(self.revoked) if self.revoked else None,
            "revoked_reason": self.revoked_reason,
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

    def users(self, search: str = "") -> list[Account]:
        """Every user by name; ``search``: only those whose name or email contains it (any case)."""
        query = select(Account).where(Account.kind == "user")
        text = search.strip().lower()[:254]
        if text:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(
                or_(
                    Account.name_lower.like(pattern, escape="\\"),
                    Account.email_lower.like(pattern, escape="\\"),
                )
            )
        with self.db.reading() as s:
            return list(s.scalars(query.order_by(Account.name_lower)))

    def disable_account(
        self, name: str, *, by: By = OPERATOR, address: str | None = None
    ) -> tuple[Account, bool]:
        """Disable a user or an organization (``by``: a site admin; ``None``: the command line).

        A user's sessions end, every key it made (its own, its organizations', minted ones) is revoked
        for good, and so are its reset links and pending two-factor sign-ins; the ownership invitations
        it sent are dropped; an organization's keys are refused while it is disabled. Every process sees
        it at its next request (all in the database). The last enabled site admin cannot be disabled.
        Returns the account and whether it changed (False: it was disabled already, nothing was done).
        """
        with self.db.session() as s:
            actor = self._site_admin(s, by, "disable accounts")
            account = self.find_account(s, name)
            if account.disabled_at is not None:
                return account, False
            self._may_lose(s, actor, account)
            now = utcnow()
            account.disabled_at = now
            s.execute(delete(WebSession).where(WebSession.account_id == account.id))
            record(
                s,
                "account.disable",
                actor_id=actor_id(actor),
                account_id=account.id,
                address=address,
                name=account.name,
            )
            if account.kind == "user":
                reason = f"{account.name}'s account was disabled"
                revoke_keys(
                    s, ApiKey.user_id == account.id, reason, actor_id=actor_id(actor), address=address
                )
                drop_dead_invitations(
                    s, OwnershipRequest.requested_by_id == account.id, reason,
                    actor_id=actor_id(actor), address=address,
                )  # fmt: skip
                revoke_account_tokens(s, account.id)
            return account, True

    def enable_account(
        self, name: str, *, by: By = OPERATOR, address: str | None = None
    ) -> tuple[Account, bool]:
        """Enable a disabled account again: it may sign in; its revoked keys stay revoked. Returns the
        account and whether it changed (False: it was not disabled, and nothing was done)."""
        with self.db.session() as s:
            actor = self._site_admin(s, by, "enable accounts")
            account = self.find_account(s, name)
            if account.disabled_at is None:
                return account, False
            account.disabled_at = None
            record(
                s,
                "account.enable",
                actor_id=actor_id(actor),
                account_id=account.id,
                address=address,
                name=account.name,
            )
            return account, True

    def delete_user(
        self,
        name: str,
        *,
        transfer_to: str | None = None,
        new_admin: str | None = None,
        by: By = OPERATOR,
        address: str | None = None,
    ) -> list[str]:
        """Delete a user; return the package ids moved to ``transfer_to``.

        Refused while packages have it as their only owner (they are listed), unless ``transfer_to`` (a
        user or an organization) is named: it then owns them. Refused while it is the last administrator
        of an organization, unless ``new_admin`` (a user) is named: it becomes that organization's
        administrator. The last site admin cannot be deleted. The packages, the audit log (its events
        then show "deleted user") and other accounts' keys stay; its own keys, sessions and memberships go.
        """
        with self.db.session() as s:
            actor = self._site_admin(s, by, "delete users")
            user = self.find_account(s, name)
            if user.kind != "user":
                raise ServiceError(f"{user.name} is an organization, not a user")
            self._may_lose(s, actor, user)
            heir = self.find_account(s, transfer_to) if transfer_to else None
            if heir is not None and heir.id == user.id:
                raise ServiceError("Transfer the packages to another user or organization")
            successor = self.find_account(s, new_admin) if new_admin else None
            if successor is not None and (successor.kind != "user" or successor.id == user.id):
                raise ServiceError(f"{new_admin} cannot succeed {user.name}: name another user")
            sole = _sole_owned(s, user.id)
            if sole and heir is None:
                raise Conflict(
                    f"{user.name} is the only owner of {', '.join(name for _, name in sole)}: "
                    "name a new owner for them (--transfer-to USER_OR_ORG), or add owners first"
                )
            orphaned = _orgs_left_without_admin(s, user.id)
            if orphaned and successor is None:
                raise Conflict(
                    f"{user.name} is the only administrator of {', '.join(o.name for o in orphaned)}: name "
                    "another administrator (--new-admin USER), or make a member an administrator first"
                )
            for org in orphaned:
                assert successor is not None
                membership = s.scalar(
                    select(Membership).where(
                        Membership.org_id == org.id, Membership.member_id == successor.id
                    )
                )
                if membership is None:
                    s.add(Membership(org_id=org.id, member_id=successor.id, role="admin"))
                else:
                    membership.role = "admin"
                record(
                    s,
                    "org.member_role",
                    actor_id=actor_id(actor),
                    account_id=org.id,
                    address=address,
                    member=successor.name,
                    role="admin",
                    reason=f"succeeds {user.name}, deleted",
                )
            for reg_id, _ in sole:
                assert heir is not None
                s.add(PackageOwner(registration_id=reg_id, account_id=heir.id))
            record(
                s,
                "user.delete",
                actor_id=actor_id(actor),
                account_id=user.id,
                address=address,
                name=user.name,
                transferred_to=heir.name if heir else None,
                packages=[name for _, name in sole],
                new_admin=successor.name if orphaned and successor else None,
            )
            s.flush()
            owned = list(
                s.scalars(select(PackageOwner.registration_id).where(PackageOwner.account_id == user.id))
            )
            s.delete(user)  # cascades: its keys, sessions, memberships, ownerships, policies, invitations
            s.flush()  # ... and its reserved prefixes: what it owned may be verified no longer
            index_ids(s.connection(), owned)  # search's owner lists and owner: queries follow at once
            # Their registration documents say "verified" as its reservations and the heir's decide: marked
            # stale here, they are rebuilt by the server (at its next read of them once it has seen the
            # mark, or by ``nugat rebuild``), as this command does not open the storage.
            s.execute(
                update(PackageRegistration)
                .where(PackageRegistration.id.in_(owned))
                .values(revision=PackageRegistration.revision + 1)
            )
            return [name for _, name in sole]

    def _site_admin(self, s: Session, by: By, what: str) -> Actor:
        """The acting site admin (or the operator), if ``authz.can_manage_users`` agrees."""
        actor = resolve(s, by)
        authz.require(authz.can_manage_users(actor, what), ServiceError)
        return actor

    @staticmethod
    def _may_lose(s: Session, actor: Actor, account: Account) -> None:
        """Whether ``account`` may be disabled or deleted now (``authz.can_disable``)."""
        other_admins = s.scalar(
            select(func.count())
            .select_from(Account)
            .where(
                Account.kind == "user",
                Account.is_admin.is_(True),
                Account.disabled_at.is_(None),
                Account.id != account.id,
            )
        )
        decision = authz.can_disable(
            actor=actor.name,
            target=account.name,
            is_self=actor_id(actor) == account.id,
            last_site_admin=account.is_admin and not other_admins,
        )
        if not decision.allowed:
            raise ServiceError(decision.reason, decision.status)

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
        if user is not None and user.disabled_at is not None:
            # Said only to whoever knows the password: nobody else learns the account's state.
            raise Forbidden(f"The account {user.name} is disabled: ask a site admin to enable it")
        return user if user is not None and user.password_hash else None

    @staticmethod
    def _signin_buckets(login: str, address: str) -> tuple[str, str, str]:
        """A sign-in's failure counters: its address's, its login's from that address, its login's.

        By the login as typed (folded to lower case; a digest of bounded size), known or not: counters
        shared by an account's name and email would tell a stranger that an email is that account's (ten
        failures at the name, then the email refused, or slowed)."""
        who = "login:" + hashlib.sha256(login.strip().lower().encode("utf-8", "replace")).hexdigest()[:32]
        return f"signin-fail:addr:{address}", f"signin-fail:{who}:addr:{address}", f"signin-fail:{who}"

    def sign_in_delay(self, login: str, address: str) -> float:
        """Before a sign-in: 429 if ``address`` may not try now, else the seconds to slow the attempt by.

        Failures refuse only where they came from: 30 from one address (at any accounts), or 10 at one
        login (a name, or an email) from one address. Failures at a login from everywhere only slow every
        attempt at it (``SLOWED_SIGNIN`` seconds), so nobody without the password can stop its owner from
        signing in. This is a read, for the delay; ``sign_in`` counts the attempt before trying it.
        """
        by_address, by_login_address, by_login = self._signin_buckets(login, address)
        window = FAILED_SIGNIN_WINDOW
        with self.db.reading() as s:
            for bucket, limit in (
                (by_address, FAILED_SIGNIN_PER_ADDRESS),
                (by_login_address, FAILED_SIGNIN_PER_ACCOUNT_ADDRESS),
            ):
                wait = Throttler.blocked_in(s, bucket, limit, window)
                if wait:
                    raise _too_many_sign_ins(wait)
            slowed = Throttler.blocked_in(s, by_login, FAILED_SIGNIN_PER_ACCOUNT, window)
        return SLOWED_SIGNIN if slowed else 0.0

    def sign_in(self, login: str, password: str, address: str) -> Account:
        """``authenticate`` for the sign-in page, throttled as ``sign_in_delay`` says (the caller waits
        out its delay first); a failure counts against the address, the account there, and the account.

        A refused address is refused even with the right password, so guessing on from it stops paying.
        """
        self.sign_in_delay(login, address)
        by_address, by_login_address, by_login = self._signin_buckets(login, address)
        window = FAILED_SIGNIN_WINDOW
        checks = [(by_address, FAILED_SIGNIN_PER_ADDRESS, window)]
        checks.append((by_login_address, FAILED_SIGNIN_PER_ACCOUNT_ADDRESS, window))
        wait = self.throttle.attempt(checks)  # counted before the password is checked: see ``attempt``
        if wait:
            raise _too_many_sign_ins(wait)
        try:
            user = self.authenticate(login, password)
        except Forbidden:  # the right password of a disabled account: no failure
            self.throttle.release([by_address, by_login_address])
            raise
        if user is None:
            self.throttle.hit(by_login, window)
            raise AuthError("Wrong username, email or password")
        self.throttle.release([by_address, by_login_address])
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
        """A new password (Account settings); the account's reset links and pending sign-ins end."""
        check_password(password)
        with self.db.session() as s:
            account = s.get(Account, account_id)
            assert account is not None
            account.password_hash = _hasher.hash(password)
            revoke_account_tokens(s, account.id, password=True)

    def set_email(self, account_id: int, email: str) -> None:
        check_email(email)
        try:
            with self.db.session() as s:
                account = s.get(Account, account_id)
                assert account is not None
                account.email, account.email_lower = email, email.lower()
                revoke_account_tokens(s, account.id)
        except IntegrityError:
            raise Conflict("That email is already taken") from None

    # Keys ------------------------------------------------------------------------------------------

    def _owner_for(self, s: Session, user: Account, owner: str | None) -> Account:
        if owner is None or owner.lower() == user.name_lower:
            return user
        org = self.find_account(s, owner)
        as_named = authz.Party(org.id, owner, org.kind == "org")  # the reason names it as asked
        authz.require(authz.can_create_key_for(user_actor(s, user), as_named), ServiceError)
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
        name = _key_name(name)
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
            _check_name_free(s, user, name)
            row = ApiKey(
                key_id=key_id,
                name=name,
                name_lower=name.lower(),
                lifetime_days=days,
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
            try:
                s.flush()
            except IntegrityError:  # the same name, made at the same moment
                raise _name_taken(user, name) from None
            view = _view(row, owner_account.name)
            _record_key(s, "key.create", row, address, expires=isoformat(row.expires_at))
            self._key_mail(s, row, "created")
        return view, secret

    def org_key_choices(self, owner_name: str) -> list[str]:
        """The package ids an account owns (what a key acting for it may select), by id."""
        with self.db.reading() as s:
            owner = self.find_account(s, owner_name)
            return list(
                s.scalars(
                    select(PackageRegistration.package_id)
                    .join(PackageOwner, PackageOwner.registration_id == PackageRegistration.id)
                    .where(PackageOwner.account_id == owner.id)
                    .order_by(PackageRegistration.id_lower)
                )
            )

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
        """A new secret for the same key id and settings; the old secret stops working at once.

        The key is renewed, as on nuget.org: it now expires after as many days as it was made to live,
        counted from now. An expired key can be regenerated; a revoked one cannot (it is dead for good).
        """
        with self.db.session() as s:
            row, user = self._own_key(s, user_name, key_id)
            _check_alive(row, "regenerated")
            owner = s.get(Account, row.owner_id)
            assert owner is not None
            self._may_hold_keys(user, owner)
            secret = keys.new_key(row.key_id)
            parsed = keys.parse_key(secret)
            assert parsed is not None
            now = utcnow()
            row.previous_secret_hash, row.secret_hash = row.secret_hash, keys.hash_secret(self.pepper, parsed)
            row.regenerated_at = now
            row.expires_at = now + timedelta(days=_lifetime(row))
            _record_key(s, "key.regenerate", row, address, expires=isoformat(row.expires_at))
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
        """Change a key's name or package selection (globs, packages), as on nuget.org: never its owner,
        expiry or scopes. ``scopes``, if given, must be the key's own: other actions need a new key."""
        with self.db.session() as s:
            row, user = self._own_key(s, user_name, key_id)
            _check_alive(row, "edited")
            if scopes is not None:
                try:
                    asked = keys.normalize_settings(scopes, ["*"], [], None)[0]
                except keys.InvalidKeySettings as exc:
                    raise ServiceError(str(exc)) from None
                decision = authz.can_change_scopes(
                    key_id=row.key_id, current=frozenset(row.scopes), asked=frozenset(asked)
                )
                if not decision.allowed:
                    raise ServiceError(decision.reason, decision.status)
            new_globs = row.globs if globs is None else globs
            new_packages = row.packages if packages is None else packages
            try:
                clean = keys.normalize_settings(row.scopes, new_globs, new_packages, None)
            except keys.InvalidKeySettings as exc:
                raise ServiceError(str(exc)) from None
            row.globs, row.packages = clean[1], clean[2]
            if name is not None:
                new_name = _key_name(name)
                if new_name.lower() != row.name_lower:
                    _check_name_free(s, user, new_name)
                row.name, row.name_lower = new_name, new_name.lower()
            try:
                s.flush()
            except IntegrityError:
                raise _name_taken(user, row.name) from None
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

    def revoke_key(
        self,
        key_id: str,
        reason: str,
        *,
        owner: str | None = None,
        by: By = OPERATOR,
        address: str | None = None,
    ) -> KeyView:
        """Revoke one key for good, with the ``reason`` its holder reads on every use and in the pages.

        This is the one call to make for a key that must die now (a leaked key, an admin's decision):
        the key stays listed as revoked, cannot be regenerated or edited, only deleted; the next push,
        unlist or relist with it, on any process, gets 403 with the reason. Audited as ``key.revoke``.
        ``owner``: the key must act for this user or organization (else 404, as an unknown key).
        ``by``: the user revoking it: the key's creator, an administrator of the organization it acts for,
        or a site admin; ``OPERATOR``: the server itself or the command line. Revoking a revoked key changes
        nothing. A key minted by trusted publishing can be revoked too.
        """
        with self.db.session() as s:
            row = s.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
            key_owner = s.get(Account, row.owner_id) if row else None
            if (
                row is None
                or key_owner is None
                or (owner is not None and key_owner.name_lower != owner.lower())
            ):
                raise NotFound(f"{owner or 'Nobody'} has no API key {key_id!r}")
            actor = resolve(s, by)
            decision = authz.can_revoke_key(
                actor=actor.name,
                owner=key_owner.name,
                owner_is_org=key_owner.kind == "org",
                made_it=actor_id(actor) == row.user_id,
                is_owner=actor_id(actor) == key_owner.id,
                administers_owner=key_owner.kind == "org" and authz.administers(actor, key_owner.id),
                site_admin=authz.is_site_admin(actor),
            )
            authz.require(decision, ServiceError)
            gone = revoke_keys(s, ApiKey.id == row.id, reason, actor_id=actor_id(actor), address=address)
            for revoked in gone:
                self._key_mail(s, revoked, "revoked", reason=reason)
            return _view(row, key_owner.name)

    def revoke(
        self,
        key_id: str,
        reason: str,
        *,
        source: str | None = None,
        by: str | None = None,
        actor_id: int | None = None,
        address: str | None = None,
    ) -> bool:
        """Revoke a leaked key at once (reported, pasted by a site admin, found in a package): revoked for
        good as ``revoke_key`` does, audited with the reason and where it was found (``source``) and who
        reported it (``by``), and its creator mailed. False if there is no such key; a key already
        revoked stays as it was (and is not mailed about again).
        """
        with self.db.session() as s:
            row = s.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
            if row is None:
                return False
            revoking = revoke_keys(
                s,
                ApiKey.id == row.id,
                reason,
                source=source,
                reported_by=by,
                actor_id=actor_id,
                address=address,
            )
            for revoked in revoking:
                self._key_mail(s, revoked, "revoked", reason=reason)
        return True

    def valid_key_id(self, presented: str) -> str | None:
        """The key id of ``presented`` if it is a key of this server (expired or not), else None."""
        parsed = keys.parse_key(presented.strip())
        if parsed is None:
            return None
        with self.db.read_transaction() as c:
            row = self.key_row(c, parsed.key_id)
        if row is None or not keys.verify_secret(self.pepper, parsed, row.secret_hash):
            return None
        return str(row.key_id)

    def _may_hold_keys(self, user: Account, owner: Account) -> None:
        """Refuse a key to an unconfirmed account, or to one without two-factor sign-in where the site
        or the key's organization requires it (``authz.can_hold_keys``)."""
        authz.require(holds_keys(user, owner, site_requires_2fa=self.require_2fa))

    def _key_mail(self, s: Session, row: ApiKey, event: str, *, reason: str | None = None) -> None:
        mail_key_event(self.outbox, s, row, event, reason=reason)

    def verify_key(
        self, presented: str | None, address: str, *, push_limit: int | None = None
    ) -> tuple[keys.KeyGrant, list[str]]:
        """Check a presented key; return what it grants and warnings for the client, or raise 403/429.

        Every dead key is refused with 403 (``KeyRefused``), as on nuget.org, never 401: nuget.exe answers
        a 401 by asking for a user name and password. The message says precisely why: no key, malformed,
        unknown (deleted), wrong secret, regenerated, revoked, creator or owner disabled, expired; the
        holder of a wrong secret learns nothing about the key beyond that.
        ``push_limit``: the key is about to push; refuse it (429) if it has used up its pushes this hour
        (``count_push`` counts them, in the push's own transaction).
        """
        if not presented:
            metrics.auth_failure("missing")
            raise KeyRefused("No API key was sent: pass one with -ApiKey (header X-NuGet-ApiKey)")
        addr_bucket = f"key-fail:addr:{address}"
        parsed = keys.parse_key(presented.strip())
        pushes_wait = 0
        with self.db.statements() as s:  # runs before every push: two reads, no transaction
            checks = [(addr_bucket, FAILED_KEY_LIMIT, FAILED_KEY_WINDOW)]
            if parsed and push_limit is not None:  # both counters in one statement
                checks.append((_push_bucket(parsed.key_id), push_limit, PUSH_WINDOW))
            wait, *pushes = self.throttle.blocked_each(s, checks)
            found = self.key_row(s, parsed.key_id) if parsed and not wait else None
            if found is not None and pushes:
                pushes_wait = pushes[0]
        if wait:
            metrics.auth_failure("throttled")
            raise TooManyRequests(f"Too many failed API key attempts from {address}; retry later", wait)
        if parsed is None:
            self._refuse("malformed", None, address, MALFORMED_KEY)
        assert parsed is not None
        if found is None:
            self._refuse("unknown", parsed.key_id, address, unknown_key(parsed.key_id))
        assert found is not None
        wrong = wrong_secret(self.pepper, parsed, found)
        if wrong is not None:
            self._refuse("unknown", found.key_id, address, wrong)
        grant = self.grant(found)
        dead = self.dead(found)
        if dead is not None:
            metrics.auth_failure(dead[0])
            record_key_failure(self.db, grant.key_id, address, dead[1])
            raise KeyRefused(dead[1])
        now = utcnow()
        if grant.expires_at <= now:
            self._refuse("expired", None, address, expired(grant), key_id=grant.key_id)
        if pushes_wait:
            raise _push_limit_reached(grant.key_id, push_limit or 0, pushes_wait)
        warnings = []
        if grant.expires_at - now <= keys.EXPIRY_WARNING and grant.policy_id is None:
            # A key minted by trusted publishing lives minutes by design, and cannot be regenerated.
            warnings.append(
                f"The API key {grant.key_id} expires on {isoformat(grant.expires_at)}: "
                "regenerate or create a new one"
            )
        return grant, warnings

    @staticmethod
    def dead(found: Row[*tuple[Any, ...]]) -> tuple[str, str] | None:
        """Why a key with the right secret is dead for now or for good (its metric, the reason), or None."""
        if found.revoked_at is not None:
            return "revoked", (
                f"API key {found.key_id} was revoked on {isoformat(found.revoked_at)}: {found.revoked_reason}"
            )
        if found.creator_disabled_at is not None:
            return "disabled", (
                f"API key {found.key_id} was made by {found.creator_name}, whose account is disabled"
            )
        if found.owner_disabled_at is not None:
            what = "organization" if found.owner_kind == "org" else "account"
            return (
                "disabled",
                f"API key {found.key_id} acts for the {what} {found.owner_name}, which is disabled",
            )
        return None

    def _refuse(
        self, metric: str, throttled_key: str | None, address: str, reason: str, *, key_id: str | None = None
    ) -> NoReturn:
        """Count, audit and refuse a failed key: 403 with ``reason`` (429 past the key's failure limit)."""
        metrics.auth_failure(metric)
        record_key_failure(self.db, key_id or throttled_key, address, reason)
        self._failed(f"key-fail:addr:{address}", throttled_key)
        raise KeyRefused(reason)

    def _failed(self, addr_bucket: str, key_id: str | None) -> None:
        """Count a refused key. Past the limit, the refusal is a 429 without its reason: failures made at
        the same time all passed ``verify_key``'s check before any was counted, and only the first
        ``FAILED_KEY_LIMIT`` of them are told why."""
        if self.throttle.hit(addr_bucket, FAILED_KEY_WINDOW) > FAILED_KEY_LIMIT:
            address = addr_bucket.removeprefix("key-fail:addr:")
            wait = max(1, self.throttle.blocked_for(addr_bucket, FAILED_KEY_LIMIT, FAILED_KEY_WINDOW))
            raise TooManyRequests(f"Too many failed API key attempts from {address}; retry later", wait)
        if key_id is not None:
            count = self.throttle.hit(f"key-fail:key:{key_id}", FAILED_KEY_WINDOW)
            if count > FAILED_KEY_LIMIT:
                # Only failures are counted and refused: the holder of the right secret is never locked out.
                raise TooManyRequests(f"Too many failed attempts for API key {key_id}; retry later", 60)

    @staticmethod
    def key_row(s: Tx, key_id: str) -> Row[*tuple[Any, ...]] | None:
        """The key's columns and its owner's name (a plain statement: this runs before every push)."""
        return conn(s).execute(_KEY_ROW, {"key_id": key_id}).first()

    @staticmethod
    def grant(row: Row[*tuple[Any, ...]]) -> keys.KeyGrant:
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
            last_used_at=getattr(row, "last_used_at", None),
        )


def wrong_secret(pepper: bytes, parsed: keys.ParsedKey, found: Row[*tuple[Any, ...]]) -> str | None:
    """Why the presented secret is not the key's (regenerated away, or wrong), or None when it is."""
    if keys.verify_secret(pepper, parsed, found.secret_hash):
        return None
    if found.previous_secret_hash is not None and keys.verify_secret(
        pepper, parsed, found.previous_secret_hash
    ):
        return (
            f"API key {found.key_id} was regenerated on {isoformat(found.regenerated_at)}: "
            "its old secret no longer works, use the new one"
        )
    return f"The secret of API key {found.key_id} is wrong"


def expired(grant: keys.KeyGrant) -> str:
    return (
        f"API key {grant.key_id} expired on {isoformat(grant.expires_at)}: "
        "regenerate it (it is renewed) or create a new one"
    )


def unknown_key(key_id: str) -> str:
    return f"API key {key_id} does not exist: it was deleted, or never existed"


MALFORMED_KEY = "The API key is not a nugat API key: it is mistyped or cut short"


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
    if Throttler.hit_in(s, _push_bucket(key_id), PUSH_WINDOW) > limit:
        raise push_limit_reached(s, key_id, limit)


def push_count_params(key_id: str) -> dict[str, Any]:
    """The parameters of ``throttle.COUNT_POSTGRESQL`` that count a push of the key (``count_push`` in a
    statement of the caller's)."""
    return count_params(_push_bucket(key_id), PUSH_WINDOW)


def push_limit_reached(s: Tx, key_id: str, limit: int) -> TooManyRequests:
    """The 429 for a key past its pushes this hour, with the seconds until its window ends."""
    wait = Throttler.blocked_in(s, _push_bucket(key_id), limit, PUSH_WINDOW)
    return _push_limit_reached(key_id, limit, max(1, wait))


def touch_key(s: Tx, key_id: str, last_used_at: datetime | None = None) -> None:
    """Record a key's last use (at most once a minute, to keep pushes from rewriting the row).
    ``last_used_at``: as read when the key was verified; within the minute, not even a statement."""
    now = utcnow()
    stale = now - timedelta(minutes=1)
    if last_used_at is not None and last_used_at > stale:
        return  # the update would change nothing: the time only moves forward
    conn(s).execute(_TOUCH_KEY, {"kid": key_id, "now": now, "stale": stale})


def is_member(s: Tx, user_id: int, org_id: int) -> bool:
    return conn(s).execute(_MEMBER, {"org_id": org_id, "member_id": user_id}).first() is not None


def acts_for(s: Tx, grant: keys.KeyGrant) -> bool:
    """Whether the key's creator still acts for the key's owner (itself, or an org it is a member of)."""
    return grant.owner_id == grant.user_id or is_member(s, grant.user_id, grant.owner_id)


def mail_key_event(
    outbox: Outbox | None, s: Session, row: ApiKey, event: str, *, reason: str | None = None
) -> None:
    """Mail the key's creator that it was created, regenerated, deleted or revoked (in the transaction)."""
    if outbox is None or not outbox.enabled:
        return
    user, owner = s.get(Account, row.user_id), s.get(Account, row.owner_id)
    if user is None or owner is None:
        return
    outbox.enqueue(s, user.email, "key_event", name=user.name, key_name=row.name, key_id=row.key_id,
                   owner=owner.name, event=event, by=None, reason=reason, regenerate=False)  # fmt: skip


def revoke_keys(
    s: Session,
    which: ColumnElement[bool],
    reason: str,
    *,
    actor_id: int | None = None,
    address: str | None = None,
    source: str | None = None,
    reported_by: str | None = None,
) -> list[ApiKey]:
    """Revoke, for good and in ``s``'s transaction, every live key ``which`` selects (an SQL condition on
    ``ApiKey``); each is audited as ``key.revoke`` with ``reason`` (and, for a leaked key, where it was
    found and who reported it). Returns the keys revoked.

    ``Accounts.revoke_key`` revokes one key by id; leaving an organization and disabling a user use this.
    """
    rows = list(s.scalars(select(ApiKey).where(which, ApiKey.revoked_at.is_(None))))
    now = utcnow()
    for row in rows:
        row.revoked_at, row.revoked_reason = now, reason[:500]
        record(
            s,
            "key.revoke",
            actor_id=actor_id,
            account_id=row.owner_id,
            key_id=row.key_id,
            address=address,
            name=row.name,
            creator_id=row.user_id,
            reason=reason[:500],
            **({"source": source[:500]} if source else {}),
            **({"by": reported_by} if reported_by else {}),
        )
    return rows


def revoke_account_tokens(s: Session, account_id: int, *, password: bool = False) -> None:
    """End, in ``s``'s transaction, the account's outstanding password-reset links and the sign-ins
    waiting for their two-factor code: after its password or email address changed, or it was disabled
    (a link mailed to the old address, or a sign-in begun with the old password, must not finish).
    ``password``: a new password, which also ends a pending email change (asked with the old one)."""
    purposes = ["reset", "signin", *(["email"] if password else [])]
    s.execute(
        update(AccountToken)
        .where(
            AccountToken.account_id == account_id,
            AccountToken.purpose.in_(purposes),
            AccountToken.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _role(s: Session, user_id: int, org_id: int) -> str | None:
    return s.scalar(
        select(Membership.role).where(Membership.org_id == org_id, Membership.member_id == user_id)
    )


def _key_name(name: str) -> str:
    name = name.strip()
    problem = keys.name_problem(name)
    if problem is not None:
        raise ServiceError(problem)
    return name


def _name_taken(user: Account, name: str) -> Conflict:
    return Conflict(f"{user.name} already has an API key named {name!r}: choose another name")


def _check_name_free(s: Session, user: Account, name: str) -> None:
    """Key names are unique per user whatever their case (the database enforces it too)."""
    taken = s.scalar(select(ApiKey.id).where(ApiKey.user_id == user.id, ApiKey.name_lower == name.lower()))
    if taken is not None:
        raise _name_taken(user, name)


def _check_alive(row: ApiKey, what: str) -> None:
    """Refuse to change a revoked key, or to edit an expired one (regenerating renews it first)."""
    reason = None if row.revoked_at is None else row.revoked_reason or ""
    expired = row.expires_at <= utcnow()
    authz.require(authz.can_change_key(row.name, what, revoked_reason=reason, expired=expired))


def _lifetime(row: ApiKey) -> int:
    """How many days the key was made to live (from its dates for a key made before this was kept)."""
    if row.lifetime_days:
        return int(row.lifetime_days)
    days = round((row.expires_at - row.created_at).total_seconds() / 86400)
    return max(keys.MIN_EXPIRY_DAYS, min(keys.MAX_EXPIRY_DAYS, days))


def _sole_owned(s: Session, user_id: int) -> list[tuple[int, str]]:
    """The packages ``user_id`` owns with no other owner: (registration id, package id), by id."""
    other = table(PackageOwner).alias("other_owner")
    others = (
        select(other.c.id)
        .where(other.c.registration_id == PackageRegistration.id, other.c.account_id != user_id)
        .exists()
    )
    rows = s.execute(
        select(PackageRegistration.id, PackageRegistration.package_id)
        .join(PackageOwner, PackageOwner.registration_id == PackageRegistration.id)
        .where(PackageOwner.account_id == user_id, ~others)
        .order_by(PackageRegistration.id_lower)
    )
    return [(reg_id, package_id) for reg_id, package_id in rows]


def _orgs_left_without_admin(s: Session, user_id: int) -> list[Account]:
    """The organizations ``user_id`` is the only administrator of."""
    result = []
    for org in s.scalars(
        select(Account)
        .join(Membership, Membership.org_id == Account.id)
        .where(Membership.member_id == user_id, Membership.role == "admin")
        .order_by(Account.name_lower)
    ):
        admins = s.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.org_id == org.id, Membership.role == "admin")
        )
        if (admins or 0) <= 1:
            result.append(org)
    return result


def _record_key(s: Session, action: str, row: ApiKey, address: str | None, **extra: Any) -> None:
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
        **extra,
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
        lifetime_days=_lifetime(row),
        revoked=row.revoked_at,
        revoked_reason=row.revoked_reason,
    )


@functools.cache
def _dummy_hash() -> str:
    """Verified against when no such user exists, so that answer takes as long as a wrong password."""
    return _hasher.hash("nugat-dummy-password-for-constant-work")
