"""The Trusted Publishing pages over HTTP: policies made, edited and deleted by owners and org admins,
"trusted publishing only" switched by owners, and the Activity page naming the CI run of a push."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from nugat.keys import Scope
from support.oidc_issuer import LoopbackIssuer, github_claims, running_issuer
from web.helpers import MakeSite, Site, field_errors, nupkg, page_text

AUD = "https://nuget.test"
FORM = {
    "kind": "github",
    "package_owner": "alice",
    "owner": "contoso",
    "repository": "lib",
    "workflow": "release.yml",
    "environment": "",
    "scope-push": "on",
    "glob": "Contoso.*",
    "key_minutes": "15",
}


@pytest.fixture
def issuer() -> Iterator[LoopbackIssuer]:
    with running_issuer() as found:
        yield found


@pytest.fixture
def tp(make_site: MakeSite, issuer: LoopbackIssuer) -> Site:
    site = make_site(oidc_issuers=f"github={issuer.url}", oidc_audience=AUD)
    site.sign_in("alice")
    return site


def mint(site: Site, issuer: LoopbackIssuer, user: str = "alice", **claims: str) -> str:
    ci = TestClient(site.client.app, base_url="http://127.0.0.1")  # a CI job: no session cookie
    response = ci.post(
        "/api/v2/token",
        json={"username": user, "tokenType": "ApiKey"},
        headers={"Authorization": f"Bearer {issuer.token(github_claims(**claims))}", "User-Agent": "t"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["apiKey"])


def test_without_issuers_the_page_says_so(alice: Site) -> None:
    text = page_text(alice.get("/account/trusted-publishing").text)
    assert "Trusted publishing is not enabled on this server" in text


def test_an_owner_adds_a_policy_and_sees_how_to_use_it(tp: Site, issuer: LoopbackIssuer) -> None:
    page = page_text(tp.get("/account/trusted-publishing").text)
    assert "http://127.0.0.1/api/v2/token" in page and AUD in page
    response = tp.submit("/account/trusted-publishing/new?kind=github", "/account/trusted-publishing", FORM)
    assert response.status_code == 303
    listing = page_text(tp.get("/account/trusted-publishing?done=created").text)
    assert "The policy was saved" in listing
    assert "contoso/lib release.yml" in listing and "Workflow file release.yml" in listing
    assert "Not used yet: use it before" in listing
    mint(tp, issuer)
    listing = page_text(tp.get("/account/trusted-publishing").text)
    assert "Bound to the repository it was first used by" in listing
    assert "trusted publishing: GitHub Actions contoso/lib .github/workflows/release.yml run 777" in listing


def test_the_policy_form_offers_every_scope_and_keeps_the_chosen_ones(tp: Site) -> None:
    html = tp.get("/account/trusted-publishing/new?kind=github").text
    for scope in Scope:
        box = f'id="scope-{scope.value}" name="scope-{scope.value}" value="on"'
        assert box in html and f'<label for="scope-{scope.value}">{scope.label}</label>' in html
    assert 'name="scope-push" value="on" checked' in html  # the default, as for a key
    chosen = {f"scope-{scope.value}": "on" for scope in Scope}
    tp.submit(
        "/account/trusted-publishing/new?kind=github", "/account/trusted-publishing", {**FORM, **chosen}
    )
    kept = [scope.value for scope in Scope if scope is not Scope.PUSH_VERSION]  # push allows new versions
    assert tp.core.trusted.policies()[0].scopes == kept


def test_a_bad_policy_form_says_why(tp: Site) -> None:
    response = tp.submit(
        "/account/trusted-publishing/new?kind=github",
        "/account/trusted-publishing",
        {**FORM, "workflow": "../x"},
    )
    assert response.status_code == 400
    assert "Workflow: give a file name in .github/workflows" in page_text(response.text)
    assert 'value="contoso"' in response.text  # what was typed is kept
    assert not field_errors(response.text)


def test_a_policy_for_an_org_needs_its_admin(tp: Site) -> None:
    tp.core.orgs.create("Contoso", "alice")
    bob = tp.browser("bob")
    tp.core.orgs.add_member("Contoso", "bob", "collaborator")
    response = bob.submit(
        "/account/trusted-publishing/new?kind=github",
        "/account/trusted-publishing",
        {**FORM, "package_owner": "Contoso"},
    )
    assert response.status_code == 403
    assert "only Contoso itself or an administrator" in page_text(response.text)
    response = tp.submit(
        "/account/trusted-publishing/new?kind=github",
        "/account/trusted-publishing",
        {**FORM, "package_owner": "Contoso"},
    )
    assert response.status_code == 303
    assert "made by alice" not in page_text(bob.get("/account/trusted-publishing").text)
    assert "Contoso" in page_text(tp.get("/account/trusted-publishing").text)


def test_editing_kills_live_keys_and_deleting_removes_the_policy(tp: Site, issuer: LoopbackIssuer) -> None:
    tp.submit("/account/trusted-publishing/new?kind=github", "/account/trusted-publishing", FORM)
    [policy] = tp.core.trusted.policies()
    key = mint(tp, issuer)
    edit = f"/account/trusted-publishing/{policy.id}/edit"
    response = tp.submit(edit, edit, {**FORM, "environment": "release"}, follow=True)
    assert "the keys it had minted were deleted" in page_text(response.text)
    assert tp.push(key, nupkg("Contoso.Lib", "1.0.0")) == 403
    assert tp.core.trusted.policies()[0].criteria.environment == "release"
    delete = f"/account/trusted-publishing/{policy.id}/delete"
    assert "Delete policy" in page_text(tp.get(delete).text)
    response = tp.submit(delete, delete, {}, follow=True)
    assert "The policy and the keys it had minted were deleted" in page_text(response.text)
    assert tp.core.trusted.policies() == []


def test_another_users_policy_is_not_found(tp: Site) -> None:
    tp.submit("/account/trusted-publishing/new?kind=github", "/account/trusted-publishing", FORM)
    [policy] = tp.core.trusted.policies()
    bob = tp.browser("bob")
    assert bob.get(f"/account/trusted-publishing/{policy.id}/edit").status_code == 404
    delete = f"/account/trusted-publishing/{policy.id}/delete"
    response = bob.client.post(delete, data={"csrf": "x"})
    assert response.status_code == 403  # no valid CSRF token
    assert len(tp.core.trusted.policies()) == 1


def test_trusted_only_is_switched_on_the_page_and_shown_in_activity(tp: Site, issuer: LoopbackIssuer) -> None:
    tp.submit("/account/trusted-publishing/new?kind=github", "/account/trusted-publishing", FORM)
    _, long_lived = tp.create_key(name="laptop")
    assert tp.push(long_lived, nupkg("Contoso.Lib", "1.0.0")) == 201
    response = tp.submit(
        "/account/trusted-publishing",
        "/account/trusted-publishing/packages/Contoso.Lib",
        {"trusted_only": "on"},
        follow=True,
    )
    assert "The package now accepts only trusted publishing" in page_text(response.text)
    assert tp.push(long_lived, nupkg("Contoso.Lib", "1.1.0")) == 403
    assert tp.push(mint(tp, issuer), nupkg("Contoso.Lib", "1.1.0")) == 201
    activity = page_text(tp.get("/account/activity?package=Contoso.Lib").text)
    assert (
        "credential: trusted publishing: GitHub Actions contoso/lib .github/workflows/release.yml run 777"
        in activity
    )
    assert "credential: API key laptop" in activity
    assert "package.trusted_only" in activity
    bob = tp.browser("bob")
    response = bob.submit(
        "/account/trusted-publishing",
        "/account/trusted-publishing/packages/Contoso.Lib",
        {"trusted_only": "off"},
    )
    assert response.status_code == 403
