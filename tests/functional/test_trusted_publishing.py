"""Trusted publishing over HTTP, in process, against a real OIDC issuer on 127.0.0.1: the token endpoint's
contract, every refusal, replay on two processes (SQLite and PostgreSQL), first-use binding, expiry, key
rotation, an issuer down, policy edits killing keys, "trusted publishing only" and the audit trail."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

import nugat.clock
from functional.test_feed_http import nupkg, push
from nugat import oidc
from nugat.app import create_app
from nugat.authz import OPERATOR
from nugat.cli import main
from nugat.clock import utcnow
from nugat.core import Core
from nugat.services import KeyRefused
from nugat.services.trusted import PolicySettings
from nugat.settings import Settings
from support.oidc_issuer import LoopbackIssuer, github_claims, gitlab_claims, running_issuer
from support.server import postgres_database

AUD = "https://nuget.test"
RELEASE = PolicySettings(
    criteria={"owner": "contoso", "repository": "lib", "workflow": "release.yml"},
    scopes=["push"],
    globs=["Contoso.*"],
)


@dataclass
class Feed:
    client: TestClient
    core: Core
    issuer: LoopbackIssuer
    settings: Settings

    def mint(self, token: str, username: str = "alice", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "User-Agent": "nuget/login-action"}
        headers.update(kwargs.pop("headers", {}))
        return self.client.post(
            "/api/v2/token",
            json=kwargs.pop("json", {"username": username, "tokenType": "ApiKey"}),
            headers=headers,
        )

    def key(self, **claims: Any) -> str:
        response = self.mint(self.issuer.token(github_claims(**claims)))
        assert response.status_code == 200, response.text
        return str(response.json()["apiKey"])

    def events(self, action: str) -> list[Any]:
        return [e for e in self.core.audit.events() if e.action == action]


@contextlib.contextmanager
def make_feed(tmp_path: Path, issuer: LoopbackIssuer, database_url: str | None = None) -> Iterator[Feed]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        oidc_issuers=f"github={issuer.url}",
        oidc_audience=AUD,
        secret_key="one secret for every process of a deployment",
    )
    core = Core(settings)
    core.db.upgrade()
    if not core.accounts.users():
        core.accounts.create_user("alice", "alice@example.test", None)
    try:
        with TestClient(create_app(settings), base_url="http://feed.test") as client:
            yield Feed(client, core, issuer, settings)
    finally:
        core.close()


@contextlib.contextmanager
def shifted(delta: timedelta) -> Iterator[None]:
    """Every nugat module reads a clock ``delta`` ahead inside the block (the token's own times, checked
    by PyJWT against the real clock, do not move)."""
    real = nugat.clock.utcnow
    with pytest.MonkeyPatch.context() as patch:
        for name, module in list(sys.modules.items()):
            if name.startswith("nugat") and getattr(module, "utcnow", None) is real:
                patch.setattr(module, "utcnow", lambda: real() + delta)
        yield


@pytest.fixture
def issuer() -> Iterator[LoopbackIssuer]:
    with running_issuer() as found:
        yield found


@pytest.fixture
def feed(tmp_path: Path, issuer: LoopbackIssuer) -> Iterator[Feed]:
    with make_feed(tmp_path, issuer) as made:
        made.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)
        yield made


# The contract -------------------------------------------------------------------------------------------


def test_a_matching_token_mints_a_key_that_pushes(feed: Feed) -> None:
    response = feed.mint(feed.issuer.token(github_claims()))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"tokenType", "expires", "apiKey"}
    assert body["tokenType"] == "ApiKey"
    assert body["apiKey"].startswith("nugat_")
    assert response.headers["cache-control"] == "no-store"
    minted = feed.core.trusted.policies()[0].live_keys
    assert len(minted) == 1 and body["expires"] == minted[0].expires.isoformat() + "Z"
    assert timedelta(minutes=14, seconds=55) <= minted[0].expires - utcnow() <= timedelta(minutes=15)
    assert push(feed.client, body["apiKey"], nupkg("Contoso.Lib", "1.0.0")) == 201
    assert push(feed.client, body["apiKey"], nupkg("Other.Lib", "1.0.0")) == 403  # the policy's glob


def test_the_first_spelling_of_the_contract_is_answered_in_kind(feed: Feed) -> None:
    response = feed.mint(
        feed.issuer.token(github_claims()), json={"username": "alice", "token_type": "api_key"}
    )
    assert response.status_code == 200
    assert set(response.json()) == {"token_type", "expires", "api_key"}


def test_the_endpoint_is_not_in_the_service_index(feed: Feed) -> None:
    assert "token" not in feed.client.get("/v3/index.json").text


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        ({"Authorization": ""}, None, 401, "Authorization header must start with 'Bearer '"),
        ({"Authorization": "Basic abc"}, None, 401, "must start with 'Bearer '"),
        ({"Authorization": "Bearer "}, None, 401, "bearer token is missing"),
        ({"Content-Type": "text/plain"}, None, 415, "Content-Type of 'application/json'"),
        ({"User-Agent": ""}, None, 400, "A User-Agent header is required"),
        ({}, {"tokenType": "ApiKey"}, 400, "username property"),
        ({}, {"username": "alice", "tokenType": "Password"}, 400, "must be 'ApiKey'"),
        ({}, {"username": "alice"}, 400, "must be 'ApiKey'"),
        ({}, ["alice"], 400, "must be a JSON object"),
    ],
)
def test_malformed_requests_are_refused_with_the_reason(
    feed: Feed, headers: dict[str, str], body: Any, status: int, message: str
) -> None:
    token = feed.issuer.token(github_claims())
    sent = {"Authorization": f"Bearer {token}", "User-Agent": "test", "Content-Type": "application/json"}
    sent.update(headers)
    payload = json.dumps(body if body is not None else {"username": "alice", "tokenType": "ApiKey"})
    response = feed.client.post("/api/v2/token", content=payload, headers=sent)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert message in response.headers["x-nuget-warning"]
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    assert not feed.core.trusted.policies()[0].live_keys


def test_a_missing_authorization_header_and_a_session_cookie_are_refused(feed: Feed) -> None:
    response = feed.client.post("/api/v2/token", json={"username": "alice", "tokenType": "ApiKey"})
    assert response.status_code == 401 and "Authorization header is missing" in response.json()["error"]
    feed.client.cookies.set("nugat_session", "x")
    response = feed.mint(feed.issuer.token(github_claims()))
    assert response.status_code == 401 and "Only Bearer token authentication" in response.json()["error"]


def test_without_issuers_the_endpoint_says_it_is_not_enabled(tmp_path: Path, issuer: LoopbackIssuer) -> None:
    settings = Settings(data_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/api/v2/token",
            json={"username": "alice", "tokenType": "ApiKey"},
            headers={"Authorization": f"Bearer {issuer.token(github_claims())}", "User-Agent": "t"},
        )
    assert response.status_code == 404
    assert "not enabled" in response.json()["error"]


# Refusals -----------------------------------------------------------------------------------------------


def refusal(response: httpx.Response, status: int = 401) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["error"])


def test_a_token_of_an_issuer_not_configured_is_refused(feed: Feed) -> None:
    with running_issuer() as other:
        assert "does not trust that issuer" in refusal(feed.mint(other.token(github_claims())))


def test_each_check_of_the_token_is_enforced_at_the_endpoint(feed: Feed) -> None:
    tok = feed.issuer.token
    assert "audience is not" in refusal(feed.mint(tok(github_claims(), audience="https://other.test")))
    assert "has expired" in refusal(feed.mint(tok(github_claims(), issued=time.time() - 900)))
    assert "no repository_id claim" in refusal(feed.mint(tok(github_claims(), drop=("repository_id",))))
    assert "workflow_run workflows are refused" in refusal(
        feed.mint(tok(github_claims(event_name="workflow_run")))
    )


def test_a_token_matching_no_policy_is_refused_and_same_repository_reasons_are_told(feed: Feed) -> None:
    other_repo = feed.mint(feed.issuer.token(github_claims(repository="evil/lib", repository_owner="evil")))
    assert refusal(other_repo) == "No trusted publishing policy of 'alice' matches this token"
    ci = "contoso/lib/.github/workflows/ci.yml@refs/heads/main"
    message = refusal(feed.mint(feed.issuer.token(github_claims(job_workflow_ref=ci))))
    assert "workflow .github/workflows/ci.yml is not the policy's .github/workflows/release.yml" in message
    assert "No trusted publishing policy of 'nobody'" in refusal(
        feed.mint(feed.issuer.token(github_claims()), "nobody")
    )


def test_the_policy_owners_name_works_as_the_username_too(tmp_path: Path, issuer: LoopbackIssuer) -> None:
    with make_feed(tmp_path, issuer) as feed:
        feed.core.orgs.create("Contoso", "alice")
        feed.core.trusted.create_policy("alice", "Contoso", "github", None, RELEASE)
        key = str(feed.mint(issuer.token(github_claims()), "Contoso").json()["apiKey"])
        assert push(feed.client, key, nupkg("Contoso.Lib", "1.0.0")) == 201
        assert [o.name for o in feed.core.owners.of_package("Contoso.Lib")] == ["Contoso"]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_token_is_exchanged_once_on_every_process(
    tmp_path: Path, issuer: LoopbackIssuer, database: str
) -> None:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if database == "postgres" else None
        first = stack.enter_context(
            make_feed(tmp_path / "one", issuer, url or f"sqlite:///{tmp_path / 'db'}")
        )
        first.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)
        second = stack.enter_context(
            make_feed(tmp_path / "two", issuer, url or f"sqlite:///{tmp_path / 'db'}")
        )
        token = issuer.token(github_claims())
        key = first.mint(token).json()["apiKey"]
        assert push(second.client, key, nupkg("Contoso.Lib", "1.0.0")) == 201  # a normal key everywhere
        assert "already exchanged" in refusal(second.mint(token))
        assert "already exchanged" in refusal(first.mint(token))
        assert len(first.core.trusted.policies()[0].live_keys) == 1


def test_first_use_binds_the_policy_to_the_repository_ids(feed: Feed) -> None:
    feed.key()
    policy = feed.core.trusted.policies()[0]
    assert policy.bound and policy.validate_by is None
    [bind] = feed.events("trusted.policy_bind")
    assert (bind.detail["owner_id"], bind.detail["repository_id"]) == ("1001", "2002")
    resurrected = feed.mint(feed.issuer.token(github_claims(repository_id="9999")))
    assert "deleted and made again" in refusal(resurrected)
    feed.key()  # the same repository still mints


def test_an_unused_policy_expires_after_seven_days_and_saving_renews_it(feed: Feed) -> None:
    with shifted(timedelta(days=7, minutes=1)):
        assert "not used within 7 days" in refusal(feed.mint(feed.issuer.token(github_claims())))
        policy = feed.core.trusted.policies()[0]
        assert policy.expired
        feed.core.trusted.edit_policy("alice", policy.id, RELEASE)
        feed.key()


def test_a_creator_no_longer_admin_of_the_org_cannot_mint(tmp_path: Path, issuer: LoopbackIssuer) -> None:
    with make_feed(tmp_path, issuer) as feed:
        feed.core.accounts.create_user("bob", "bob@example.test", None)
        feed.core.orgs.create("Contoso", "alice")
        feed.core.orgs.add_member("Contoso", "bob", "admin")
        feed.core.trusted.create_policy("bob", "Contoso", "github", None, RELEASE)
        assert feed.mint(issuer.token(github_claims()), "bob").status_code == 200
        feed.core.orgs.change_role("Contoso", "bob", "collaborator")
        assert "bob is no longer an administrator of Contoso" in refusal(
            feed.mint(issuer.token(github_claims()), "bob"), 403
        )
        with pytest.raises(Exception, match="only Contoso itself or an administrator"):
            feed.core.trusted.create_policy("bob", "Contoso", "github", None, RELEASE)


def test_an_issuer_that_is_down_gives_503_never_a_key(feed: Feed) -> None:
    token = feed.issuer.token(github_claims())
    feed.issuer.down()
    response = feed.mint(token)
    assert "could not be reached" in refusal(response, 503)
    assert response.headers["retry-after"] == "30"
    assert not feed.core.trusted.policies()[0].live_keys
    [event] = feed.events("trusted.refused")
    assert event.detail["issuer"] == feed.issuer.url


def test_a_key_rotation_at_the_issuer_is_followed(feed: Feed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oidc, "REFRESH_INTERVAL", 0)
    feed.key()
    new = feed.issuer.rotate("ES256")
    response = feed.mint(feed.issuer.token(github_claims(), key=new))
    assert response.status_code == 200, response.text


# Keys ---------------------------------------------------------------------------------------------------


def test_minted_keys_expire_after_the_policys_minutes(feed: Feed) -> None:
    key = feed.key()
    with shifted(timedelta(minutes=15, seconds=1)):
        response = feed.client.put(
            "/api/v2/package/",
            files={"package": ("p.nupkg", nupkg("Contoso.Lib", "1.0.0"), "application/octet-stream")},
            headers={"X-NuGet-ApiKey": key},
        )
    assert response.status_code == 403
    assert "expired" in response.headers["x-nuget-warning"]


def test_key_lifetimes_are_one_to_sixty_minutes(feed: Feed) -> None:
    policy = feed.core.trusted.policies()[0]
    for minutes in (0, 61):
        with pytest.raises(Exception, match="1 to 60 minutes"):
            feed.core.trusted.edit_policy(
                OPERATOR, policy.id, PolicySettings(**{**vars(RELEASE), "key_minutes": minutes})
            )
    feed.core.trusted.edit_policy(OPERATOR, policy.id, PolicySettings(**{**vars(RELEASE), "key_minutes": 60}))
    key = feed.key()
    [live] = feed.core.trusted.policies()[0].live_keys
    assert timedelta(minutes=59, seconds=55) <= live.expires - utcnow() <= timedelta(minutes=60)
    with shifted(timedelta(minutes=59)):
        assert push(feed.client, key, nupkg("Contoso.Lib", "1.0.0")) == 201
    with shifted(timedelta(minutes=61)):
        assert push(feed.client, key, nupkg("Contoso.Lib", "1.1.0")) == 403


def test_editing_or_deleting_a_policy_kills_its_live_keys(feed: Feed) -> None:
    key = feed.key()
    policy = feed.core.trusted.policies()[0]
    feed.core.trusted.edit_policy("alice", policy.id, RELEASE)
    assert push(feed.client, key, nupkg("Contoso.Lib", "1.0.0")) == 403
    [edit] = feed.events("trusted.policy_edit")
    assert len(edit.detail["keys_deleted"]) == 1
    key = feed.key()
    feed.core.trusted.delete_policy("alice", policy.id)
    assert push(feed.client, key, nupkg("Contoso.Lib", "1.0.0")) == 403
    with pytest.raises(KeyRefused):
        feed.core.accounts.verify_key(key, "127.0.0.1")


def test_minted_keys_are_not_on_the_api_keys_list(feed: Feed) -> None:
    feed.key()
    assert feed.core.accounts.list_keys("alice") == []


# Trusted publishing only, and the audit trail -------------------------------------------------------


def test_a_trusted_only_package_refuses_long_lived_keys(feed: Feed) -> None:
    _, long_lived = feed.core.accounts.create_key("alice", "ci", ["push"], ["*"], [], 30)
    assert push(feed.client, long_lived, nupkg("Contoso.Lib", "1.0.0")) == 201
    feed.core.trusted.set_trusted_only("alice", "Contoso.Lib", True)
    response = feed.client.put(
        "/api/v2/package/",
        files={"package": ("p.nupkg", nupkg("Contoso.Lib", "1.1.0"), "application/octet-stream")},
        headers={"X-NuGet-ApiKey": long_lived},
    )
    assert response.status_code == 403
    assert "accepts only trusted publishing" in response.headers["x-nuget-warning"]
    assert push(feed.client, feed.key(), nupkg("Contoso.Lib", "1.1.0")) == 201
    feed.core.trusted.set_trusted_only("alice", "Contoso.Lib", False)
    assert push(feed.client, long_lived, nupkg("Contoso.Lib", "1.2.0")) == 201


def test_only_owners_switch_trusted_only(feed: Feed) -> None:
    feed.core.accounts.create_user("bob", "bob@example.test", None)
    assert push(feed.client, feed.key(), nupkg("Contoso.Lib", "1.0.0")) == 201
    with pytest.raises(Exception, match=r"bob is not an owner of Contoso\.Lib"):
        feed.core.trusted.set_trusted_only("bob", "Contoso.Lib", True)


def test_the_audit_tells_which_credential_published_each_version(feed: Feed) -> None:
    _, long_lived = feed.core.accounts.create_key("alice", "laptop", ["push"], ["*"], [], 30)
    assert push(feed.client, long_lived, nupkg("Contoso.Lib", "1.0.0")) == 201
    assert push(feed.client, feed.key(), nupkg("Contoso.Lib", "1.1.0")) == 201
    pushes = {e.version: e.detail["credential"] for e in feed.events("package.push")}
    assert pushes == {
        "1.0.0": "API key laptop",
        "1.1.0": "trusted publishing: GitHub Actions contoso/lib .github/workflows/release.yml run 777",
    }
    [mint] = feed.events("trusted.mint")
    assert mint.detail["repository"] == "contoso/lib" and mint.detail["run"] == "777"
    assert mint.actor == "alice" and mint.detail["policy"] == "contoso/lib release.yml"


def test_every_refusal_is_audited_with_the_job(feed: Feed) -> None:
    ci = "contoso/lib/.github/workflows/ci.yml@refs/heads/main"
    feed.mint(feed.issuer.token(github_claims(job_workflow_ref=ci, run_id="31")))
    [event] = feed.events("trusted.refused")
    assert event.account == "alice"
    assert (
        event.detail["run"] == "31" and event.detail["workflow"] == ".github/workflows/ci.yml@refs/heads/main"
    )
    assert "ci.yml is not the policy's" in event.detail["reason"]


# GitLab ---------------------------------------------------------------------------------------------


def test_gitlab_jobs_mint_with_a_gitlab_policy(tmp_path: Path) -> None:
    with running_issuer("ES256") as gitlab:
        settings = Settings(data_dir=tmp_path, oidc_issuers=f"gitlab={gitlab.url}", oidc_audience=AUD)
        core = Core(settings)
        core.db.upgrade()
        core.accounts.create_user("alice", "alice@example.test", None)
        wanted = {"owner": "contoso/libs", "repository": "widgets", "ref": "v2.0.0"}
        core.trusted.create_policy("alice", "alice", "gitlab", None, PolicySettings(wanted, ["push"], ["*"]))
        with TestClient(create_app(settings)) as client:
            feed = Feed(client, core, gitlab, settings)
            assert feed.mint(gitlab.token(gitlab_claims())).status_code == 200
            assert "ref main is not the policy's v2.0.0" in refusal(
                feed.mint(gitlab.token(gitlab_claims(ref="main")))
            )
            moved = feed.mint(gitlab.token(gitlab_claims(project_id="43")))
            assert "deleted and made again" in refusal(moved)
        core.close()


def test_refused_exchanges_from_one_address_are_throttled(feed: Feed) -> None:
    for _ in range(30):
        assert feed.mint("not-a-jwt").status_code == 401
    response = feed.mint(feed.issuer.token(github_claims()))
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert "Too many refused token exchanges" in response.json()["error"]
    assert len(feed.events("trusted.refused")) == 30


# The command line -----------------------------------------------------------------------------------


def test_policies_and_trusted_only_from_the_command_line(
    feed: Feed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NUGAT_OIDC_ISSUERS", f"github={feed.issuer.url}")
    monkeypatch.setenv("NUGAT_OIDC_AUDIENCE", AUD)
    where = ["--data-dir", str(feed.settings.data_dir)]
    args = ["--repository", "contoso/tools", "--workflow", ".github/workflows/ship.yaml", "--scope", "push"]
    assert (
        main(["policy", "create", *where, "--user", "alice", *args, "--glob", "Contoso.Tools", "--json"]) == 0
    )
    created = json.loads(capsys.readouterr().out)
    assert created["criteria"] == {"owner": "contoso", "repository": "tools", "workflow": "ship.yaml"}
    assert (created["key_minutes"], created["bound"], created["owner"]) == (15, False, "alice")
    assert main(["policy", "list", *where, "--user", "alice"]) == 0
    assert "contoso/tools ship.yaml" in capsys.readouterr().out
    edited = [*args, "--glob", "Contoso.*", "--key-minutes", "30", "--environment", "prod", "--json"]
    assert main(["policy", "edit", *where, str(created["id"]), *edited]) == 0
    assert json.loads(capsys.readouterr().out)["criteria"]["environment"] == "prod"
    assert (
        main(["policy", "edit", *where, str(created["id"]), *args, "--glob", "*", "--key-minutes", "61"]) == 1
    )
    assert "1 to 60 minutes" in capsys.readouterr().err
    assert main(["policy", "delete", *where, str(created["id"])]) == 0
    assert [p.name for p in feed.core.trusted.policies()] == ["contoso/lib release.yml"]
    assert push(feed.client, feed.key(), nupkg("Contoso.Lib", "1.0.0")) == 201
    assert main(["package", "trusted-only", *where, "Contoso.Lib", "on"]) == 0
    assert feed.core.trusted.trusted_only("Contoso.Lib")


def test_a_wrong_issuer_configuration_stops_the_server_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NUGAT_OIDC_ISSUERS", "github=http://token.example.com")
    assert main(["serve", "--data-dir", str(tmp_path)]) == 2
    assert "must be https" in capsys.readouterr().err
