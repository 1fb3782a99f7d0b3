"""Trusted publishing in Chromium, against a real server trusting a real OIDC issuer on 127.0.0.1: a user
adds a GitHub policy from the account menu, a CI job (this test) mints a key with it, and the page shows
the policy bound with its live key; then the package is made "trusted publishing only". Laptop and phone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from browser.conftest import LAPTOP
from browser.helpers import PHONE, assert_fits, open_menu_item
from support.oidc_issuer import LoopbackIssuer, github_claims, running_issuer
from support.server import SECRETS, TEST_PASSWORD, NugatServer, running_server
from web.helpers import nupkg

pytestmark = pytest.mark.browser

AUD = "https://nuget.test"


@pytest.fixture(scope="module")
def issuer() -> Iterator[LoopbackIssuer]:
    with running_issuer() as found:
        yield found


@pytest.fixture(scope="module")
def tp_server(tmp_path_factory: pytest.TempPathFactory, issuer: LoopbackIssuer) -> Iterator[NugatServer]:
    env = {"NUGAT_OIDC_ISSUERS": f"github={issuer.url}", "NUGAT_OIDC_AUDIENCE": AUD}
    with running_server(tmp_path_factory.mktemp("trusted-browser"), extra_env=env) as server:
        yield server


@pytest.fixture
def tp_page(chromium: Browser, tp_server: NugatServer) -> Iterator[Page]:
    context = chromium.new_context(base_url=tp_server.url, viewport=LAPTOP)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def mint(server: NugatServer, issuer: LoopbackIssuer) -> str:
    token = issuer.token(github_claims())
    SECRETS.append(token)
    response = httpx.post(
        f"{server.url}/api/v2/token",
        content=json.dumps({"username": "ci-owner", "tokenType": "ApiKey"}),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", "User-Agent": "t"},
    )
    assert response.status_code == 200, response.text
    key = str(response.json()["apiKey"])
    SECRETS.append(key)
    return key


def test_a_policy_from_the_menu_to_a_bound_policy(
    tp_page: Page, tp_server: NugatServer, issuer: LoopbackIssuer, artifacts: Path
) -> None:
    page = tp_page
    page.goto("/signup")
    page.get_by_label("Username").fill("ci-owner")
    page.get_by_label("Email").fill("ci-owner@example.test")
    page.get_by_label("Password", exact=True).fill(TEST_PASSWORD)
    page.get_by_label("Repeat the password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    open_menu_item(page, "Trusted Publishing")
    expect(page.locator("main")).to_contain_text(f"{tp_server.url}/api/v2/token")

    page.get_by_role("link", name="Add a GitHub Actions policy").click()
    page.get_by_label("Repository owner").fill("contoso")
    page.get_by_label("Repository", exact=True).fill("lib")
    page.get_by_label("Workflow file").fill("release.yml")
    page.get_by_label("Environment (optional)").fill("release")
    page.get_by_label("Packages (glob patterns)").fill("Contoso.*")
    page.get_by_role("button", name="Add").click()
    expect(page).to_have_url(re.compile(r"/account/trusted-publishing\?done=created$"))
    card = page.locator("li.policy")
    expect(card).to_contain_text("contoso/lib release.yml")
    expect(card).to_contain_text("Not used yet")

    key = mint(tp_server, issuer)
    files = {"package": ("p.nupkg", nupkg("Contoso.Lib", "1.0.0"), "application/octet-stream")}
    pushed = httpx.put(f"{tp_server.url}/api/v2/package/", files=files, headers={"X-NuGet-ApiKey": key})
    assert pushed.status_code == 201, pushed.text
    page.reload()
    expect(card).to_contain_text("Bound to the repository it was first used by")
    expect(card).to_contain_text("run 777")

    page.get_by_role("button", name="Trusted publishing only for Contoso.Lib").click()
    expect(page.locator(".notice")).to_contain_text("accepts only trusted publishing")
    page.screenshot(path=str(artifacts / "trusted-publishing-laptop.png"), full_page=True)
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    assert_fits(page)
    page.screenshot(path=str(artifacts / "trusted-publishing-phone.png"), full_page=True)
