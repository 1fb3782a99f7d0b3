"""``nugat.oidc``: issuer configuration, signing keys from a real loopback issuer, every token check, and
policy criteria matching (one test per rule)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from nugat import oidc
from support.oidc_issuer import LoopbackIssuer, github_claims, gitlab_claims, new_key, running_issuer

AUD = "https://nuget.test"


@pytest.fixture
def issuer() -> Iterator[LoopbackIssuer]:
    with running_issuer() as found:
        yield found


def cache_of(issuer: LoopbackIssuer, kind: str = oidc.GITHUB, **kwargs: float) -> oidc.KeyCache:
    return oidc.KeyCache(oidc.Issuer(kind, issuer.url), **kwargs)  # type: ignore[arg-type]


def refused(token: str, cache: oidc.KeyCache, audience: str = AUD) -> str:
    with pytest.raises(oidc.BadToken) as caught:
        oidc.identity(cache.issuer.kind, oidc.verify(token, cache, audience))
    return caught.value.message


# Configuration ------------------------------------------------------------------------------------------


def test_issuers_from_the_environment_and_a_toml_file(tmp_path: Path) -> None:
    parsed = oidc.parse_issuers(
        "github=https://token.actions.githubusercontent.com/, gitlab=https://gitlab.example.com "
        "oidc=http://127.0.0.1:8080"
    )
    assert parsed == [
        oidc.Issuer("github", "https://token.actions.githubusercontent.com"),
        oidc.Issuer("gitlab", "https://gitlab.example.com"),
        oidc.Issuer("oidc", "http://127.0.0.1:8080"),
    ]
    config = tmp_path / "oidc.toml"
    config.write_text(
        'audience = "https://nuget.example.com"\n'
        '[[issuers]]\nkind = "github"\nurl = "https://ghe.example.com/_services/token"\n'
    )
    issuers, audience = oidc.load_config(config)
    assert issuers == [oidc.Issuer("github", "https://ghe.example.com/_services/token")]
    assert audience == "https://nuget.example.com"


@pytest.mark.parametrize(
    "spec",
    [
        "github",  # no url
        "jenkins=https://ci.example.com",  # unknown kind
        "github=http://token.example.com",  # plain http off loopback
        "github=https://x.example.com/?a=1",
        "github=https://a.example.com,gitlab=https://a.example.com",  # one url, two kinds
    ],
)
def test_bad_issuer_configuration_is_refused_with_the_reason(spec: str) -> None:
    with pytest.raises(oidc.InvalidIssuers):
        oidc.parse_issuers(spec)


# Keys ------------------------------------------------------------------------------------------------------


def test_keys_come_from_discovery_and_are_cached(issuer: LoopbackIssuer) -> None:
    cache = cache_of(issuer)
    claims = oidc.verify(issuer.token(github_claims()), cache, AUD)
    assert claims["repository"] == "contoso/lib"
    oidc.verify(issuer.token(github_claims()), cache, AUD)
    assert issuer.requests == ["/.well-known/openid-configuration", "/keys"]


def test_es256_tokens_are_checked_too() -> None:
    with running_issuer("ES256") as issuer:
        claims = oidc.verify(issuer.token(github_claims()), cache_of(issuer), AUD)
    assert claims["repository_id"] == "2002"


def test_a_new_kid_after_rotation_fetches_the_keys_again(issuer: LoopbackIssuer) -> None:
    cache = cache_of(issuer, refresh_interval=0)
    oidc.verify(issuer.token(github_claims()), cache, AUD)
    old = issuer.keys[0]
    new = issuer.rotate("ES256")
    assert oidc.verify(issuer.token(github_claims(), key=new), cache, AUD)["repository"] == "contoso/lib"
    assert issuer.requests.count("/keys") == 2
    assert "does not publish" in refused(issuer.token(github_claims(), key=old), cache)


def test_unknown_kids_refetch_at_most_once_per_interval(issuer: LoopbackIssuer) -> None:
    cache = cache_of(issuer, refresh_interval=3600)
    oidc.verify(issuer.token(github_claims()), cache, AUD)
    for _ in range(5):
        refused(issuer.token(github_claims(), key=new_key()), cache)
    assert issuer.requests.count("/keys") == 1


def test_an_issuer_that_is_down_is_unavailable_never_a_pass(issuer: LoopbackIssuer) -> None:
    token = issuer.token(github_claims())
    issuer.down()
    with pytest.raises(oidc.IssuerUnavailable):
        oidc.verify(token, cache_of(issuer), AUD)


def test_a_discovery_document_naming_another_issuer_is_refused(issuer: LoopbackIssuer) -> None:
    other = oidc.KeyCache(oidc.Issuer("github", issuer.url + "/other"))
    with pytest.raises(oidc.IssuerUnavailable, match="another issuer"):
        other.signing_key("x")


# Token checks -----------------------------------------------------------------------------------------


def test_signature_by_a_key_the_issuer_does_not_publish(issuer: LoopbackIssuer) -> None:
    forged = issuer.token(github_claims(), key=new_key(), headers={"kid": issuer.keys[0].kid})
    assert "signature is invalid" in refused(forged, cache_of(issuer))


def test_alg_none_and_hmac_are_refused(issuer: LoopbackIssuer) -> None:
    payload = {"iss": issuer.url, "aud": AUD, "exp": int(time.time()) + 60, "iat": int(time.time())}
    unsigned = jwt.encode(payload, None, algorithm="none", headers={"kid": issuer.keys[0].kid})
    assert "algorithm 'none' is not accepted" in refused(unsigned, cache_of(issuer))
    hmac = jwt.encode(payload, "x" * 32, algorithm="HS256", headers={"kid": issuer.keys[0].kid})
    assert "'HS256' is not accepted" in refused(hmac, cache_of(issuer))


def test_issuer_must_be_the_caches(issuer: LoopbackIssuer) -> None:
    token = issuer.token(github_claims(iss="https://token.actions.githubusercontent.com"))
    assert "issuer does not match" in refused(token, cache_of(issuer))


def test_audience_must_be_the_configured_one(issuer: LoopbackIssuer) -> None:
    assert "audience is not" in refused(
        issuer.token(github_claims(), audience="https://other.test"), cache_of(issuer)
    )
    two = issuer.token(github_claims(aud=[AUD, "https://other.test"]))
    assert "exactly one audience" in refused(two, cache_of(issuer))


def test_expired_tokens_are_refused_beyond_the_leeway(issuer: LoopbackIssuer) -> None:
    old = time.time() - 600
    assert "has expired" in refused(issuer.token(github_claims(), issued=old, lifetime=300), cache_of(issuer))
    within = time.time() - 300 - oidc.LEEWAY + 10
    assert oidc.verify(issuer.token(github_claims(), issued=within, lifetime=300), cache_of(issuer), AUD)


def test_tokens_not_valid_yet_or_issued_in_the_future_are_refused(issuer: LoopbackIssuer) -> None:
    future = time.time() + 600
    assert "not valid yet" in refused(issuer.token(github_claims(), issued=future), cache_of(issuer))
    later = issuer.token(github_claims(), issued=future, drop=("nbf",))
    # PyJWT refuses a future iat itself since 2.10; nugat checks it too, for older ones
    assert re.search("issued in the future|not valid yet", refused(later, cache_of(issuer)))


@pytest.mark.parametrize("claim", ["exp", "iat", "jti"])
def test_standard_claims_are_required(issuer: LoopbackIssuer, claim: str) -> None:
    assert f"no {claim} claim" in refused(issuer.token(github_claims(), drop=(claim,)), cache_of(issuer))


@pytest.mark.parametrize("claim", oidc.REQUIRED[oidc.GITHUB])
def test_github_claims_are_required(issuer: LoopbackIssuer, claim: str) -> None:
    token = issuer.token({k: v for k, v in github_claims().items() if k != claim})
    assert f"no {claim} claim" in refused(token, cache_of(issuer))


@pytest.mark.parametrize("claim", oidc.REQUIRED[oidc.GITLAB])
def test_gitlab_claims_are_required(issuer: LoopbackIssuer, claim: str) -> None:
    token = issuer.token({k: v for k, v in gitlab_claims().items() if k != claim})
    assert f"no {claim} claim" in refused(token, cache_of(issuer, oidc.GITLAB))


@pytest.mark.parametrize("event", ["pull_request_target", "workflow_run"])
def test_pull_request_target_and_workflow_run_are_refused(issuer: LoopbackIssuer, event: str) -> None:
    assert f"{event} workflows are refused" in refused(
        issuer.token(github_claims(event_name=event)), cache_of(issuer)
    )


# Identity and criteria ----------------------------------------------------------------------------------


def job(kind: str = oidc.GITHUB, **claims: object) -> oidc.Identity:
    base = github_claims() if kind == oidc.GITHUB else gitlab_claims()
    full = {"iss": "https://ci.test", "jti": "j", "exp": 1, **base, **claims}
    return oidc.identity(kind, full)


def test_the_workflow_comes_from_job_workflow_ref() -> None:
    found = job(job_workflow_ref="contoso/lib/.github/workflows/release.yml@refs/heads/main")
    assert found.workflow == ".github/workflows/release.yml@refs/heads/main"
    reusable = job(job_workflow_ref="evil/tools/.github/workflows/release.yml@main")
    assert reusable.workflow == ""
    assert (
        found.describe()
        == "trusted publishing: GitHub Actions contoso/lib .github/workflows/release.yml run 777"
    )


GITHUB_POLICY = oidc.criteria(
    oidc.GITHUB, {"owner": "Contoso", "repository": "Lib", "workflow": "release.yml"}
)


def test_github_criteria_match_names_without_case() -> None:
    assert oidc.mismatch(GITHUB_POLICY, job()) is None
    assert "repository other/lib" in str(oidc.mismatch(GITHUB_POLICY, job(repository="other/lib")))
    other_file = job(job_workflow_ref="contoso/lib/.github/workflows/ci.yml@refs/heads/main")
    assert "workflow .github/workflows/ci.yml is not" in str(oidc.mismatch(GITHUB_POLICY, other_file))
    reusable = job(job_workflow_ref="evil/x/.github/workflows/release.yml@main")
    assert "workflow of another repository" in str(oidc.mismatch(GITHUB_POLICY, reusable))


def test_an_environment_in_the_policy_must_be_the_jobs() -> None:
    wanted = oidc.criteria(
        oidc.GITHUB, {"repository": "contoso/lib", "workflow": "release.yml", "environment": "release"}
    )
    assert oidc.mismatch(wanted, job()) is None
    assert "environment staging" in str(oidc.mismatch(wanted, job(environment="staging")))


def test_gitlab_criteria_with_ref_and_environment() -> None:
    wanted = oidc.criteria(
        oidc.GITLAB, {"owner": "contoso/libs", "repository": "contoso/libs/widgets", "ref": "v2.0.0"}
    )
    assert wanted.repository == "widgets"
    assert oidc.mismatch(wanted, job(oidc.GITLAB)) is None
    assert "ref main" in str(oidc.mismatch(wanted, job(oidc.GITLAB, ref="main")))
    assert "repository" in str(oidc.mismatch(wanted, job(oidc.GITLAB, project_path="contoso/libs/other")))


def test_a_gitlab_ref_and_environment_match_exactly() -> None:
    """Git refs and GitLab environments are case-sensitive: a branch ``MAIN`` (which a developer may push
    to, while ``main`` is protected) must not match a policy for ``main``."""
    wanted = oidc.criteria(
        oidc.GITLAB,
        {"owner": "contoso/libs", "repository": "widgets", "ref": "main", "environment": "production"},
    )
    assert oidc.mismatch(wanted, job(oidc.GITLAB, ref="main", environment="production")) is None
    for ref, environment in (("MAIN", "production"), ("Main", "production"), ("main", "Production")):
        assert oidc.mismatch(wanted, job(oidc.GITLAB, ref=ref, environment=environment)) is not None
    # GitHub's environments are case-insensitive: the same name in another case is the same environment
    github = oidc.criteria(
        oidc.GITHUB, {"repository": "contoso/lib", "workflow": "release.yml", "environment": "Release"}
    )
    assert oidc.mismatch(github, job(environment="release")) is None


def test_criteria_fields_are_checked() -> None:
    with pytest.raises(oidc.InvalidCriteria, match="workflow"):
        oidc.criteria(oidc.GITHUB, {"owner": "a", "repository": "b", "workflow": "../x"})
    with pytest.raises(oidc.InvalidCriteria, match="repository owner"):
        oidc.criteria(oidc.GITHUB, {"repository": "b", "workflow": "r.yml"})
    assert (
        oidc.criteria(oidc.GITHUB, {"repository": "a/b", "workflow": ".github/workflows/r.yml"}).workflow
        == "r.yml"
    )


def test_a_bound_policy_matches_only_its_repository_ids() -> None:
    assert oidc.binding_mismatch(None, None, job()) is None
    assert oidc.binding_mismatch("1001", "2002", job()) is None
    resurrected = job(repository_id="9999")
    assert "deleted and made again" in str(oidc.binding_mismatch("1001", "2002", resurrected))
    assert oidc.binding_mismatch("1001", "2002", job(repository_owner_id="5")) is not None
