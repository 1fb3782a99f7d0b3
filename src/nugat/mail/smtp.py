"""Sending over SMTP with the standard library: ``smtps://`` (TLS from the start) or ``smtp://`` (with
STARTTLS whenever the server offers it; credentials are never sent in clear except to the loopback)."""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

TIMEOUT = 30.0


class MailRefused(Exception):
    """The server refused this message for good (a 5xx for its recipient): retrying cannot help."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    tls: bool  # implicit TLS (smtps)
    user: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("NUGAT_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://…")
        tls = parts.scheme == "smtps"
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        port = parts.port or (465 if tls else (587 if user else 25))
        return cls(parts.hostname, port, tls, user, password)

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


class Connection:
    def __init__(self, smtp: smtplib.SMTP) -> None:
        self.smtp = smtp

    def send(self, message: EmailMessage) -> None:
        try:
            refused = self.smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            if all(code >= 500 for code, _ in exc.recipients.values()):
                raise MailRefused(f"recipient refused: {exc.recipients}") from None
            raise
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500 and isinstance(exc, smtplib.SMTPDataError):
                raise MailRefused(f"message refused: {exc.smtp_code} {exc.smtp_error!r}") from None
            raise
        if refused:  # one recipient per message: a partial refusal is a refusal
            raise MailRefused(f"recipient refused: {refused}")


@contextmanager
def connect(config: SmtpConfig) -> Iterator[Connection]:
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if config.tls:
        smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=TIMEOUT, context=context)
    else:
        smtp = smtplib.SMTP(config.host, config.port, timeout=TIMEOUT)
    try:
        smtp.ehlo()
        if not config.tls and smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
        elif not config.tls and config.user and not config.loopback:
            raise smtplib.SMTPException(
                f"{config.host} does not offer STARTTLS: the SMTP password is not sent in clear"
            )
        if config.user:
            smtp.login(config.user, config.password or "")
        yield Connection(smtp)
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
