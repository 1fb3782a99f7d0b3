"""A real OpenID Connect issuer on 127.0.0.1 for the trusted publishing tests.

It serves its discovery document and JWKS over HTTP and signs RS256 and ES256 tokens with keys made here
(PyJWT + cryptography on this side too: no hand-made JWTs). It can rotate its keys, and go down.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


@dataclass
class _Key:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.algorithms.RSAAlgorithm if self.alg.startswith("RS") else jwt.algorithms.ECAlgorithm
        data: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig"}


def new_key(alg: str = "RS256") -> _Key:
    private = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if alg.startswith("RS")
        else ec.generate_private_key(ec.SECP256R1())
    )
    return _Key(f"k-{uuid.uuid4().hex[:8]}", alg, private)


@dataclass
class LoopbackIssuer:
    keys: list[_Key] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    keys_served_at: float | None = None  # time.monotonic() of the last answer to /keys
    _server: ThreadingHTTPServer | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- serving

    def start(self) -> None:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests.append(self.path)
                if self.path.endswith("/.well-known/openid-configuration"):
                    body: dict[str, Any] = {
                        "issuer": issuer.url,
                        "jwks_uri": f"{issuer.url}/keys",
                        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                    }
                elif self.path == "/keys":
                    body = {"keys": [k.jwk() for k in issuer.keys]}
                    issuer.keys_served_at = time.monotonic()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def down(self) -> None:
        """Stop answering (connections are refused); ``start()`` brings it back on the same port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_until_keys_may_be_fetched(self, interval: float) -> None:
        """Sleep until ``interval`` seconds (a server's rate limit on fetching keys again for an unknown
        kid) have passed since this issuer last served its keys (monotonic clocks are system-wide)."""
        if self.keys_served_at is not None:
            time.sleep(max(0.0, self.keys_served_at + interval + 0.2 - time.monotonic()))

    # -- keys and tokens

    def rotate(self, alg: str = "RS256") -> _Key:
        """Replace every key by a new one (a new kid)."""
        self.keys = [new_key(alg)]
        return self.keys[0]

    def token(
        self,
        claims: dict[str, Any],
        *,
        key: _Key | None = None,
        audience: str | None = "https://nuget.test",
        lifetime: int = 300,
        issued: float | None = None,
        drop: tuple[str, ...] = (),
        headers: dict[str, Any] | None = None,
    ) -> str:
        key = key or self.keys[0]
        now = int(issued if issued is not None else time.time())
        payload: dict[str, Any] = {
            "iss": self.url,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        for name in drop:
            payload.pop(name, None)
        return jwt.encode(
            payload, key.private, algorithm=key.alg, headers={"kid": key.kid, **(headers or {})}
        )


def github_claims(**overrides: Any) -> dict[str, Any]:
    """Claims as GitHub Actions puts them in a job's token (ids as strings, as GitHub sends them)."""
    claims = {
        "sub": "repo:contoso/lib:environment:release",
        "repository": "contoso/lib",
        "repository_owner": "contoso",
        "repository_owner_id": "1001",
        "repository_id": "2002",
        "event_name": "push",
        "ref": "refs/tags/v1.0.0",
        "workflow_ref": "contoso/lib/.github/workflows/release.yml@refs/tags/v1.0.0",
        "job_workflow_ref": "contoso/lib/.github/workflows/release.yml@refs/tags/v1.0.0",
        "environment": "release",
        "run_id": "777",
        "run_attempt": "1",
    }
    claims.update(overrides)
    return claims


def gitlab_claims(**overrides: Any) -> dict[str, Any]:
    claims = {
        "sub": "project_path:contoso/libs/widgets:ref_type:tag:ref:v2.0.0",
        "namespace_id": "31",
        "namespace_path": "contoso/libs",
        "project_id": "42",
        "project_path": "contoso/libs/widgets",
        "pipeline_id": "9001",
        "pipeline_source": "push",
        "job_id": "9002",
        "ref": "v2.0.0",
        "ref_type": "tag",
    }
    claims.update(overrides)
    return claims


@contextlib.contextmanager
def running_issuer(alg: str = "RS256") -> Iterator[LoopbackIssuer]:
    issuer = LoopbackIssuer(keys=[new_key(alg)])
    issuer.start()
    try:
        yield issuer
    finally:
        issuer.down()
