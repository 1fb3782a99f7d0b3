"""The account flows that go through the owner's mailbox: confirming the address at sign-up, a sign-up
with an address already in use, a forgotten password, and changing the address.

Each link carries a single-use token (``issue``/``redeem``): only its SHA-256 is stored, it expires, and
redeeming it is one conditional UPDATE, so two clicks (or two processes) cannot both use it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nugat.clock import utcnow
from nugat.db import Database
from nugat.db.models import Account, AccountToken, KnownDevice, WebSession
from nugat.services import Conflict, NotFound, ServiceError, TooManyRequests
from nugat.services.accounts import (
    Accounts,
    check_email,
    check_password,
    hash_password,
    revoke_account_tokens,
)
from nugat.services.audit import record
from nugat.services.mail import Outbox
from nugat.services.throttle import Throttler

CONFIRM_LIFETIME = timedelta(hours=48)
RESET_LIFETIME = timedelta(hours=1)
EMAIL_LIFETIME = timedelta(hours=24)
SIGNIN_STEP_LIFETIME = timedelta(minutes=10)  # between the password and the two-factor code
MAX_TOKEN = 128
# Mails a stranger can make the site send to one account, and ask for from one address, per hour.
MAILS_PER_ACCOUNT = 5
MAILS_PER_ADDRESS = 20
MAIL_WINDOW = timedelta(hours=1)
# Every answer to a "forgotten password" request takes this long, whether or not the login is an
# account's: a known one costs the database more (its link, its mail, its counters), a few milliseconds a
# stranger could time to tell which names and addresses have accounts. Far above that work's cost.
FORGOT_ANSWER_SECONDS = 0.5

DEAD_LINK = "This link has expired or was already used: ask for a new one"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def issue(s: Session, account_id: int, purpose: str, lifetime: timedelta, data: str | None = None) -> str:
    """A new single-use token for ``purpose``; earlier unused ones of the same purpose stop working."""
    now = utcnow()
    s.execute(
        update(AccountToken)
        .where(
            AccountToken.account_id == account_id,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    s.execute(delete(AccountToken).where(AccountToken.expires_at < now - timedelta(days=1)))
    token = secrets.token_urlsafe(32)
    s.add(
        AccountToken(
            token_hash=_digest(token),
            account_id=account_id,
            purpose=purpose,
            data=data,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return token


def peek(s: Session, purpose: str, token: str) -> AccountToken | None:
    """The live token (not used, not expired), without using it."""
    if not token or len(token) > MAX_TOKEN:
        return None
    row = s.scalar(
        select(AccountToken).where(AccountToken.token_hash == _digest(token), AccountToken.purpose == purpose)
    )
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    return row


def redeem(s: Session, purpose: str, token: str) -> AccountToken:
    """Use the token: once, by one transaction, before it expires; else a ServiceError."""
    row = peek(s, purpose, token)
    if row is None:
        raise ServiceError(DEAD_LINK, 410)
    won = s.connection().execute(
        update(AccountToken)
        .where(AccountToken.id == row.id, AccountToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:
        raise ServiceError(DEAD_LINK, 410)
    return row


class AccountMail:
    def __init__(self, db: Database, accounts: Accounts, outbox: Outbox) -> None:
        self.db = db
        self.accounts = accounts
        self.outbox = outbox
        self.throttle = Throttler(db)

    @property
    def enabled(self) -> bool:
        return self.outbox.enabled

    # Sign-up ---------------------------------------------------------------------------------------

    def sign_up(
        self, name: str, email: str, password: str, *, confirm: bool, admin_if_first: bool = False
    ) -> Account | None:
        """A new account (unconfirmed if ``confirm``, and then mailed its link), or None when ``email``
        is an account's already: that account's owner is mailed instead, and the caller answers as for
        any sign-up, so the page tells nobody which addresses have accounts. A taken username is said
        (usernames are public, on every package page)."""
        try:
            user = self.accounts.create_user(
                name, email, password, admin_if_first=admin_if_first, confirmed=not confirm
            )
        except Conflict:
            with self.db.session() as s:
                if s.scalar(select(Account.id).where(Account.name_lower == name.lower())) is not None:
                    raise Conflict("That username is already taken") from None
                owner = s.scalar(select(Account).where(Account.email_lower == email.lower()))
                if owner is None or not self.enabled:
                    raise Conflict("That username or email is already taken") from None
                if self._may_mail(s, owner.id, None, "signup_address_in_use"):
                    self.outbox.enqueue(
                        s, owner.email, "signup_address_in_use", name=owner.name, email=owner.email
                    )
            return None
        if confirm:
            self.send_confirmation(user.id)
        return user

    def send_confirmation(self, account_id: int) -> bool:
        """Mail the account its confirmation link (again); False if mail is off or it is confirmed."""
        if not self.enabled:
            return False
        with self.db.session() as s:
            user = s.get(Account, account_id)
            if user is None or user.email_confirmed or not user.email:
                return False
            if not self._may_mail(s, user.id, None, "confirm_email"):
                raise TooManyRequests("Too many mails were sent to this account this hour: retry later", 3600)
            token = issue(s, user.id, "confirm", CONFIRM_LIFETIME, user.email_lower)
            hours = int(CONFIRM_LIFETIME.total_seconds() // 3600)
            path = f"/account/confirm/{token}"
            self.outbox.enqueue(s, user.email, "confirm_email", name=user.name, email=user.email, path=path,
                                hours=hours)  # fmt: skip
        return True

    def confirm(self, token: str) -> Account:
        with self.db.session() as s:
            row = redeem(s, "confirm", token)
            user = s.get(Account, row.account_id)
            if user is None or user.email_lower != row.data:  # the address changed since
                raise ServiceError(DEAD_LINK, 410)
            user.email_confirmed = True
            record(s, "account.confirm", actor_id=user.id, account_id=user.id)
            return user

    def set_confirmed(self, name: str) -> Account:
        """An operator vouches for the account's address (``nugat user confirm``)."""
        with self.db.session() as s:
            user = s.scalar(select(Account).where(Account.name_lower == name.lower(), Account.kind == "user"))
            if user is None:
                raise NotFound(f"No user named {name!r}")
            user.email_confirmed = True
            record(s, "account.confirm", account_id=user.id, by="operator")
            return user

    # Forgotten password ----------------------------------------------------------------------------

    def _may_mail(self, s: Session, account_id: int, address: str | None, kind: str) -> bool:
        """Count a mail of ``kind`` a stranger asks for; False past the hourly bounds (then none is sent,
        silently). Each kind has its own bound per account: notices a stranger sends at will (a sign-up
        or an email change with the account's address) must not use up the account's reset links or
        confirmation links, which would keep its owner from resetting the password hour after hour."""
        if (
            address is not None
            and Throttler.hit_in(s, f"mail:addr:{address}", MAIL_WINDOW) > MAILS_PER_ADDRESS
        ):
            return False
        return Throttler.hit_in(s, f"mail:account:{account_id}:{kind}", MAIL_WINDOW) <= MAILS_PER_ACCOUNT

    def forgot(self, login: str, address: str) -> None:
        """Mail a reset link to the account whose name or address ``login`` is, if there is one; the
        answer is the same either way, and the caller sends it ``FORGOT_ANSWER_SECONDS`` after the
        request whichever it was."""
        login = login.strip().lower()
        if not login or len(login) > 254 or not self.enabled:
            return
        with self.db.session() as s:
            user = s.scalar(
                select(Account).where(
                    Account.kind == "user", (Account.name_lower == login) | (Account.email_lower == login)
                )
            )
            if user is None or not user.email or not self._may_mail(s, user.id, address, "password_reset"):
                return
            token = issue(s, user.id, "reset", RESET_LIFETIME)
            self.outbox.enqueue(
                s, user.email, "password_reset", name=user.name, path=f"/account/reset/{token}"
            )

    def reset_target(self, token: str) -> Account | None:
        """The account a live reset link is for (the form shows its name), without using the link."""
        with self.db.reading() as s:
            row = peek(s, "reset", token)
            return s.get(Account, row.account_id) if row is not None else None

    def reset(self, token: str, password: str, address: str | None = None) -> Account:
        """Set a new password with a reset link (once); every session of the account ends."""
        with self.db.session() as s:
            row = peek(s, "reset", token)
            if row is None:
                raise ServiceError(DEAD_LINK, 410)
            user = s.get(Account, row.account_id)
            assert user is not None
            check_password(password, (user.name, user.email or ""))
            redeem(s, "reset", token)
            self._new_password(s, user, password, "with a reset link", address, actor_id=user.id)
            return user

    def _new_password(
        self, s: Session, user: Account, password: str, how: str, address: str | None, *, actor_id: int | None
    ) -> None:
        user.password_hash = hash_password(password)
        s.execute(delete(WebSession).where(WebSession.account_id == user.id))
        revoke_account_tokens(s, user.id, password=True)  # other reset links, sign-ins half done
        record(s, "account.password_reset", actor_id=actor_id, account_id=user.id, address=address, how=how)
        self.outbox.enqueue(s, user.email, "password_changed", name=user.name, how=how)

    def admin_reset(self, name: str, password: str) -> Account:
        """The site admin sets a user's password (``nugat user reset-password``); sessions end."""
        with self.db.session() as s:
            user = s.scalar(select(Account).where(Account.name_lower == name.lower(), Account.kind == "user"))
            if user is None:
                raise NotFound(f"No user named {name!r}")
            check_password(password, (user.name, user.email or ""))
            self._new_password(s, user, password, "by the site administrator", None, actor_id=None)
            return user

    # Email change ----------------------------------------------------------------------------------

    def request_email_change(self, account_id: int, email: str) -> bool:
        """Change the address: with mail, only once the new one is confirmed by its link (the old one is
        told); without, at once. True if it changed now.

        With mail, an address that is another account's is answered as a free one (and its owner is
        mailed instead of a link), as a sign-up is: anyone may sign up, so a refusal here would tell every
        account holder which addresses have accounts. Without mail it is refused (409), as a sign-up is."""
        check_email(email)
        with self.db.session() as s:
            user = s.get(Account, account_id)
            assert user is not None
            owner = s.scalar(
                select(Account).where(Account.email_lower == email.lower(), Account.id != account_id)
            )
            if owner is not None and not self.enabled:
                raise Conflict("That email is already taken")
            if not self.enabled:
                user.email, user.email_lower = email, email.lower()
                revoke_account_tokens(s, user.id)
                record(s, "account.email", actor_id=user.id, account_id=user.id)
                return True
            # Issued either way: it ends the pending change's link, as a change to a free address does
            # (that link's death would otherwise tell). Redeeming this one for a taken address fails (409).
            token = issue(s, user.id, "email", EMAIL_LIFETIME, email)
            if owner is None:
                hours = int(EMAIL_LIFETIME.total_seconds() // 3600)
                path = f"/account/email/confirm/{token}"
                self.outbox.enqueue(s, email, "email_change_confirm", name=user.name, email=email,
                                    path=path, hours=hours)  # fmt: skip
            elif self._may_mail(s, owner.id, None, "email_address_in_use"):
                self.outbox.enqueue(
                    s, owner.email, "email_address_in_use", name=owner.name, email=owner.email
                )
            self.outbox.enqueue(
                s, user.email, "email_change_notice", name=user.name, old=user.email, new=email
            )
            return False

    def confirm_email_change(self, token: str) -> Account:
        try:
            with self.db.session() as s:
                row = redeem(s, "email", token)
                user = s.get(Account, row.account_id)
                assert user is not None and row.data is not None
                user.email, user.email_lower, user.email_confirmed = row.data, row.data.lower(), True
                revoke_account_tokens(s, user.id)  # a reset link mailed to the old address
                record(s, "account.email", actor_id=user.id, account_id=user.id)
                return user
        except IntegrityError:
            raise Conflict("That email is already taken by another account") from None

    # Sign-ins -------------------------------------------------------------------------------------

    def signed_in(self, user: Account, device: str, address: str, agent: str) -> None:
        """Remember the browser (its device cookie's digest); a sign-in from one the account never used
        is mailed to its owner when two-factor sign-in is off (not the account's very first)."""
        digest = _digest(device)
        try:
            with self.db.session() as s:
                known = s.scalar(
                    select(KnownDevice.id).where(
                        KnownDevice.account_id == user.id, KnownDevice.device_hash == digest
                    )
                )
                if known is not None:
                    return
                seen_before = s.scalar(
                    select(KnownDevice.id).where(KnownDevice.account_id == user.id).limit(1)
                )
                s.add(KnownDevice(account_id=user.id, device_hash=digest, created_at=utcnow()))
                if seen_before is not None and user.totp_enabled_at is None:
                    self.outbox.enqueue(s, user.email, "new_signin", name=user.name, address=address,
                                        agent=" ".join(agent.split())[:200] or "an unknown browser",
                                        at=utcnow().strftime("%Y-%m-%d %H:%M"))  # fmt: skip
        except IntegrityError:  # the same browser signed in twice at once
            pass

    # The second step of a sign-in ----------------------------------------------------------------

    def start_second_step(self, account_id: int) -> str:
        """A token for the browser between a right password and its two-factor code."""
        with self.db.session() as s:
            return issue(s, account_id, "signin", SIGNIN_STEP_LIFETIME)

    def second_step(self, token: str) -> Account | None:
        with self.db.reading() as s:
            row = peek(s, "signin", token)
            return s.get(Account, row.account_id) if row is not None else None

    def finish_second_step(self, token: str) -> None:
        with self.db.session() as s:
            redeem(s, "signin", token)
