"""One settings object, from command-line flags and ``NUGAT_*`` environment variables."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("NUGAT_DATA_DIR", "nugat-data")))
    host: str = field(default_factory=lambda: os.environ.get("NUGAT_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _env_int("NUGAT_PORT", 5000))
    database_url: str | None = field(default_factory=lambda: os.environ.get("NUGAT_DATABASE_URL") or None)
    storage_url: str | None = field(default_factory=lambda: os.environ.get("NUGAT_STORAGE_URL") or None)
    secret_key: str | None = field(default_factory=lambda: os.environ.get("NUGAT_SECRET_KEY") or None)
    max_package_bytes: int = field(
        default_factory=lambda: _env_int("NUGAT_MAX_PACKAGE_BYTES", 250 * 1024 * 1024)
    )
    trust_forwarded: bool = field(
        default_factory=lambda: (
            os.environ.get("NUGAT_TRUST_FORWARDED", "false").lower() in {"1", "true", "yes"}
        )
    )
    allow_signup: bool = field(
        default_factory=lambda: (
            os.environ.get("NUGAT_ALLOW_SIGNUP", "true").lower() not in {"0", "false", "no"}
        )
    )

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with the given non-None fields replaced (command-line flags win over env)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

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
