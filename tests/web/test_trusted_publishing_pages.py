"""The Trusted Publishing pages over HTTP: policies made, edited and deleted by owners and org admins,
"trusted publishing only" switched by owners, and the Activity page naming the CI run of a push."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from nugat.clock import utcnow
from nugat.db.models import WebSession
from nugat.services.trusted import POLICY_SCOPES
from support.oidc_issuer import LoopbackIssuer, github_claims, running_issuer
from web.helpers import PASSWORD, MakeSite, Site, csrf_of, field_errors, nupkg, page_text

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


def test_the_policy_form_offers_the_publishing_scopes_and_keeps_the_chosen_ones(tp: Site) -> None:
    html = tp.get("/account/trusted-publishing/new?kind=github").text
    for scope in POLICY_SCOPES:
        box = f'id="scope-{scope.value}" name="scope-{scope.value}" value="on"'
        assert box in html and f'<label for="scope-{scope.value}">{scope.label}</label>' in html
    assert 'name="scope-read"' not in html  # audit 4: a policy's keys publish, never read
    assert 'name="scope-push" value="on" checked' in html  # the default, as for a key
    chosen = {f"scope-{scope.value}": "on" for scope in POLICY_SCOPES}
    tp.submit(
        "/account/trusted-publishing/new?kind=github", "/account/trusted-publishing", {**FORM, **chosen}
    )
    assert tp.core.trusted.policies()[0].scopes == ["push", "unlist"]  # push allows new versions
    crafted = tp.submit(
        "/account/trusted-publishing/new?kind=github",
        "/account/trusted-publishing",
        {**FORM, "scope-read": "on"},
    )
    assert crafted.status_code == 400
    assert "A trusted publishing policy cannot have the scope 'read'" in page_text(crafted.text)
    assert len(tp.core.trusted.policies()) == 1


def _age_session(site: Site, minutes: int) -> None:
    with site.core.db.session() as s:
        s.execute(update(WebSession).values(authenticated_at=utcnow() - timedelta(minutes=minutes)))


def test_policies_need_a_recent_sign_in_or_the_password_again(tp: Site) -> None:
    """Audit 1a: a policy mints keys, so its forms ask for the password as the key forms do."""
    new = "/account/trusted-publishing/new?kind=github"
    tp.submit(new, "/account/trusted-publishing", FORM)  # just signed in
    [policy] = tp.core.trusted.policies()
    edit = f"/account/trusted-publishing/{policy.id}/edit"
    form_html = tp.get(new).text
    _age_session(tp, 16)
    for path in (new, edit):
        assert "Confirm your password" in page_text(tp.get(path).text), path
    for path in ("/account/trusted-publishing", edit):  # forms filled in before the window closed
        stale = tp.client.post(path, data={"csrf": csrf_of(form_html), **FORM, "glob": "*"})
        assert stale.status_code == 403 and "enter your password again" in page_text(stale.text), path
    assert [(p.id, p.globs) for p in tp.core.trusted.policies()] == [(policy.id, ["Contoso.*"])]
    ok = tp.client.post(
        "/account/sudo",
        data={"csrf": csrf_of(form_html), "current": PASSWORD, "next": edit},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == edit
    assert tp.submit(edit, edit, {**FORM, "glob": "*"}).status_code == 303
    assert tp.submit(new, "/account/trusted-publishing", FORM).status_code == 303
    assert len(tp.core.trusted.policies()) == 2


def test_a_site_requiring_two_factor_refuses_policies_without_it(
    make_site: MakeSite, issuer: LoopbackIssuer
) -> None:
    """Audit 1c, on the page: the message of the key form."""
    site = make_site(oidc_issuers=f"github={issuer.url}", oidc_audience=AUD, require_2fa=True)
    site.sign_in("alice")
    response = site.submit("/account/trusted-publishing/new?kind=github", "/account/trusted-publishing", FORM)
    assert response.status_code == 403
    assert "This site requires two-factor sign-in to create or regenerate API keys" in page_text(
        response.text
    )
    assert site.core.trusted.policies() == []


def test_a_creator_who_left_the_org_no_longer_sees_its_policy(tp: Site, issuer: LoopbackIssuer) -> None:
    """Audit 2: the org's policy (its keys, its CI runs) stays with the org's admins."""
    tp.core.orgs.create("Contoso", "alice")
    bob = tp.browser("bob")
    tp.core.orgs.add_member("Contoso", "bob", "admin")
    tp.submit(
        "/account/trusted-publishing/new?kind=github",
        "/account/trusted-publishing",
        {**FORM, "package_owner": "Contoso"},
    )
    [policy] = tp.core.trusted.policies()
    mint(tp, issuer, "Contoso")
    tp.core.orgs.remove_member("Contoso", "alice", by="bob")
    listing = page_text(tp.get("/account/trusted-publishing").text)
    assert "contoso/lib release.yml" not in listing and "run 777" not in listing
    for path in (
        f"/account/trusted-publishing/{policy.id}/edit",
        f"/account/trusted-publishing/{policy.id}/delete",
    ):
        assert tp.get(path).status_code == 404
    assert "contoso/lib release.yml" in page_text(bob.get("/account/trusted-publishing").text)


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
