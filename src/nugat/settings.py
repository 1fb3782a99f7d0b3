"""One settings object, from command-line flags and ``NUGAT_*`` environment variables."""

from __future__ import annotations

import logging
import math
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from nugat.logs import FORMATS
from nugat.proxies import DEFAULT_TRUSTED_PROXIES, split_setting

MIN_METRICS_TOKEN = 32  # characters: a token guessed by trying needs more tries than any flood could make
MIN_SECRET_KEY = 32  # characters of NUGAT_SECRET_KEY: it peppers the API-key hashes and signs the sessions

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
BOOLEAN_WORDS = "true/false, 1/0, yes/no or on/off"


class InvalidSetting(ValueError):
    """A ``NUGAT_*`` variable nugat cannot use: the message names it and what it accepts. Raised while the
    settings are read, so every command and the server refuse to start (``nugat`` prints it, exit 2)."""


def parse_bool(text: str) -> bool | None:
    """An on/off value: true/false, 1/0, yes/no, on/off, in any case, spaces around ignored; None for
    anything else (which no setting may take as either)."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    value = parse_bool(raw)
    if value is None:
        raise InvalidSetting(f"{name} must be {BOOLEAN_WORDS} (in any case), not {raw!r}")
    return value


def _env_int(name: str, default: int, *, minimum: int, maximum: int | None = None, unit: str = "") -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    accepted = (
        f"a whole number{unit}, {minimum} or more"
        if maximum is None
        else (f"a whole number{unit} from {minimum} to {maximum}")
    )
    try:
        value = int(raw)
    except ValueError:
        raise InvalidSetting(f"{name} must be {accepted}, not {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise InvalidSetting(f"{name} must be {accepted}, not {value}")
    return value


def _env_seconds(name: str, default: float) -> float:
    """A duration in seconds above zero (fractions allowed)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    accepted = "a number of seconds above 0 (such as 30 or 1.5)"
    try:
        value = float(raw)
    except ValueError:
        raise InvalidSetting(f"{name} must be {accepted}, not {raw!r}") from None
    if not (0 < value < math.inf):
        raise InvalidSetting(f"{name} must be {accepted}, not {raw!r}")
    return value


def _push_limit() -> int | None:
    """NUGAT_PUSH_LIMIT_PER_HOUR; 0 is no limit (None), as NUGAT_CLIENT_REQUEST_LIMIT's 0 is."""
    return _env_int("NUGAT_PUSH_LIMIT_PER_HOUR", 350, minimum=0, unit=" of pushes (0: no limit)") or None


def _secret_key() -> str | None:
    raw = os.environ.get("NUGAT_SECRET_KEY") or None
    if raw is not None and len(raw) < MIN_SECRET_KEY:  # never shown: it is the secret
        # Warned, not refused: a deployment running with a short one would lose every key and session
        # on changing it, which is the operator's decision to make.
        logging.getLogger("nugat").warning(
            "NUGAT_SECRET_KEY has %d characters: use %d or more (such as the output of `openssl rand -hex "
            "32`); changing it ends every session and makes every API key stop working",
            len(raw),
            MIN_SECRET_KEY,
        )
    return raw


def _log_format() -> str:
    raw = os.environ.get("NUGAT_LOG_FORMAT", "").strip()
    if raw and raw not in FORMATS:
        raise InvalidSetting(f"NUGAT_LOG_FORMAT must be {' or '.join(FORMATS)}, not {raw!r}")
    return raw or "text"


def _confirm_email() -> str:
    """NUGAT_CONFIRM_EMAIL: ``auto`` or a boolean word, kept as "auto", "true" or "false"."""
    raw = os.environ.get("NUGAT_CONFIRM_EMAIL", "")
    if not raw.strip() or raw.strip().lower() == "auto":
        return "auto"
    value = parse_bool(raw)
    if value is None:
        raise InvalidSetting(
            f"NUGAT_CONFIRM_EMAIL must be auto or {BOOLEAN_WORDS} (in any case), not {raw!r}"
        )
    return "true" if value else "false"


def _signup_default() -> bool:
    """NUGAT_ALLOW_SIGNUP; unset, sign-up is open on a public site and closed on a ``users`` site (where an
    open sign-up would let any stranger make an account, then a read key, and read everything)."""
    return _env_bool(
        "NUGAT_ALLOW_SIGNUP", (os.environ.get("NUGAT_READ_ACCESS") or "public").lower() != "users"
    )


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("NUGAT_DATA_DIR", "nugat-data")))
    host: str = field(default_factory=lambda: os.environ.get("NUGAT_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _env_int("NUGAT_PORT", 5000, minimum=0, maximum=65535))
    # The URLs may hold passwords: like the secrets, they stay out of the repr (a traceback's locals, a log).
    database_url: str | None = field(
        default_factory=lambda: os.environ.get("NUGAT_DATABASE_URL") or None, repr=False
    )
    storage_url: str | None = field(
        default_factory=lambda: os.environ.get("NUGAT_STORAGE_URL") or None, repr=False
    )
    secret_key: str | None = field(default_factory=_secret_key, repr=False)
    max_package_bytes: int = field(
        default_factory=lambda: _env_int(
            "NUGAT_MAX_PACKAGE_BYTES", 250 * 1024 * 1024, minimum=1, unit=" of bytes"
        )
    )
    trust_forwarded: bool = field(default_factory=lambda: _env_bool("NUGAT_TRUST_FORWARDED", False))
    # With trust_forwarded: the peers whose X-Forwarded-* headers are believed (addresses or networks).
    trusted_proxies: tuple[str, ...] = field(
        default_factory=lambda: (
            split_setting(os.environ.get("NUGAT_TRUSTED_PROXIES", "")) or DEFAULT_TRUSTED_PROXIES
        )
    )
    # Requests of one client address in flight at once in a process (0: no limit); see nugat.clientlimit.
    client_request_limit: int = field(
        default_factory=lambda: _env_int("NUGAT_CLIENT_REQUEST_LIMIT", 128, minimum=0, unit=" (0: no limit)")
    )
    # The feed's fixed public base URL (https://nuget.example.com): stored documents then carry absolute
    # URLs, so nginx or a CDN can serve them as they are. Unset, every URL follows the request's host.
    public_url: str | None = field(
        default_factory=lambda: os.environ.get("NUGAT_PUBLIC_URL", "").rstrip("/") or None
    )
    # A separate origin for package content (https://pkgs.example.com), as nuget.org has api.nuget.org
    # beside www: the flat container and registration URLs point there, and that host serves nothing
    # else, never sets a cookie and ignores any it is sent, so a package file can never act as a page of
    # the site that holds the sessions.
    content_url: str | None = field(
        default_factory=lambda: os.environ.get("NUGAT_CONTENT_URL", "").rstrip("/") or None
    )
    log_format: str = field(default_factory=_log_format)
    # Set by `nugat serve` for its workers: where each saves its request counts for /metrics.
    metrics_dir: Path | None = field(
        default_factory=lambda: (
            Path(os.environ["NUGAT_METRICS_DIR"]) if os.environ.get("NUGAT_METRICS_DIR") else None
        )
    )
    # A scraper on another host sends it as ``Authorization: Bearer …``; clients on this host need none.
    metrics_token: str | None = field(
        default_factory=lambda: os.environ.get("NUGAT_METRICS_TOKEN", "").strip() or None, repr=False
    )
    # Pushes per API key per hour (None: no limit, NUGAT_PUSH_LIMIT_PER_HOUR=0).
    push_limit_per_hour: int | None = field(default_factory=_push_limit)
    # An upload that sends nothing for this long, or is not complete after the second one, is dropped.
    upload_idle_timeout: float = field(default_factory=lambda: _env_seconds("NUGAT_UPLOAD_IDLE_TIMEOUT", 60))
    upload_timeout: float = field(default_factory=lambda: _env_seconds("NUGAT_UPLOAD_TIMEOUT", 3600))
    allow_signup: bool = field(default_factory=lambda: _signup_default())
    # Who may read the feed and the package pages: "public" (anyone) or "users" (an active user's API key
    # with the Read scope as the feed's password, or a signed-in session for pages).
    read_access: str = field(
        default_factory=lambda: (os.environ.get("NUGAT_READ_ACCESS") or "public").lower()
    )
    # Whether signing up while no user exists yet makes that first user a site admin.
    first_signup_is_admin: bool = field(default_factory=lambda: _env_bool("NUGAT_FIRST_SIGNUP_ADMIN", False))

    # Trusted publishing (``services.trusted``): the OIDC issuers CI jobs' tokens may come from, as
    # ``kind=url`` entries, and/or a TOML file of them; and the audience tokens must name.
    oidc_issuers: str = field(default_factory=lambda: os.environ.get("NUGAT_OIDC_ISSUERS", ""))
    oidc_config: Path | None = field(
        default_factory=lambda: (
            Path(os.environ["NUGAT_OIDC_CONFIG"]) if os.environ.get("NUGAT_OIDC_CONFIG") else None
        )
    )
    oidc_audience: str | None = field(default_factory=lambda: os.environ.get("NUGAT_OIDC_AUDIENCE") or None)

    # Mail (``services.mail``): ``smtp://user:password@host:587`` (STARTTLS) or ``smtps://…:465``, and the
    # sender's address. Unset: no mail is sent, and the pages say so where a flow needs one.
    smtp_url: str | None = field(default_factory=lambda: os.environ.get("NUGAT_SMTP_URL") or None, repr=False)
    mail_from: str | None = field(default_factory=lambda: os.environ.get("NUGAT_MAIL_FROM") or None)
    # How often each server process looks for mail to send, and for keys about to expire.
    mail_poll_seconds: float = field(default_factory=lambda: _env_seconds("NUGAT_MAIL_POLL_SECONDS", 5))
    # The first retry of a failed send waits this long; each next one twice as long (up to an hour).
    mail_retry_seconds: float = field(default_factory=lambda: _env_seconds("NUGAT_MAIL_RETRY_SECONDS", 30))
    # Whether a new account must confirm its address (by the mailed link) before it may create keys:
    # "auto" (the default) when mail is configured; "true" without mail means an operator confirms each
    # (``nugat user confirm``).
    confirm_email: str = field(default_factory=_confirm_email)
    # Every user must have two-factor sign-in to create or regenerate a key (as nuget.org requires).
    require_2fa: bool = field(default_factory=lambda: _env_bool("NUGAT_REQUIRE_2FA", False))

    @property
    def public_reads(self) -> bool:
        """``NUGAT_READ_ACCESS=public``: anyone may read what is not private to an organization."""
        return self.read_access != "users"

    @property
    def mail_enabled(self) -> bool:
        return self.smtp_url is not None

    @property
    def email_confirmation(self) -> bool:
        """Whether new sign-ups start unconfirmed."""
        if self.confirm_email.strip().lower() == "auto":
            return self.mail_enabled
        return parse_bool(self.confirm_email) is True

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with the given non-None fields replaced (command-line flags win over env)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    @property
    def documents_url(self) -> str | None:
        """The fixed base URL of the stored V3 documents (every URL in them is package content), or None
        when they follow each request's host."""
        return self.content_url or self.public_url

    def problems(self) -> list[str]:
        """What is wrong with the URL settings, as sentences for the operator (empty when all is well)."""
        found = []
        for name, url in (("NUGAT_PUBLIC_URL", self.public_url), ("NUGAT_CONTENT_URL", self.content_url)):
            if url is None:
                continue
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                found.append(f"{name} must be an absolute http or https URL, not {url!r}")
            elif name == "NUGAT_CONTENT_URL" and (parts.path or parts.query or parts.fragment):
                found.append(f"{name} must be a scheme and a host only (such as https://pkgs.example.com)")
        if (
            not found
            and self.content_url
            and self.public_url
            and authority(self.content_url) == authority(self.public_url)
        ):
            found.append("NUGAT_CONTENT_URL must name another host than NUGAT_PUBLIC_URL")
        if self.metrics_token is not None and len(self.metrics_token) < MIN_METRICS_TOKEN:
            found.append(
                f"NUGAT_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN} characters (such as the output of "
                "`openssl rand -hex 32`)"
            )
        if self.read_access not in ("public", "users"):
            found.append(f"NUGAT_READ_ACCESS must be public or users, not {self.read_access!r}")
        if self.smtp_url is not None:
            parts = urlsplit(self.smtp_url)
            if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
                found.append("NUGAT_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://…")
            if not self.mail_from:
                found.append("NUGAT_MAIL_FROM is needed with NUGAT_SMTP_URL (the address mail is sent from)")
            if not self.public_url:
                found.append(
                    "NUGAT_PUBLIC_URL is needed with NUGAT_SMTP_URL: the links in mails use it (a request's "
                    "Host header is the client's to choose, so it cannot name the site in a mail)"
                )
        return found

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'nugat.db').resolve()}"

    @property
    def tmp_dir(self) -> Path:
        """Where uploads are streamed before they are validated (same filesystem as the package folder)."""
        return self.data_dir / "tmp"

    def server_secret(self) -> bytes:
        """The pepper for API-key hashes and the signing key for sessions and CSRF tokens.

        Several processes or hosts must share it, so production sets ``NUGAT_SECRET_KEY``; the embedded
        default keeps a random one in the data folder, created on first use.
        """
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".secret.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
            try:  # link() fails if another process won the race: then its secret is the one.
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip().encode()


def authority(url: str) -> str:
    """``host[:port]`` of an absolute URL, compared as ``host_authority`` compares a Host header."""
    return host_authority(urlsplit(url).netloc)


def host_authority(host: str) -> str:
    """A Host header's value as compared with a configured URL: lower case, without port 80 or 443."""
    return host.strip().lower().removesuffix(":443").removesuffix(":80")
