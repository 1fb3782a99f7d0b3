"""Two-factor sign-in: TOTP (RFC 6238, 30-second steps, six digits) and ten single-use recovery codes.

The TOTP secret must be read back to check a code, so it is stored encrypted (AES-GCM under a key derived
from the server secret): a copy of the database alone yields no secret. A code is accepted once (the step
it matched is kept, and no earlier or equal step is accepted again), one step of clock drift either way.
Recovery codes are kept as HMACs under the server secret; each is used once. Failures are counted and
refused like wrong passwords (10 per account and 30 per address in 15 minutes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, timedelta

import pyotp
import segno
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from nugat.clock import utcnow
from nugat.db import Database
from nugat.db.models import Account, RecoveryCode
from nugat.services import AuthError, NotFound, ServiceError, TooManyRequests
from nugat.services.audit import record
from nugat.services.mail import Outbox
from nugat.services.throttle import Throttler

RECOVERY_CODES = 10
STEP = 30
FAILED_PER_ACCOUNT = 10
FAILED_PER_ADDRESS = 30
FAILED_WINDOW = timedelta(minutes=15)
# And at most 30 a day for each password the account has had: 10 every quarter hour alone let whoever has
# the password try 960 codes a day, one chance in about 350 a day of hitting one of the three codes a
# sign-in accepts (one in 2 over 8 months); 30 a day make it one in 11,000. Counted per password, so
# that after a password reset its owner is not refused for the rest of the day by the failures of whoever
# had the old one (the quarter-hour bound, for the account whatever its password, still holds).
FAILED_PER_PASSWORD_DAY = 30
FAILED_DAY = timedelta(days=1)
ISSUER = "nugat"
WRONG_CODE = "That code is not right (or was already used): enter the current one from your app"


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32, for typing into the app
    uri: str  # otpauth://, what the QR code holds
    qr_svg: str


def _normalize_recovery(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _later(seconds: int) -> str:
    """``seconds`` as the wait a refusal names: minutes, or hours past two."""
    minutes = math.ceil(seconds / 60)
    if minutes > 120:
        hours = math.ceil(minutes / 60)
        return f"{hours} hours"
    return f"{minutes} minute{'s' * (minutes != 1)}"


def _is_totp(code: str) -> bool:
    return len(code) == 6 and code.isdigit()


class TwoFactor:
    def __init__(self, db: Database, server_secret: bytes, outbox: Outbox | None = None) -> None:
        self.db = db
        self.outbox = outbox
        self._aead = AESGCM(hmac.new(server_secret, b"nugat totp secret", hashlib.sha256).digest())
        self._recovery_key = hmac.new(server_secret, b"nugat recovery code", hashlib.sha256).digest()
        self.throttle = Throttler(db)

    # Storage of the secret ------------------------------------------------------------------------

    def _seal(self, account_id: int, secret: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), str(account_id).encode())
        return base64.b64encode(nonce + sealed).decode()

    def _open(self, account_id: int, stored: str) -> str:
        raw = base64.b64decode(stored)
        return self._aead.decrypt(raw[:12], raw[12:], str(account_id).encode()).decode()

    def _recovery_hash(self, code: str) -> bytes:
        return hmac.new(self._recovery_key, _normalize_recovery(code).encode(), hashlib.sha256).digest()

    # Enrolment -------------------------------------------------------------------------------------

    @staticmethod
    def enabled(account: Account) -> bool:
        return account.totp_enabled_at is not None

    def begin(self, account_id: int) -> Enrolment:
        """A new secret to enrol (kept until a first code confirms it), or the pending one again."""
        with self.db.session() as s:
            user = s.get(Account, account_id)
            assert user is not None
            if user.totp_enabled_at is not None:
                raise ServiceError("Two-factor sign-in is already on")
            if user.totp_secret:
                secret = self._open(user.id, user.totp_secret)
            else:
                secret = pyotp.random_base32()
                user.totp_secret = self._seal(user.id, secret)
            uri = pyotp.TOTP(secret).provisioning_uri(name=user.name, issuer_name=ISSUER)
        buf = io.BytesIO()
        segno.make(uri, error="m").save(buf, kind="svg", scale=4, border=2, xmldecl=False, svgns=True)
        return Enrolment(secret, uri, buf.getvalue().decode())

    def confirm(self, account_id: int, code: str) -> list[str]:
        """Turn two-factor sign-in on with a first code of the pending secret; returns the recovery codes
        (shown once)."""
        with self.db.session() as s:
            user = s.get(Account, account_id)
            assert user is not None
            if user.totp_enabled_at is not None:
                raise ServiceError("Two-factor sign-in is already on")
            if not user.totp_secret:
                raise ServiceError("Start the set-up again: no secret is waiting for a first code")
            if not self._totp_ok(s, user, code.strip().replace(" ", "")):
                raise AuthError(WRONG_CODE)
            user.totp_enabled_at = utcnow()
            codes = self._new_codes(s, user.id)
            record(s, "account.2fa_on", actor_id=user.id, account_id=user.id)
            if self.outbox:
                self.outbox.enqueue(s, user.email, "twofactor_changed", name=user.name, change="turned on")
            return codes

    def _new_codes(self, s: Session, account_id: int) -> list[str]:
        s.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
        codes = []
        for _ in range(RECOVERY_CODES):
            raw = base64.b32encode(secrets.token_bytes(8)).decode().lower()[:10]
            code = f"{raw[:5]}-{raw[5:]}"
            codes.append(code)
            s.add(RecoveryCode(account_id=account_id, code_hash=self._recovery_hash(code)))
        return codes

    # Codes -----------------------------------------------------------------------------------------

    def _totp_ok(self, s: Session, user: Account, code: str) -> bool:
        if not user.totp_secret or not _is_totp(code):
            return False
        totp = pyotp.TOTP(self._open(user.id, user.totp_secret))
        now = int(utcnow().replace(tzinfo=UTC).timestamp()) // STEP
        for step in (now - 1, now, now + 1):
            if hmac.compare_digest(totp.at(step * STEP), code) and (user.totp_last_step or -1) < step:
                won = s.connection().execute(
                    update(Account)
                    .where(
                        Account.id == user.id,
                        or_(Account.totp_last_step.is_(None), Account.totp_last_step < step),
                    )
                    .values(totp_last_step=step)
                    .execution_options(synchronize_session=False)
                )
                return bool(won.rowcount == 1)
        return False

    def _recovery_ok(self, s: Session, account_id: int, code: str) -> bool:
        if len(_normalize_recovery(code)) != 10:
            return False
        won = s.connection().execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.account_id == account_id,
                RecoveryCode.code_hash == self._recovery_hash(code),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return bool(won.rowcount == 1)

    def check(self, account_id: int, code: str, address: str) -> str:
        """A sign-in's second step: a current TOTP code, or an unused recovery code (then used up).
        Returns "totp" or "recovery"; raises AuthError for a wrong one, TooManyRequests past the bounds.

        The failure that reaches a bound of the account mails its owner: whoever sent those codes knows
        the password (or holds a session), which the owner should change."""
        with self.db.reading() as s:
            stored = s.scalar(select(Account.password_hash).where(Account.id == account_id))
        password = hashlib.sha256((stored or "").encode()).hexdigest()[:16]  # which password: see above
        checks = [
            (f"2fa-fail:account:{account_id}", FAILED_PER_ACCOUNT, FAILED_WINDOW),
            (f"2fa-fail:account:{account_id}:password:{password}", FAILED_PER_PASSWORD_DAY, FAILED_DAY),
            (f"2fa-fail:addr:{address}", FAILED_PER_ADDRESS, FAILED_WINDOW),
        ]
        buckets = [bucket for bucket, _, _ in checks]
        with self.db.reading() as s:  # refused at once, without counting, while over a bound
            wait = max(Throttler.blocked_each(s, checks))
        if not wait:
            # Counted before the code is checked, so that codes sent at the same time cannot all be tried.
            counts = [self.throttle.hit(bucket, window) for bucket, _, window in checks]
            for (bucket, limit, window), count in zip(checks, counts, strict=True):
                if count > limit:
                    wait = max(wait, self.throttle.blocked_for(bucket, limit, window), 1)
        if wait:
            raise TooManyRequests(f"Too many wrong codes: try again in {_later(wait)}", wait)
        code = code.strip().replace(" ", "")
        with self.db.session() as s:
            user = s.get(Account, account_id)
            assert user is not None and user.totp_enabled_at is not None
            how = "totp" if self._totp_ok(s, user, code) else None
            if how is None and self._recovery_ok(s, account_id, code):
                record(s, "account.2fa_recovery_code", actor_id=user.id, account_id=user.id, address=address)
                how = "recovery"
            account_bounds = zip(checks[:2], counts[:2], strict=True)
            reached = how is None and any(count == limit for (_, limit, _), count in account_bounds)
            if reached and self.outbox:
                self.outbox.enqueue(s, user.email, "twofactor_failures", name=user.name, address=address)
        if how is None:
            raise AuthError(WRONG_CODE)
        self.throttle.release(buckets)
        return how

    def recovery_left(self, account_id: int) -> int:
        with self.db.reading() as s:
            return len(
                s.scalars(
                    select(RecoveryCode.id).where(
                        RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None)
                    )
                ).all()
            )

    def disable(self, account_id: int, code: str, address: str) -> None:
        """Turn two-factor sign-in off: only with a code (or a recovery code)."""
        self.check(account_id, code, address)
        with self.db.session() as s:
            user = s.get(Account, account_id)
            assert user is not None
            user.totp_secret, user.totp_enabled_at, user.totp_last_step = None, None, None
            s.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
            record(s, "account.2fa_off", actor_id=user.id, account_id=user.id, address=address)
            if self.outbox:
                self.outbox.enqueue(s, user.email, "twofactor_changed", name=user.name, change="turned off")

    def admin_disable(self, name: str) -> Account:
        """An operator turns two-factor sign-in off for a user who lost both the app and the recovery
        codes (``nugat user disable-2fa``); the user is mailed."""
        with self.db.session() as s:
            user = s.scalar(select(Account).where(Account.name_lower == name.lower(), Account.kind == "user"))
            if user is None:
                raise NotFound(f"No user named {name!r}")
            user.totp_secret, user.totp_enabled_at, user.totp_last_step = None, None, None
            s.execute(delete(RecoveryCode).where(RecoveryCode.account_id == user.id))
            record(s, "account.2fa_off", account_id=user.id, by="operator")
            if self.outbox:
                change = "turned off by the site administrator"
                self.outbox.enqueue(s, user.email, "twofactor_changed", name=user.name, change=change)
            return user

    def new_recovery_codes(self, account_id: int, code: str, address: str) -> list[str]:
        self.check(account_id, code, address)
        with self.db.session() as s:
            return self._new_codes(s, account_id)
