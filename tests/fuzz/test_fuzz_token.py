"""Bounded fuzzing of ``POST /api/v2/token`` against a real loopback issuer: hostile Authorization headers,
content types and bodies, and tokens the issuer really signs with random claims. Never a 5xx, never a
key for a token that matches no policy, and every refusal a JSON ``{"error": …}`` with its reason."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from nugat.app import create_app
from nugat.core import Core
from nugat.services import trusted
from nugat.services.trusted import PolicySettings
from nugat.settings import Settings
from support.oidc_issuer import LoopbackIssuer, github_claims, running_issuer

EXAMPLES = max(50, int(os.environ.get("NUGAT_FUZZ_EXAMPLES", "400")) // 2)  # each signs a token: slower
AUD = "https://nuget.test"

printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | printable,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(printable, inner, max_size=3),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, LoopbackIssuer]]:
    patch = pytest.MonkeyPatch()
    patch.setattr(trusted, "FAILED_LIMIT", 10**9)  # fuzzing is not about the throttle
    with running_issuer() as issuer:
        settings_ = Settings(
            data_dir=tmp_path_factory.mktemp("fuzz-token"),
            oidc_issuers=f"github={issuer.url}",
            oidc_audience=AUD,
        )
        core = Core(settings_)
        core.db.upgrade()
        core.accounts.create_user("alice", "alice@example.test", None)
        wanted = {"owner": "contoso", "repository": "lib", "workflow": "release.yml"}
        core.trusted.create_policy("alice", "alice", "github", None, PolicySettings(wanted, ["push"], ["*"]))
        core.close()
        with TestClient(create_app(settings_), base_url="http://feed.test") as client:
            yield client, issuer
    patch.undo()


@st.composite
def requests(draw: st.DrawFn, issuer: LoopbackIssuer) -> dict[str, Any]:
    names = [*github_claims(), "aud", "exp", "iat", "nbf", "jti"]
    claims = draw(st.dictionaries(st.sampled_from(names), json_values))
    claims["iss"] = draw(st.sampled_from([issuer.url, f"{issuer.url}/", "https://other.test", ""]))
    signed = draw(st.booleans())
    token = issuer.token({**github_claims(repository="evil/x"), **claims}) if signed else draw(printable)
    auth = draw(st.sampled_from(["Bearer {}", "bearer {}", "Basic {}", "{}", "Bearer  {} "])).format(token)
    body = draw(
        st.one_of(
            st.builds(json.dumps, st.fixed_dictionaries({"username": json_values, "tokenType": json_values})),
            st.builds(json.dumps, json_values),
            st.binary(max_size=200),
        )
    )
    headers = {
        "Authorization": auth,
        "Content-Type": draw(
            st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""])
        ),
        "User-Agent": draw(st.sampled_from(["nuget/login-action", "", " "])),
    }
    return {"headers": headers, "content": body if isinstance(body, bytes) else body.encode()}


def test_no_exchange_gets_a_server_error_or_a_key(app: tuple[TestClient, LoopbackIssuer]) -> None:
    client, issuer = app

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(requests(issuer))
    def exchange(request: dict[str, Any]) -> None:
        response = client.post("/api/v2/token", content=request["content"], headers=request["headers"])
        assert response.status_code in (400, 401, 403, 413, 415), (
            f"{response.status_code}: {response.text[:300]}"
        )
        assert isinstance(response.json()["error"], str) and response.json()["error"]

    exchange()
