"""The SMTP transport against a real SMTP server with TLS (aiosmtpd, a certificate made for the test):
``smtp://`` upgrades with STARTTLS and then logs in; ``smtps://`` speaks TLS from the start; a server
without STARTTLS never gets the password, unless it is on the loopback."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nugat.mail.smtp import SmtpConfig, connect
from support.smtp import free_port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class Collect:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.logins: list[tuple[str, bool]] = []  # (user, over TLS)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


def _authenticator(box: Collect) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"mailer", b"p@ss word")
        if isinstance(data, LoginPassword):
            box.logins.append((data.login.decode(), session.ssl is not None))
        return AuthResult(success=ok)

    return check


@pytest.fixture
def trusted(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """The test's certificate trusted by ``ssl.create_default_context`` (as a real CA's would be)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(*certificate)
    return server


def _message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "n@example.test", "a@example.test", "hello"
    msg.set_content("body")
    return msg


@pytest.fixture
def starttls_server(trusted: ssl.SSLContext) -> Iterator[tuple[Collect, int]]:
    box, port = Collect(), free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port, tls_context=trusted, require_starttls=True,
        authenticator=_authenticator(box), auth_require_tls=True,
    )  # fmt: skip
    controller.start()
    yield box, port
    controller.stop()


def test_starttls_then_login(starttls_server: tuple[Collect, int]) -> None:
    box, port = starttls_server
    with connect(SmtpConfig.parse(f"smtp://mailer:p%40ss%20word@127.0.0.1:{port}")) as connection:
        connection.send(_message())
    assert box.logins == [("mailer", True)] and len(box.messages) == 1


def test_smtps(trusted: ssl.SSLContext) -> None:
    box, port = Collect(), free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port, ssl_context=trusted, authenticator=_authenticator(box),
        auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    try:
        with connect(SmtpConfig.parse(f"smtps://mailer:p%40ss%20word@127.0.0.1:{port}")) as connection:
            connection.send(_message())
    finally:
        controller.stop()
    # This server speaks only TLS (aiosmtpd notes TLS on the session only after a STARTTLS).
    assert [user for user, _ in box.logins] == ["mailer"] and len(box.messages) == 1


def test_no_password_in_clear_to_another_host() -> None:
    config = SmtpConfig("mail.example.test", 25, False, "mailer", "secret")
    assert not config.loopback  # connect() refuses to log in to it without STARTTLS (see smtp.connect)
