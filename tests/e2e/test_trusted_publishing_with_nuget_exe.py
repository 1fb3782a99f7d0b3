"""End to end: trusted publishing with a real ``nugat serve``, a real OIDC issuer on 127.0.0.1 and the real
nuget.exe 4.7.1. The CI job is played by this test: it asks the issuer for a token and exchanges it as the
``NuGet/login`` action does (same headers and body), then pushes with the minted key. Policies and
"trusted publishing only" are set through the ``nugat`` command, as an operator would."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.test_orgs_with_nuget_exe import assert_pushed, assert_refused
from nugat import oidc
from support.nugetexe import NuGetClient
from support.oidc_issuer import LoopbackIssuer, github_claims, running_issuer
from support.server import SECRETS, NugatServer, ensure_user, running_server, user_key

pytestmark = pytest.mark.e2e

AUD = "https://nuget.test"
BuildPackage = Callable[..., Path]


@pytest.fixture(scope="module")
def issuer() -> Iterator[LoopbackIssuer]:
    with running_issuer() as found:
        yield found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, issuer: LoopbackIssuer) -> Iterator[NugatServer]:
    env = {"NUGAT_OIDC_ISSUERS": f"github={issuer.url}", "NUGAT_OIDC_AUDIENCE": AUD}
    with running_server(tmp_path_factory.mktemp("trusted"), extra_env=env) as srv:
        yield srv


def login(server: NugatServer, token: str, user: str = "alice") -> httpx.Response:
    """What ``NuGet/login`` sends to its ``token-service-url``."""
    SECRETS.append(token)  # the leak check (tests/hostile) looks for it in every log and file
    response = httpx.post(
        f"{server.url}/api/v2/token",
        content=json.dumps({"username": user, "tokenType": "ApiKey"}),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "User-Agent": "nuget/login-action",
        },
        timeout=30,
    )
    if response.status_code == 200:
        SECRETS.append(response.json()["apiKey"])
    return response


def minted(server: NugatServer, issuer: LoopbackIssuer, **claims: Any) -> str:
    response = login(server, issuer.token(github_claims(**claims)))
    assert response.status_code == 200, response.text
    return str(response.json()["apiKey"])


def audit(server: NugatServer, package: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(
        server.cli("audit", "--package", package, "--json", check=True).stdout
    )
    return events[::-1]


def test_a_ci_job_publishes_with_a_minted_key(
    server: NugatServer, issuer: LoopbackIssuer, nuget: NuGetClient, build_package: BuildPackage
) -> None:
    ensure_user(server, "alice")
    policy = json.loads(
        server.cli(
            "policy",
            "create",
            "--user",
            "alice",
            "--repository",
            "contoso/lib",
            "--workflow",
            "release.yml",
            "--scope",
            "push",
            "--glob",
            "Contoso.*",
            "--json",
            check=True,
        ).stdout
    )
    assert policy["criteria"] == {"owner": "contoso", "repository": "lib", "workflow": "release.yml"}
    token = issuer.token(github_claims())
    response = login(server, token)
    assert response.status_code == 200, response.text
    assert_pushed(
        nuget.push(build_package("Contoso.Trusted", "1.0.0"), response.json()["apiKey"], server.source)
    )

    # the same token again is refused: each token buys one key
    replay = login(server, token)
    assert replay.status_code == 401 and "already exchanged" in replay.json()["error"]

    # trusted publishing only: a long-lived key is refused, a key minted for the next run pushes
    long_lived = user_key(server, "alice", ["push"], ["Contoso.*"])
    server.cli("package", "trusted-only", "Contoso.Trusted", "on", check=True)
    result = nuget.push(build_package("Contoso.Trusted", "1.1.0"), long_lived, server.source)
    assert_refused(result, 403, "Contoso.Trusted accepts only trusted publishing")
    assert_pushed(
        nuget.push(
            build_package("Contoso.Trusted", "1.1.0"), minted(server, issuer, run_id="778"), server.source
        )
    )

    # the audit tells which credential published each version
    pushes = {
        e["version"]: e["detail"]["credential"]
        for e in audit(server, "Contoso.Trusted")
        if e["action"] == "package.push"
    }
    assert pushes == {
        "1.0.0": "trusted publishing: GitHub Actions contoso/lib .github/workflows/release.yml run 777",
        "1.1.0": "trusted publishing: GitHub Actions contoso/lib .github/workflows/release.yml run 778",
    }

    # deleting the policy kills its live keys at once
    key = minted(server, issuer, run_id="779")
    server.cli("policy", "delete", str(policy["id"]), check=True)
    result = nuget.push(build_package("Contoso.Trusted", "1.2.0"), key, server.source)
    assert (
        result.returncode != 0
        and "1.2.0" not in server.get("/v3/flatcontainer/contoso.trusted/index.json").text
    )


def test_the_issuer_down_refuses_with_503(server: NugatServer, issuer: LoopbackIssuer) -> None:
    ensure_user(server, "alice")
    server.cli(
        "policy",
        "create",
        "--user",
        "alice",
        "--repository",
        "contoso/down",
        "--workflow",
        "release.yml",
        "--scope",
        "push",
        "--glob",
        "Contoso.Down",
        check=True,
    )
    issuer.rotate()  # a key the server has not fetched yet
    token = issuer.token(
        github_claims(
            repository="contoso/down",
            job_workflow_ref="contoso/down/.github/workflows/release.yml@refs/heads/main",
        )
    )
    # The server fetches keys again for an unknown kid at most every REFRESH_INTERVAL: sooner, it refuses
    # the token (401) without asking the issuer, so the wait makes it ask (the tests before ran quickly).
    issuer.wait_until_keys_may_be_fetched(oidc.REFRESH_INTERVAL)
    issuer.down()
    try:
        response = login(server, token)
    finally:
        issuer.start()
    assert response.status_code == 503, response.text
    assert "could not be reached" in response.json()["error"]
