"""A forward proxy that intercepts HTTPS, for a client whose feed URL is built in: nuget 2.8.7's
``update -Self`` asks ``https://www.nuget.org/api/v2/`` whatever its sources.

It answers ``CONNECT`` itself, ends the TLS with a certificate for the host asked, signed by a CA of its
own (made here; the client's isolated HOME trusts it, see ``trust_in_mono``), and passes the requests in
clear to a nugat server, as it passes plain ``http://`` proxy requests. It records each request line it
passes (the first line of each chunk a client sends that starts with a method: enough for the one
request per connection a 2.8.7 client sends).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_METHODS = (b"GET ", b"HEAD ", b"PUT ", b"POST ", b"DELETE ")


def _certificates(host: str, folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for ``host`` it signed: (CA PEM, chain PEM, key PEM) in ``folder``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nugat tests interception CA")])

    def issued(subject: x509.Name, public: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
        )

    ca = (
        issued(ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        issued(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]), key.public_key())
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem, chain_pem, key_pem = folder / "ca.pem", folder / "chain.pem", folder / "key.pem"
    ca_pem.write_bytes(ca.public_bytes(pem))
    chain_pem.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    key_pem.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_pem, chain_pem, key_pem


def trust_in_mono(ca_pem: Path, home: Path) -> None:
    """Make mono, run with this HOME, trust the CA (``cert-sync --user``: the user's store, in HOME)."""
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    subprocess.run(["cert-sync", "--user", str(ca_pem)], env=env, check=True, capture_output=True, timeout=60)


class InterceptingProxy:
    def __init__(self, target: tuple[str, int], host: str, folder: Path) -> None:
        self.target = target
        self.ca_pem, chain, key = _certificates(host, folder)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(chain, key)
        self.requests: list[str] = []  # the request lines passed, in order
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            if head.startswith(b"CONNECT "):
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                client, head = self.tls.wrap_socket(client, server_side=True), b""
            upstream = socket.create_connection(self.target)
            if head:
                self._record(head)
                upstream.sendall(head)
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()
            self._pipe(client, upstream, True)

    def _record(self, data: bytes) -> None:
        if data.startswith(_METHODS):
            self.requests.append(data.split(b"\r\n", 1)[0].decode("latin-1"))

    def _pipe(self, source: socket.socket, sink: socket.socket, record: bool) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            while data := source.recv(65536):
                if record:
                    self._record(data)
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def intercepting_proxy(target: tuple[str, int], host: str, folder: Path) -> Iterator[InterceptingProxy]:
    proxy = InterceptingProxy(target, host, folder)
    try:
        yield proxy
    finally:
        proxy.close()
