"""SQLAlchemy models: accounts, packages and their versions, API keys, owners, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Account(Base):
    """A user (who signs in) or an organization (which owns packages but cannot sign in)."""

    __tablename__ = "accounts"
    # SQLite would otherwise give a deleted account's id (the highest) to the next one, and with it the
    # audit events that name the deleted one by id (``audit_events`` keeps them, with no foreign key).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_lower: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8), default="user")  # "user" | "org"
    email: Mapped[str | None] = mapped_column(String(254))
    email_lower: Mapped[str | None] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Whether the email address was confirmed (by its link, or by an operator); accounts made by the CLI
    # and those older than confirmation are.
    email_confirmed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Two-factor sign-in: the TOTP secret, encrypted under the server secret (``services.twofactor``);
    # set at enrolment, and enabled once a first code confirmed it.
    totp_secret: Mapped[str | None] = mapped_column(String(200))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # a code is accepted once
    # An organization's: members without two-factor sign-in may not create keys for it.
    require_2fa: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A disabled account cannot sign in, and keys it made or that act for it are refused.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    # An organization's packages are private: only its members' sessions and keys may read them.
    private_packages: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("org_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # "admin" | "collaborator"


class PackageRegistration(Base):
    """One package id; ``revision`` counts changes, ``built_revision`` the last one materialized, and
    ``built_epoch`` the ``DocumentEpoch`` it was materialized under (behind it: stale, whatever the revisions
    say)."""

    __tablename__ = "package_registrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[str] = mapped_column(String(100))
    id_lower: Mapped[str] = mapped_column(String(100), unique=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    built_revision: Mapped[int] = mapped_column(Integer, default=0)
    built_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    total_downloads: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Long-lived keys may not push it: only keys minted by trusted publishing (``services.trusted``).
    trusted_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # ``confusables.skeleton(package_id)``: a new id's look-alikes are found by this index, not by a scan.
    skeleton: Mapped[str] = mapped_column(String(400), index=True)

    versions: Mapped[list[PackageVersion]] = relationship(back_populates="registration")


class PackageOwner(Base):
    __tablename__ = "package_owners"
    __table_args__ = (UniqueConstraint("registration_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("package_registrations.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)


class PackageVersion(Base):
    __tablename__ = "package_versions"
    __table_args__ = (UniqueConstraint("registration_id", "version_lower"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("package_registrations.id", ondelete="CASCADE"), index=True
    )
    package_id: Mapped[str] = mapped_column(String(100))  # casing as in this version's nuspec
    version: Mapped[str] = mapped_column(String(256))  # normalized, no metadata
    version_lower: Mapped[str] = mapped_column(String(256))
    full_version: Mapped[str] = mapped_column(String(512))  # normalized, with metadata
    original_version: Mapped[str] = mapped_column(String(512))
    is_prerelease: Mapped[bool] = mapped_column(Boolean)
    is_semver2: Mapped[bool] = mapped_column(Boolean)
    listed: Mapped[bool] = mapped_column(Boolean, default=True)
    published_at: Mapped[datetime] = mapped_column(DateTime)
    pushed_by_key: Mapped[str | None] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    sha512: Mapped[str] = mapped_column(String(128))  # base64
    downloads: Mapped[int] = mapped_column(BigInteger, default=0)
    # Searchable text, lowercased once at push: id, title, tags, description, authors.
    search_text: Mapped[str] = mapped_column(Text)
    metadata_json: Mapped[dict[str, Any]] = mapped_column(JSON)

    registration: Mapped[PackageRegistration] = relationship(back_populates="versions")


class ApiKey(Base):
    __tablename__ = "api_keys"
    # A user's key names are unique whatever their case (minted keys have no ``name_lower``: NULLs differ).
    __table_args__ = (Index("uq_api_keys_user_name", "user_id", "name_lower", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)  # public lookup id, part of the key
    name: Mapped[str] = mapped_column(String(128))
    name_lower: Mapped[str | None] = mapped_column(String(128))
    user_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(64))
    scopes: Mapped[list[Any]] = mapped_column(JSON)
    globs: Mapped[list[Any]] = mapped_column(JSON)
    packages: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    # A short-lived key minted by this trusted publishing policy (deleted with it), and the CI run's line.
    policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("trusted_policies.id", ondelete="CASCADE"), index=True
    )
    origin: Mapped[str | None] = mapped_column(String(500))
    # How many days the key was made to live: regenerating renews it for as long (nuget.org does).
    lifetime_days: Mapped[int | None] = mapped_column(Integer)
    # Revoked for good (an org admin, its creator leaving the org, its creator disabled): why, and when.
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(500))
    # The secret before the last regeneration (its HMAC), so its holder is told it was regenerated.
    regenerated_at: Mapped[datetime | None] = mapped_column(DateTime)
    previous_secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary(64))


class TrustedPolicy(Base):
    """A trusted publishing policy: which CI jobs (issuer and criteria) may mint keys acting for an owner.

    ``bound_owner_id``/``bound_repository_id``: the ids of the repository and its owner, recorded at
    first use; from then on only they match (a deleted and re-created repository of the same name does
    not). ``validate_by``: an unbound policy expires then (7 days after it was saved).
    """

    __tablename__ = "trusted_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    creator_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    issuer: Mapped[str] = mapped_column(String(500))
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON)
    bound_owner_id: Mapped[str | None] = mapped_column(String(64))
    bound_repository_id: Mapped[str | None] = mapped_column(String(64))
    validate_by: Mapped[datetime | None] = mapped_column(DateTime)
    scopes: Mapped[list[Any]] = mapped_column(JSON)
    globs: Mapped[list[Any]] = mapped_column(JSON)
    packages: Mapped[list[Any]] = mapped_column(JSON)
    key_minutes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)


class UsedToken(Base):
    """An OIDC token already exchanged for a key: the SHA-256 of its issuer and ``jti``, unique, so a
    replay is refused by every process; kept until the token itself has expired."""

    __tablename__ = "used_oidc_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    action: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    account_id: Mapped[int | None] = mapped_column(Integer, index=True)  # whose event it is
    package_id: Mapped[str | None] = mapped_column(String(100), index=True)
    version: Mapped[str | None] = mapped_column(String(256))
    key_id: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    # When its user last proved who they are (signed in, or entered the password again): creating or
    # regenerating a key needs that within ``sessions.SUDO_WINDOW``.
    authenticated_at: Mapped[datetime | None] = mapped_column(DateTime)


class Throttle(Base):
    """Fixed-window counters shared by every process (failed logins, failed keys, pushes per key)."""

    __tablename__ = "throttles"

    bucket: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)


class PendingUpload(Base):
    """A blob a push is about to write; removed once the push commits or cleans up after itself."""

    __tablename__ = "pending_uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(600))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ReservedPrefix(Base):
    """An id prefix (``Contoso.*``) reserved for an owner: nobody else may push a new id under it."""

    __tablename__ = "reserved_prefixes"
    __table_args__ = (UniqueConstraint("prefix_lower", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(100))
    prefix_lower: Mapped[str] = mapped_column(String(100), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class OwnershipRequest(Base):
    """An owner's invitation to another account to become a co-owner of a package."""

    __tablename__ = "ownership_requests"
    __table_args__ = (UniqueConstraint("registration_id", "new_owner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("package_registrations.id", ondelete="CASCADE"), index=True
    )
    new_owner_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class DocumentEpoch(Base):
    """One row: counts the times every id's documents were declared stale at once (after a machine crash,
    under another base URL, by ``nugat rebuild``). Moving it is one statement whatever the number of ids;
    an id whose ``built_epoch`` is behind it is rebuilt in the background or on its first read."""

    __tablename__ = "document_epoch"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    epoch: Mapped[int] = mapped_column(Integer)


class SearchChange(Base):
    """Counts the commits that changed what search finds, in 16 rows (a transaction bumps one at random,
    as it commits: concurrent changes rarely wait on one row). Their sum moves at every such commit:
    ``Database.generation`` reads it, and a search page read before stays good while it does not move."""

    __tablename__ = "search_changes"

    slot: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(BigInteger)


class SearchEntry(Base):
    """What search matches and ranks: the latest listed version of an id in one or more of the four views
    (``in_release``: neither prerelease nor SemVer 2.0.0; ``in_prerelease``; ``in_semver2``; ``in_all``),
    kept by ``services.search_index`` in the transaction of every change of the id.

    The text columns are lowercased; ``tags``, ``owners`` and ``package_types`` are space-separated with a
    space at each end (a whole word is `` word ``). The migrations add the text index: ``pg_trgm`` GIN on
    ``search_text`` and the word postings a total is counted from (``search_postings``, ``search_words``),
    kept by triggers (PostgreSQL); the FTS5 trigram table ``search_fts``, kept by triggers (SQLite).
    """

    __tablename__ = "search_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("package_registrations.id", ondelete="CASCADE"), index=True
    )
    version_id: Mapped[int] = mapped_column(ForeignKey("package_versions.id", ondelete="CASCADE"), index=True)
    in_release: Mapped[bool] = mapped_column(Boolean)
    in_prerelease: Mapped[bool] = mapped_column(Boolean)
    in_semver2: Mapped[bool] = mapped_column(Boolean)
    in_all: Mapped[bool] = mapped_column(Boolean)
    package_id: Mapped[str] = mapped_column(String(100))  # the registration's casing
    id_lower: Mapped[str] = mapped_column(String(100), index=True)
    search_text: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    authors: Mapped[str] = mapped_column(Text)  # one a line
    tags: Mapped[str] = mapped_column(Text)
    owners: Mapped[str] = mapped_column(Text)
    package_types: Mapped[str] = mapped_column(Text)
    downloads: Mapped[int] = mapped_column(BigInteger)  # the id's total, refreshed once a minute

    __table_args__ = (Index("ix_search_entries_rank", text("downloads DESC"), "id_lower"),)


def table(model: type[Base]) -> Table:
    """A model's table, for plain SQL statements where the ORM's bookkeeping would cost (hot paths)."""
    return cast(Table, model.__table__)


class OutboxMail(Base):
    """A mail to send (``services.mail``): claimed by one sender at a time (``claimed_until``), retried
    with backoff until sent; ``dedupe``: a mail sent at most once (a key's expiry warning)."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    dedupe: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    failed_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))


class AccountToken(Base):
    """A single-use token a mail's link carries (confirm an address, reset a password), or the pending
    second step of a sign-in; only its SHA-256 is kept."""

    __tablename__ = "account_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # "confirm" | "reset" | "email" | "signin"
    data: Mapped[str | None] = mapped_column(String(254))  # the new address of an email change
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class RecoveryCode(Base):
    """One of a user's ten two-factor recovery codes (its SHA-256), each good once."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class KnownDevice(Base):
    """A browser a user signed in from (the SHA-256 of its device cookie): a sign-in from another one
    is mailed to them when two-factor sign-in is off."""

    __tablename__ = "known_devices"
    __table_args__ = (UniqueConstraint("account_id", "device_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    device_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(DateTime)
