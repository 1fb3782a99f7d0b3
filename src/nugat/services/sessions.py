"""Sign-in sessions, CSRF tokens and one-time form tokens for the web pages (no web framework here).

A session token lives only in the browser's cookie; the database keeps its SHA-256, so a leaked copy of
the database signs nobody in. A CSRF token is an HMAC of the value it is bound to (the session token, or
before sign-in a random cookie), so it needs no storage and dies with the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, func, select, update

from nugat.clock import utcnow
from nugat.db import Database
from nugat.db.models import Account, WebSession
from nugat.services.throttle import Throttler

SESSION_LIFETIME = timedelta(days=7)
SESSION_COOKIE = (
    "nugat_session"  # the pages sign in with it; the token endpoint refuses a request carrying it
)
# Creating or regenerating an API key needs a sign-in (or the password entered again) this recent.
SUDO_WINDOW = timedelta(minutes=15)
ONCE_WINDOW = timedelta(days=1)
MAX_TOKEN = 128


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


class Sessions:
    def __init__(self, db: Database, server_secret: bytes) -> None:
        self.db = db
        self._csrf_key = hmac.new(server_secret, b"nugat csrf", hashlib.sha256).digest()
        self.throttle = Throttler(db)

    def start(self, account_id: int) -> str:
        """A new session for the account; returns the token for the cookie (never stored)."""
        token = new_token()
        now = utcnow()
        with self.db.session() as s:
            s.execute(delete(WebSession).where(WebSession.expires_at <= now))
            s.add(
                WebSession(
                    token_hash=_digest(token),
                    account_id=account_id,
                    created_at=now,
                    expires_at=now + SESSION_LIFETIME,
                    authenticated_at=now,
                )
            )
        return token

    def user(self, token: str) -> Account | None:
        """The signed-in user of an unexpired session, or None (also for a disabled account)."""
        if not token or len(token) > MAX_TOKEN:
            return None
        with self.db.reading() as s:
            found = s.execute(
                select(WebSession.expires_at, Account)
                .join(Account, Account.id == WebSession.account_id)
                .where(WebSession.token_hash == _digest(token))
            ).first()
        if found is None or found[0] <= utcnow() or found[1].disabled_at is not None:
            return None  # a disabled account's sessions are deleted, and refused here meanwhile
        return found[1]

    def is_recent(self, token: str) -> bool:
        """Whether the session's user proved who they are within ``SUDO_WINDOW`` (signed in, or entered
        the password again)."""
        with self.db.reading() as s:
            at = s.scalar(select(WebSession.authenticated_at).where(WebSession.token_hash == _digest(token)))
        return at is not None and utcnow() - at <= SUDO_WINDOW

    def reauthenticated(self, token: str) -> None:
        with self.db.session() as s:
            s.execute(
                update(WebSession)
                .where(WebSession.token_hash == _digest(token))
                .values(authenticated_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    def end_all(self, account_id: int) -> None:
        """Sign the account out everywhere (after a password reset)."""
        with self.db.session() as s:
            s.execute(delete(WebSession).where(WebSession.account_id == account_id))

    def end(self, token: str) -> None:
        with self.db.session() as s:
            s.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))

    def count(self, account_id: int) -> int:
        """How many live sessions the account has (browsers signed in as it)."""
        with self.db.reading() as s:
            found = s.scalar(
                select(func.count(WebSession.id)).where(
                    WebSession.account_id == account_id, WebSession.expires_at > utcnow()
                )
            )
        return int(found or 0)

    def restart(self, account_id: int, current: str) -> str | None:
        """Sign the account out everywhere, ``current`` too, and give that browser a new token for a
        session that keeps ``current``'s expiry and sign-in time (after its password, email or two-factor
        sign-in changed). Returns the new token, or None when ``current`` is no live session of the
        account (ended meanwhile: the account's sessions end all the same, and nobody is signed in again).

        Why not only the others: a copy of this browser's own token (a stolen cookie) is another session in
        all but name, and must stop working too when its owner changes what signs in."""
        token = new_token()
        with self.db.session() as s:
            found = s.scalar(
                select(WebSession).where(
                    WebSession.token_hash == _digest(current),
                    WebSession.account_id == account_id,
                )
            )
            kept = (found.created_at, found.expires_at, found.authenticated_at) if found else None
            s.execute(delete(WebSession).where(WebSession.account_id == account_id))
            if kept is None or kept[1] <= utcnow():
                return None
            created, expires, authenticated = kept
            s.add(
                WebSession(
                    token_hash=_digest(token),
                    account_id=account_id,
                    created_at=created,
                    expires_at=expires,
                    authenticated_at=authenticated,
                )
            )
        return token

    def csrf_token(self, binding: str) -> str:
        return hmac.new(self._csrf_key, binding.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, binding: str | None, presented: str | None) -> bool:
        if not binding or not presented:
            return False
        return hmac.compare_digest(self.csrf_token(binding), presented)

    def claim_once(self, form_token: str) -> bool:
        """True the first time a one-time form token is presented; False on any resubmission.

        A form that shows a secret (create, regenerate) carries one, so reloading its answer page, which
        the browser does by posting the form again, neither makes another secret nor shows one.
        """
        if not form_token or len(form_token) > MAX_TOKEN:
            return False
        return self.throttle.hit(f"once:{form_token}", ONCE_WINDOW) == 1
