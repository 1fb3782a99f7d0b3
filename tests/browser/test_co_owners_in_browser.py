"""Issue 4's scenario in Chromium, against a real server and the real nuget.exe: a co-ownership request
accepted in the browser is then honoured by push. On the way, alice makes an organization in its pages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from browser.helpers import PHONE, assert_fits, assert_pushed, assert_refused, open_menu_item, sign_in
from support.nugetexe import NuGetClient
from support.server import NugatServer, create_key, ensure_user

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

BuildPackage = Callable[..., Path]
OWNERS = "/packages/Shared.Lib/owners"


def sign_out(page: Page) -> None:
    page.locator("details.menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()


def test_co_ownership_accepted_in_the_browser_is_honoured_by_push(
    page: Page, web_server: NugatServer, nuget: NuGetClient, build_package: BuildPackage, artifacts: Path
) -> None:
    source = web_server.source
    for user in ("alice", "bob"):
        ensure_user(web_server, user)
    alices = create_key(web_server, "alice", ["push"], globs=["Shared.*"])["key"]
    bobs = create_key(web_server, "bob", ["push"], globs=["Shared.*"])["key"]
    assert_pushed(nuget.push(build_package("Shared.Lib", "1.0.0"), alices, source))
    second = build_package("Shared.Lib", "2.0.0")
    assert_refused(nuget.push(second, bobs, source), 403, "bob is not an owner of Shared.Lib")

    # alice makes an organization with bob in it.
    sign_in(page, "alice")
    open_menu_item(page, "Organizations")
    page.get_by_label("Organization name").fill("SharedTeam")
    page.get_by_role("button", name="Create organization").click()
    expect(page.get_by_role("status")).to_have_text(
        "Organization SharedTeam created: you are its administrator."
    )
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Role", exact=True).select_option("collaborator")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("status")).to_have_text("bob added to SharedTeam as collaborator.")
    expect(page.get_by_label("Role of bob")).to_have_value("collaborator")
    page.screenshot(path=str(artifacts / "org-page.png"), full_page=True)

    # alice invites bob to co-own Shared.Lib from the package's page.
    page.goto("/packages/Shared.Lib")
    page.get_by_role("link", name="Manage owners").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Owners of Shared.Lib")
    page.get_by_label("User or organization").fill("bob")
    page.get_by_role("button", name="Invite as co-owner").click()
    expect(page.get_by_role("status")).to_contain_text("bob was invited to co-own Shared.Lib")
    expect(page.get_by_role("button", name="Cancel invitation of bob")).to_be_visible()
    page.screenshot(path=str(artifacts / "owners-page.png"), full_page=True)
    assert_refused(nuget.push(second, bobs, source), 403, "bob is not an owner of Shared.Lib")

    # bob sees the invitation counted in his menu and accepts it.
    sign_out(page)
    sign_in(page, "bob")
    expect(page.locator("details.menu summary")).to_contain_text("1 pending invitations")
    open_menu_item(page, re.compile(r"^Invitations"))
    expect(
        page.get_by_role("listitem").filter(has_text="alice invites you to co-own Shared.Lib")
    ).to_be_visible()
    page.locator("details.menu summary").click()
    page.screenshot(path=str(artifacts / "invitations-page.png"), full_page=True)
    page.get_by_role("button", name=re.compile(r"^Accept Shared\.Lib")).click()
    expect(page.get_by_role("status")).to_have_text(
        "Invitation accepted: you now co-own Shared.Lib. It is in My packages."
    )
    expect(page.locator("details.menu summary .count")).to_have_count(0)

    assert_pushed(nuget.push(second, bobs, source))
    page.goto("/packages/Shared.Lib")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Shared\.Lib\s+2\.0\.0"))
    expect(page.get_by_label("About this package")).to_contain_text(re.compile(r"Owners\s*alice\s*bob"))

    # bob's pages fit a phone's width (tables scroll inside their own box).
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    for path in ("/orgs/SharedTeam", OWNERS, "/account/invitations", "/account/activity"):
        page.goto(path)
        assert_fits(page)
