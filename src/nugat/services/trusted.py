"""Trusted publishing: policies, and the exchange of a CI job's OIDC token for a short-lived key.

A policy, made by a package owner (a user, or an administrator of an organization), says which CI jobs
(an issuer the operator configured, and criteria: repository, workflow, environment…) may mint keys
acting for that owner, with which scopes and packages, living how many minutes (15 by default, at most
60). A minted key is an ordinary API key row, created in the policy creator's name for the policy's
owner, tied to the policy (``api_keys.policy_id``): editing or deleting the policy deletes its keys.

The checks a token passes are in ``nugat.oidc`` (signature, claims, criteria) and ``nugat.authz.can_mint``
(accounts and rights, at every mint). Each token's ``jti`` is accepted once, through a unique row every
process shares. Every mint and every refusal is audited with the issuer, repository, workflow and run.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nugat import authz, keys, oidc
from nugat.authz import OPERATOR
from nugat.clock import isoformat, utcnow
from nugat.db import Database
from nugat.db.models import (
    Account,
    ApiKey,
    Membership,
    PackageOwner,
    PackageRegistration,
    TrustedPolicy,
    UsedToken,
)
from nugat.services import AuthError, Forbidden, NotFound, ServiceError, TooManyRequests, Unavailable
from nugat.services.actors import By, actor_id, holds_keys, resolve, user_actor
from nugat.services.audit import record
from nugat.services.mail import Outbox
from nugat.services.orgs import account_named, role_of
from nugat.services.reservations import owner_ids
from nugat.services.throttle import Throttler

log = logging.getLogger("nugat.trusted")

DEFAULT_KEY_MINUTES = 15
MAX_KEY_MINUTES = 60
FIRST_USE_WINDOW = timedelta(days=7)
KEEP_AFTER_EXPIRY = timedelta(days=1)  # used-token rows and dead minted keys are pruned after this
FAILED_LIMIT = 30  # refused exchanges per address per window, then 429 (each one is an audit row)
FAILED_WINDOW = timedelta(minutes=1)
POLICY_SCOPES = (keys.Scope.PUSH, keys.Scope.PUSH_VERSION, keys.Scope.UNLIST)
"""What a policy's keys may do: publish, never ``read`` (a minted key lives minutes, for a CI run's push)."""


@dataclass(frozen=True)
class LiveKey:
    id: str
    expires: datetime
    origin: str


@dataclass(frozen=True)
class PolicyView:
    id: int
    name: str
    creator: str
    owner: str
    kind: str
    issuer: str
    criteria: oidc.Criteria
    bound: bool
    validate_by: datetime | None
    scopes: list[str]
    globs: list[str]
    packages: list[str]
    key_minutes: int
    created: datetime
    last_used: datetime | None
    live_keys: list[LiveKey] = field(default_factory=list)

    @property
    def expired(self) -> bool:
        return self.validate_by is not None and self.validate_by < utcnow()

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "creator": self.creator,
            "owner": self.owner,
            "kind": self.kind,
            "issuer": self.issuer,
            "criteria": self.criteria.as_json(),
            "bound": self.bound,
            "validate_by": isoformat(self.validate_by) if self.validate_by else None,
            "expired": self.expired,
            "scopes": self.scopes,
            "globs": self.globs,
            "packages": self.packages,
            "key_minutes": self.key_minutes,
            "created": isoformat(self.created),
            "last_used": isoformat(self.last_used) if self.last_used else None,
            "live_keys": [
                {"id": k.id, "expires": isoformat(k.expires), "origin": k.origin} for k in self.live_keys
            ],
        }


@dataclass(frozen=True)
class PolicySettings:
    """What a policy's form or command gives (checked by ``TrustedPublishing``)."""

    criteria: Mapping[str, str]
    scopes: Sequence[str]
    globs: Sequence[str] = ()
    packages: Sequence[str] = ()
    key_minutes: int = DEFAULT_KEY_MINUTES
    name: str = ""


@dataclass(frozen=True)
class Minted:
    key: str  # the secret, shown once
    key_id: str
    expires: datetime
    policy: str


def _token_hash(job: oidc.Identity) -> bytes:
    return hashlib.sha256(f"{job.issuer}\0{job.jti}".encode()).digest()


def _active(account: Account | None) -> bool:
    """Whether an account may act: it exists and is not disabled (``nugat user disable``, the Users
    page). A policy whose creator or owner (user or organization) is disabled mints no key:
    ``authz.can_mint``."""
    return account is not None and account.disabled_at is None


class TrustedPublishing:
    def __init__(
        self,
        db: Database,
        pepper: bytes,
        issuers: Sequence[oidc.Issuer],
        audience: str | None,
        caches: Mapping[str, oidc.KeyCache] | None = None,
        *,
        require_2fa: bool = False,
        outbox: Outbox | None = None,
    ) -> None:
        self.db = db
        self.require_2fa = require_2fa  # NUGAT_REQUIRE_2FA: as for keys made by hand
        self.outbox = outbox  # a policy's creation or change is mailed, as a key's is
        self.pepper = pepper
        self.issuers = list(issuers)
        self.audience = audience
        self.caches = dict(caches) if caches else {i.url: oidc.KeyCache(i) for i in self.issuers}
        self.throttle = Throttler(db)

    @property
    def enabled(self) -> bool:
        return bool(self.issuers and self.audience)

    def _require_enabled(self) -> None:
        if not self.enabled:
            raise NotFound(
                "Trusted publishing is not enabled on this server: its operator sets NUGAT_OIDC_ISSUERS "
                "(and NUGAT_PUBLIC_URL or NUGAT_OIDC_AUDIENCE)"
            )

    # Policies ---------------------------------------------------------------------------------------

    def _issuer(self, url: str, kind: str | None = None) -> oidc.Issuer:
        wanted = url.strip().rstrip("/")
        for issuer in self.issuers:
            if issuer.url == wanted and (kind is None or issuer.kind == kind):
                return issuer
        choices = ", ".join(i.url for i in self.issuers if kind is None or i.kind == kind) or "none"
        raise ServiceError(f"{url!r} is not an issuer this server trusts (configured: {choices})")

    def default_issuer(self, kind: str) -> str | None:
        return next((i.url for i in self.issuers if i.kind == kind), None)

    def _checked(
        self, kind: str, settings: PolicySettings
    ) -> tuple[oidc.Criteria, list[str], list[str], list[str], int, str]:
        _check_scopes(settings.scopes)
        try:
            wanted = oidc.criteria(kind, settings.criteria)
            scopes, globs, packages, _ = keys.normalize_settings(
                list(settings.scopes), list(settings.globs), list(settings.packages), None
            )
        except (oidc.InvalidCriteria, keys.InvalidKeySettings) as exc:
            raise ServiceError(_sentence(str(exc))) from None
        if not 1 <= settings.key_minutes <= MAX_KEY_MINUTES:
            raise ServiceError(f"Minted keys live 1 to {MAX_KEY_MINUTES} minutes")
        name = settings.name.strip() or _default_name(wanted)
        problem = keys.name_problem(name, "policy")
        if problem is not None:
            raise ServiceError(problem)
        return wanted, scopes, globs, packages, settings.key_minutes, name

    def create_policy(
        self,
        by: str,
        owner: str,
        kind: str,
        issuer: str | None,
        settings: PolicySettings,
        address: str | None = None,
    ) -> PolicyView:
        """A new policy made by user ``by`` for ``owner`` (itself, or an organization it administers)."""
        self._require_enabled()
        chosen = self._issuer(issuer or self.default_issuer(kind) or "", kind)
        wanted, scopes, globs, packages, minutes, name = self._checked(kind, settings)
        now = utcnow()
        with self.db.session() as s:
            creator = account_named(s, by, "user")
            owner_account = account_named(s, owner)
            self._may_manage(s, creator, owner_account)
            authz.require(self._holds_keys(creator, owner_account))
            row = TrustedPolicy(
                name=name,
                creator_id=creator.id,
                owner_id=owner_account.id,
                kind=kind,
                issuer=chosen.url,
                criteria=wanted.as_json(),
                bound_owner_id=None,
                bound_repository_id=None,
                validate_by=now + FIRST_USE_WINDOW if oidc.binds(kind) else None,
                scopes=scopes,
                globs=globs,
                packages=packages,
                key_minutes=minutes,
                created_at=now,
                updated_at=now,
                last_used_at=None,
            )
            s.add(row)
            s.flush()
            _record_policy(s, "trusted.policy_create", row, creator.id, address)
            self._mail(s, row, "created", creator.name)
            return self._view(s, row)

    def _may_manage(self, s: Session, actor: Account, owner: Account) -> None:
        creator = user_actor(s, actor)
        authz.require(
            authz.can_manage_policy(
                actor=actor.name,
                owner=owner.name,
                is_owner=actor.id == owner.id,
                administers_owner=owner.kind == "org" and owner.id in creator.admin_of,
            )
        )

    def _holds_keys(self, user: Account, owner: Account) -> authz.Decision:
        """May ``user`` be given keys acting for ``owner`` (as when it makes one)."""
        return holds_keys(user, owner, site_requires_2fa=self.require_2fa)

    def _mail(self, s: Session, row: TrustedPolicy, event: str, by: str, deleted: int = 0) -> None:
        """Mail the policy's owner (a user; an organization's administrators) that it was ``event``
        ("created", "edited"): a policy gives keys, so its owner hears of it as of a key (in the
        transaction: sent only if it commits)."""
        if self.outbox is None or not self.outbox.enabled:
            return
        owner = s.get(Account, row.owner_id)
        if owner is None:
            return
        recipients = [owner]
        if owner.kind == "org":
            recipients = list(
                s.scalars(
                    select(Account)
                    .join(Membership, Membership.member_id == Account.id)
                    .where(Membership.org_id == owner.id, Membership.role == "admin")
                    .order_by(Account.name_lower)
                )
            )
        wanted = oidc.Criteria(row.kind, **row.criteria)
        criteria = f"{oidc.KIND_LABELS[row.kind]}: " + ", ".join(
            f"{k} {v}" for k, v in wanted.as_json().items()
        )
        for user in recipients:
            self.outbox.enqueue(
                s,
                user.email,
                "policy_event",
                name=user.name,
                policy=row.name,
                owner=owner.name,
                event=event,
                by=by,
                criteria=criteria,
                scopes=", ".join(row.scopes),
                globs=", ".join([*row.globs, *row.packages]),
                minutes=row.key_minutes,
                deleted=deleted,
            )

    def _own_policy(self, s: Session, by: By, policy_id: int) -> tuple[TrustedPolicy, authz.Actor]:
        """The policy, for whoever administers its owner now (the owner, an admin of the organization, a
        site admin, the command line): ``authz.can_change_policy``."""
        row = s.get(TrustedPolicy, policy_id, with_for_update=True)
        actor = resolve(s, by)
        if row is None:
            raise NotFound(f"There is no trusted publishing policy {policy_id}")
        authz.require(authz.can_change_policy(actor, policy_id, owner_id=row.owner_id))
        return row, actor

    def edit_policy(
        self, by: By, policy_id: int, settings: PolicySettings, address: str | None = None
    ) -> PolicyView:
        """Change a policy's criteria and key settings. Its live keys are deleted at once; a change of
        repository also forgets the ids it was bound to, and gives it 7 days to its first use again."""
        with self.db.session() as s:
            row, actor = self._own_policy(s, by, policy_id)
            wanted, scopes, globs, packages, minutes, name = self._checked(row.kind, settings)
            editor_id = actor_id(actor)  # None: the command line (the operator)
            if editor_id is not None:  # a user changes what the policy mints, as if it made a key
                editor, owner = s.get(Account, editor_id), s.get(Account, row.owner_id)
                assert editor is not None and owner is not None
                authz.require(self._holds_keys(editor, owner))
            before = oidc.Criteria(row.kind, **row.criteria)
            if (before.owner.lower(), before.repository.lower()) != (
                wanted.owner.lower(),
                wanted.repository.lower(),
            ):
                row.bound_owner_id = row.bound_repository_id = None
            if oidc.binds(row.kind) and row.bound_owner_id is None:
                row.validate_by = utcnow() + FIRST_USE_WINDOW
            row.name, row.criteria = name, wanted.as_json()
            row.scopes, row.globs, row.packages, row.key_minutes = scopes, globs, packages, minutes
            row.updated_at = utcnow()
            killed = self._kill_keys(s, row.id)
            _record_policy(s, "trusted.policy_edit", row, actor_id(actor), address, killed)
            self._mail(s, row, "edited", actor.name, len(killed))
            return self._view(s, row)

    def delete_policy(self, by: By, policy_id: int, address: str | None = None) -> None:
        """Delete a policy and every key it minted (they stop working at once)."""
        with self.db.session() as s:
            row, actor = self._own_policy(s, by, policy_id)
            killed = self._kill_keys(s, row.id)
            _record_policy(s, "trusted.policy_delete", row, actor_id(actor), address, killed)
            s.delete(row)

    @staticmethod
    def _kill_keys(s: Session, policy_id: int) -> list[str]:
        killed = list(s.scalars(select(ApiKey.key_id).where(ApiKey.policy_id == policy_id)))
        s.execute(delete(ApiKey).where(ApiKey.policy_id == policy_id))
        return killed

    def policies(self, viewer: By = OPERATOR) -> list[PolicyView]:
        """The policies that act for an account whose policies ``viewer`` may change
        (``authz.visible_accounts``: itself, the organizations it administers now; the operator and site
        admins: every policy). Not those it made for an organization it no longer administers
        (``authz.can_change_policy``)."""
        with self.db.reading() as s:
            query = select(TrustedPolicy).order_by(TrustedPolicy.created_at, TrustedPolicy.id)
            actor = resolve(s, viewer)
            accounts = authz.visible_accounts(actor)
            if accounts is not None:
                query = query.where(TrustedPolicy.owner_id.in_(accounts))
            return [self._view(s, row) for row in s.scalars(query)]

    def policy(self, viewer: By, policy_id: int) -> PolicyView:
        found = next((p for p in self.policies(viewer) if p.id == policy_id), None)
        if found is None:
            raise NotFound(authz.unseen_policy(policy_id).reason)
        return found

    @staticmethod
    def _view(s: Session, row: TrustedPolicy) -> PolicyView:
        names = dict(
            s.execute(
                select(Account.id, Account.name).where(Account.id.in_({row.creator_id, row.owner_id}))
            ).all()
        )
        live = s.execute(
            select(ApiKey.key_id, ApiKey.expires_at, ApiKey.origin)
            .where(ApiKey.policy_id == row.id, ApiKey.expires_at > utcnow(), ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.expires_at)
        ).all()
        return PolicyView(
            id=row.id,
            name=row.name,
            creator=names.get(row.creator_id, "?"),
            owner=names.get(row.owner_id, "?"),
            kind=row.kind,
            issuer=row.issuer,
            criteria=oidc.Criteria(row.kind, **row.criteria),
            bound=row.bound_owner_id is not None,
            validate_by=row.validate_by,
            scopes=list(row.scopes),
            globs=list(row.globs),
            packages=list(row.packages),
            key_minutes=row.key_minutes,
            created=row.created_at,
            last_used=row.last_used_at,
            live_keys=[LiveKey(k, e, o or "") for k, e, o in live],
        )

    # Trusted publishing only ---------------------------------------------------------------------------

    def set_trusted_only(self, by: By, package_id: str, on: bool, address: str | None = None) -> None:
        """Make a package accept only keys minted by trusted publishing (``on``), or any key again."""
        with self.db.session() as s:
            reg = s.scalar(
                select(PackageRegistration)
                .where(PackageRegistration.id_lower == package_id.lower())
                .with_for_update()
            )
            if reg is None:
                raise NotFound(f"There is no package {package_id}")
            actor = resolve(s, by)
            owners = owner_ids(s, reg.id)
            decision = authz.can_set_trusted_only(
                actor=actor.name,
                package_id=package_id,  # as given: a private id's casing is not an outsider's to learn
                owns_package=any(authz.administers(actor, o) for o in owners),
                site_admin=authz.is_site_admin(actor),
            )
            authz.require(decision)
            reg.trusted_only = on
            record(
                s,
                "package.trusted_only",
                actor_id=actor_id(actor),
                account_id=min(owners) if owners else None,
                package_id=reg.package_id,
                address=address,
                trusted_only=on,
            )

    def owners_for(self, user: str) -> list[str]:
        """Whom ``user`` may make policies for: itself, then the organizations it administers."""
        with self.db.reading() as s:
            me = account_named(s, user, "user")
            orgs = s.scalars(
                select(Account.name)
                .join(Membership, Membership.org_id == Account.id)
                .where(Membership.member_id == me.id, Membership.role == "admin")
                .order_by(Account.name_lower)
            )
            return [me.name, *orgs]

    def packages_for(self, user: str) -> list[tuple[str, bool]]:
        """The packages ``user`` may switch to trusted publishing only, with their current state."""
        with self.db.reading() as s:
            me = account_named(s, user, "user")
            administered = select(Membership.org_id).where(
                Membership.member_id == me.id, Membership.role == "admin"
            )
            rows = s.execute(
                select(PackageRegistration.package_id, PackageRegistration.trusted_only)
                .join(PackageOwner, PackageOwner.registration_id == PackageRegistration.id)
                .where(or_(PackageOwner.account_id == me.id, PackageOwner.account_id.in_(administered)))
                .distinct()
                .order_by(PackageRegistration.package_id)
            ).all()
        return [(package_id, bool(flag)) for package_id, flag in rows]

    def trusted_only(self, package_id: str) -> bool:
        with self.db.reading() as s:
            found = s.scalar(
                select(PackageRegistration.trusted_only).where(
                    PackageRegistration.id_lower == package_id.lower()
                )
            )
        if found is None:
            raise NotFound(f"There is no package {package_id}")
        return bool(found)

    # Minting ------------------------------------------------------------------------------------------

    def mint(self, username: str, token: str, address: str | None = None) -> Minted:
        """Exchange a CI job's OIDC token for a key, under a policy of ``username`` (the policy's creator,
        as on nuget.org, or its owner). 401 for a token or policy refused, 403 for an account refused,
        503 when the issuer cannot be reached to check the token."""
        self._require_enabled()
        wait = self.throttle.blocked_for(_failed_bucket(address), FAILED_LIMIT, FAILED_WINDOW)
        if wait:
            raise TooManyRequests(f"Too many refused token exchanges from {address}; retry later", wait)
        job = self._verified(username, token, address)
        with self.db.reading() as s:
            named = s.scalar(select(Account).where(Account.name_lower == username.lower()))
            policy, reason = self._matching(s, named, job)
        if policy is None:
            message = f"No trusted publishing policy of {username!r} matches this token"
            self._refuse(username, job, f"{message}: {reason}" if reason else message, address, named)
        try:
            with self.db.session() as s:
                return self._mint_in(s, username, policy, job, address)
        except _Refusal as exc:
            self._refuse(username, job, exc.message, address, None, policy, exc.status)

    def _verified(self, username: str, token: str, address: str | None) -> oidc.Identity:
        issuer = ""
        try:
            issuer = oidc.unverified_issuer(token)
            cache = self.caches.get(issuer)
            if cache is None:
                raise oidc.BadToken(
                    f"Tokens of {issuer} are not accepted: this server does not trust that issuer"
                )
            return oidc.identity(cache.issuer.kind, oidc.verify(token, cache, str(self.audience)))
        except oidc.BadToken as exc:
            self._refuse(username, None, exc.message, address, issuer=issuer)
        except oidc.IssuerUnavailable as exc:
            log.warning("trusted publishing: %s", exc.message)
            message = f"The issuer {issuer} could not be reached to check the token; retry later"
            self._refuse(username, None, message, address, issuer=issuer, status=503)

    @staticmethod
    def _matching(
        s: Session, named: Account | None, job: oidc.Identity
    ) -> tuple[TrustedPolicy | None, str | None]:
        """The oldest policy of ``named`` this job matches; else the reason a policy of the same
        repository gave (other policies' reasons are not disclosed)."""
        if named is None:
            return None, None
        rows = s.scalars(
            select(TrustedPolicy)
            .where(
                TrustedPolicy.issuer == job.issuer,
                or_(TrustedPolicy.creator_id == named.id, TrustedPolicy.owner_id == named.id),
            )
            .order_by(TrustedPolicy.created_at, TrustedPolicy.id)
        )
        reason = None
        for row in rows:
            wanted = oidc.Criteria(row.kind, **row.criteria)
            why = oidc.mismatch(wanted, job) or oidc.binding_mismatch(
                row.bound_owner_id, row.bound_repository_id, job
            )
            if why is None:
                return row, None
            same = job.repository.lower() == wanted.full_repository.lower() and wanted.kind != oidc.GENERIC
            if reason is None and same:
                reason = f"policy {row.name!r}: {why}"
        return None, reason

    def _mint_in(
        self, s: Session, username: str, policy: TrustedPolicy, job: oidc.Identity, address: str | None
    ) -> Minted:
        """Decide, spend the token, bind a first-used policy, and add the key, in one transaction."""
        row = s.get(TrustedPolicy, policy.id, with_for_update=True)
        if row is None:
            raise _Refusal("The policy was deleted while the token was being checked", 401)
        creator, owner = self._accounts_allowed(s, row)
        self._spend(s, job)
        if oidc.binds(row.kind) and row.bound_owner_id is None:
            self._bind(s, row, job, address)
        secret, key = self._new_key(row, creator, owner, job)
        s.add(key)
        row.last_used_at = key.created_at
        record(
            s,
            "trusted.mint",
            actor_id=creator.id,
            account_id=owner.id,
            key_id=key.key_id,
            address=address,
            policy=row.name,
            username=username,
            expires=isoformat(key.expires_at),
            **job.summary(),
        )
        self._prune(s, key.created_at)
        return Minted(secret, key.key_id, key.expires_at, row.name)

    def _accounts_allowed(self, s: Session, row: TrustedPolicy) -> tuple[Account, Account]:
        """The policy's creator and owner, if ``authz.can_mint`` lets the policy mint now."""
        creator, owner = s.get(Account, row.creator_id), s.get(Account, row.owner_id)
        decision = authz.can_mint(
            policy=row.name,
            creator=creator.name if creator else "?",
            creator_active=_active(creator),
            owner=owner.name if owner else "?",
            owner_active=_active(owner),
            owner_is_org=owner is not None and owner.kind == "org",
            creator_administers_owner=creator is not None
            and owner is not None
            and role_of(s, creator.id, owner.id) == "admin",
            creator_holds_keys=self._holds_keys(creator, owner) if creator and owner else authz.ALLOW,
            expired_unbound=row.bound_owner_id is None
            and row.validate_by is not None
            and row.validate_by < utcnow(),
        )
        if not decision.allowed:
            raise _Refusal(decision.reason, decision.status)
        assert creator is not None and owner is not None
        return creator, owner

    def _new_key(
        self, row: TrustedPolicy, creator: Account, owner: Account, job: oidc.Identity
    ) -> tuple[str, ApiKey]:
        """A key with the policy's scopes and packages, in the creator's name for the owner; its secret."""
        key_id = keys.new_key_id()
        secret = keys.new_key(key_id)
        parsed = keys.parse_key(secret)
        assert parsed is not None
        now = utcnow()
        key = ApiKey(
            key_id=key_id,
            name=f"trusted: {row.name}"[:109] + f" ({key_id})",  # unique: a creator's key names are
            user_id=creator.id,
            owner_id=owner.id,
            secret_hash=keys.hash_secret(self.pepper, parsed),
            scopes=list(row.scopes),
            globs=list(row.globs),
            packages=list(row.packages),
            created_at=now,
            expires_at=now + timedelta(minutes=row.key_minutes),
            last_used_at=None,
            policy_id=row.id,
            origin=job.describe()[:500],
        )
        return secret, key

    def _spend(self, s: Session, job: oidc.Identity) -> None:
        """Note the token as used; a second use, by any process, fails on the unique hash."""
        expires = datetime.fromtimestamp(job.expires, UTC).replace(tzinfo=None) + timedelta(
            seconds=oidc.LEEWAY
        )
        try:
            with s.begin_nested():
                s.add(UsedToken(token_hash=_token_hash(job), expires_at=expires))
        except IntegrityError:
            raise _Refusal(
                "This token was already exchanged for a key: each token is accepted once; "
                "request a new one from the CI system",
                401,
            ) from None

    @staticmethod
    def _bind(s: Session, row: TrustedPolicy, job: oidc.Identity, address: str | None) -> None:
        """First use: record the ids of the repository and its owner (only they match from now on)."""
        taken = (
            s.connection()
            .execute(
                update(TrustedPolicy)
                .where(TrustedPolicy.id == row.id, TrustedPolicy.bound_owner_id.is_(None))
                .values(bound_owner_id=job.owner_id, bound_repository_id=job.repository_id, validate_by=None)
            )
            .rowcount
        )
        s.refresh(row)
        if not taken:  # a concurrent first use bound it: it must have been this same repository
            why = oidc.binding_mismatch(row.bound_owner_id, row.bound_repository_id, job)
            if why:
                raise _Refusal(f"Policy {row.name!r}: {why}", 401)
            return
        record(
            s,
            "trusted.policy_bind",
            actor_id=row.creator_id,
            account_id=row.owner_id,
            address=address,
            policy=row.name,
            repository=job.repository,
            owner_id=job.owner_id,
            repository_id=job.repository_id,
        )

    @staticmethod
    def _prune(s: Session, now: datetime) -> None:
        s.execute(delete(UsedToken).where(UsedToken.expires_at < now - KEEP_AFTER_EXPIRY))
        s.execute(
            delete(ApiKey).where(ApiKey.policy_id.is_not(None), ApiKey.expires_at < now - KEEP_AFTER_EXPIRY)
        )

    def _refuse(
        self,
        username: str,
        job: oidc.Identity | None,
        reason: str,
        address: str | None,
        named: Account | None = None,
        policy: TrustedPolicy | None = None,
        status: int = 401,
        issuer: str = "",
    ) -> NoReturn:
        """Audit a refused exchange in a transaction of its own, then raise the client's error."""
        try:
            with self.db.session() as s:
                if named is None and policy is None:
                    named = s.scalar(select(Account).where(Account.name_lower == username.lower()))
                facts = job.summary() if job else ({"issuer": issuer[:500]} if issuer else {})
                record(
                    s,
                    "trusted.refused",
                    actor_id=policy.creator_id if policy else None,
                    account_id=policy.owner_id if policy else (named.id if named else None),
                    address=address,
                    username=username[:64],
                    reason=reason,
                    policy=policy.name if policy else None,
                    **facts,
                )
            if status != 503:  # the issuer's outage is not the client's failure
                self.throttle.hit(_failed_bucket(address), FAILED_WINDOW)
        except Exception as exc:  # the refusal stands even if it cannot be recorded (database down)
            log.error("could not audit a refused token exchange: %s", exc)
        if status == 503:
            raise Unavailable(reason)
        if status == 403:
            raise Forbidden(reason)
        raise AuthError(reason)


class _Refusal(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _failed_bucket(address: str | None) -> str:
    return f"token-fail:addr:{address}"


def _check_scopes(asked: Sequence[str]) -> None:
    """Refuse a scope a policy's keys cannot have (``POLICY_SCOPES``); unknown names are left to
    ``keys.normalize_settings``, which says which exist."""
    choices = keys.one_of(s.value for s in POLICY_SCOPES)
    if not asked:
        raise ServiceError(f"Choose at least one scope: {choices}")
    for name in asked:
        scope = keys.Scope.named(name)
        if scope is not None and scope not in POLICY_SCOPES:
            raise ServiceError(
                f"A trusted publishing policy cannot have the scope {scope.value!r}: its keys publish, "
                f"so choose {choices}"
            )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _default_name(wanted: oidc.Criteria) -> str:
    if wanted.kind == oidc.GITHUB:
        return f"{wanted.full_repository} {wanted.workflow}"[:128]
    if wanted.kind == oidc.GITLAB:
        return wanted.full_repository[:128]
    return wanted.subject[:128]


def _record_policy(
    s: Session,
    action: str,
    row: TrustedPolicy,
    actor_id: int | None,
    address: str | None,
    killed: list[str] | None = None,
) -> None:
    record(
        s,
        action,
        actor_id=actor_id,
        account_id=row.owner_id,
        address=address,
        policy=row.name,
        issuer=row.issuer,
        criteria=dict(row.criteria),
        scopes=list(row.scopes),
        globs=list(row.globs),
        packages=list(row.packages),
        key_minutes=row.key_minutes,
        keys_deleted=killed or None,
    )
