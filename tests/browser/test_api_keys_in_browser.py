"""The API key flow a nuget.org user knows, in Chromium, against a real server and the real nuget.exe:
sign up, sign out and in, create a key with a glob and the push-version scope, copy its secret, push with
it (allowed and refused), regenerate it and see the old secret fail, delete it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import APIResponse, Browser, Locator, Page, Route, expect
from playwright.sync_api import Error as PlaywrightError

from browser.helpers import PHONE, assert_fits, assert_pushed, assert_refused, open_menu_item, sign_in
from support.nugetexe import NuGetClient
from support.server import SECRETS, TEST_PASSWORD, NugatServer, create_key, ensure_user, set_key_expiry
from web.helpers import nupkg

pytestmark = pytest.mark.browser

BuildPackage = Callable[..., Path]


def sign_up(page: Page, name: str) -> None:
    page.goto("/")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Username").fill(name)
    page.get_by_label("Email").fill(f"{name}@example.test")
    page.get_by_label("Password", exact=True).fill(TEST_PASSWORD)
    page.get_by_label("Repeat the password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/account/apikeys$"))


@pytest.mark.e2e
def test_key_lifecycle_with_nuget_exe(
    page: Page,
    web_server: NugatServer,
    nuget: NuGetClient,
    build_package: BuildPackage,
    artifacts: Path,
) -> None:
    source = web_server.source
    sign_up(page, "webuser")
    web_server.users.add("webuser")

    # Sign out from the menu, then sign in again by email.
    page.locator("details.menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Username or email").fill("webuser@example.test")
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("details.menu summary")).to_contain_text("webuser")

    # The user already owns Web.Glob.Lib (pushed with a key made on the command line).
    setup = create_key(web_server, "webuser", ["push"], globs=["Web.Glob.*"])
    assert_pushed(nuget.push(build_package("Web.Glob.Lib", "1.0.0"), str(setup["key"]), source))

    # Create a key: glob Web.Glob.*, push only new versions.
    open_menu_item(page, "API Keys")
    page.get_by_role("link", name="Create", exact=True).click()
    page.get_by_label("Key name").fill("ci push-version")
    expect(page.get_by_label("Package owner")).to_have_value("webuser")
    expect(page.get_by_label("Push", exact=True)).to_be_checked()
    page.get_by_label("Push only new package versions").check()
    page.get_by_label("Glob pattern").fill("Web.Glob.*")
    expect(page.get_by_label("Web.Glob.Lib")).not_to_be_checked()  # the owner's packages, to select
    expect(page.get_by_label("Expires in")).to_have_value("365")
    page.screenshot(path=str(artifacts / "create-key-form.png"), full_page=True)
    page.get_by_role("button", name="Create").click()

    # The secret, once, with a working Copy button.
    expect(page.get_by_role("alert")).to_contain_text("It will not be shown again")
    secret = page.get_by_label("API key “ci push-version”").input_value()
    SECRETS.append(secret)
    assert secret.startswith("nugat_")
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.get_by_role("link", name="Done: back to API Keys").click()
    expect(page).to_have_url(re.compile(r"/account/apikeys$"))
    page.go_back()  # navigating back never shows the secret again either
    assert "nugat_" not in page.content()
    page.goto("/account/apikeys")

    card = page.locator("li.key", has_text="ci push-version")
    expect(card).to_contain_text("Push only new package versions")
    expect(card).to_contain_text("Web.Glob.*")
    expect(card).to_contain_text("Expires in 365 days")
    assert secret.split("_", 2)[2] not in page.content()
    page.screenshot(path=str(artifacts / "api-keys.png"), full_page=True)

    # Push with it: a new version is allowed; a new package id, or one outside the glob, is refused.
    assert_pushed(nuget.push(build_package("Web.Glob.Lib", "1.1.0"), secret, source))
    assert_refused(
        nuget.push(build_package("Web.Glob.New", "1.0.0"), secret, source), 403, "only push new versions"
    )
    assert_refused(nuget.push(build_package("Other.Lib", "1.0.0"), secret, source), 403, "matches no package")

    # Regenerate, after a confirmation page: a new secret, shown once; reloading the answer page shows
    # no secret.
    card.get_by_role("link", name="Regenerate").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Regenerate API key “ci push-version”?")
    page.get_by_role("button", name="Regenerate").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your regenerated API key")
    regenerated = page.locator("#secret").input_value()
    SECRETS.append(regenerated)
    assert regenerated != secret and regenerated.split("_")[1] == secret.split("_")[1]  # same key id
    page.reload()
    expect(page.get_by_role("status")).to_contain_text("shown only once")
    assert "nugat_" not in page.content()
    result = nuget.push(build_package("Web.Glob.Lib", "1.2.0"), secret, source)
    assert_refused(result, 403, "was regenerated on")
    assert_pushed(nuget.push(build_package("Web.Glob.Lib", "1.2.0"), regenerated, source))

    # Delete, after a confirmation page.
    page.goto("/account/apikeys")
    page.locator("li.key", has_text="ci push-version").get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete API key “ci push-version”?")
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_have_text("API key 'ci push-version' deleted.")
    expect(page.locator("li.key", has_text="ci push-version")).to_have_count(0)
    expect(page.locator("li.key")).to_have_count(1)  # the command line's key stays
    result = nuget.push(build_package("Web.Glob.Lib", "1.3.0"), regenerated, source)
    assert_refused(result, 403, "does not exist")

    # My packages lists what was pushed.
    open_menu_item(page, "My packages")
    expect(page.locator("section.owned", has_text="Web.Glob.Lib").locator("tbody tr")).to_have_count(3)

    log = web_server.log_path.read_text(errors="replace")
    for leaked in (secret, regenerated):
        assert leaked.split("_", 2)[2] not in log


def test_pages_work_without_javascript_and_on_a_phone(
    chromium: Browser, web_server: NugatServer, artifacts: Path
) -> None:
    web_server.cli(
        "user", "create", "phoneuser", "--email", "phone@example.test", "--password-stdin",
        input=TEST_PASSWORD + "\n", check=True,
    )  # fmt: skip
    web_server.users.add("phoneuser")
    context = chromium.new_context(base_url=web_server.url, viewport=PHONE, java_script_enabled=False)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        page.goto("/account/apikeys")  # not signed in: to the sign-in page, then back
        page.get_by_label("Username or email").fill("phoneuser")
        page.get_by_label("Password").fill(TEST_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/account/apikeys$"))
        page.get_by_role("link", name="Create", exact=True).click()
        page.get_by_label("Key name").fill("from my phone")
        page.get_by_role("button", name="Create").click()
        expect(page.locator("#error-summary")).to_contain_text("There is a problem")
        expect(page.locator("#error-summary")).to_be_focused()  # by autofocus: no script here
        expect(page.locator("#packages-error")).to_have_text(
            "Give a glob pattern or select at least one package"
        )
        page.get_by_label("Glob pattern").fill("*")
        page.get_by_label("Unlist package").check()
        page.get_by_label("Expires in").select_option("90")
        page.get_by_role("button", name="Create").click()
        secret = page.locator("#secret").input_value()
        SECRETS.append(secret)
        assert secret.startswith("nugat_")
        expect(page.get_by_role("button", name="Copy")).to_be_hidden()  # it needs JavaScript
        page.get_by_role("link", name="Done: back to API Keys").click()
        card = page.locator("li.key", has_text="from my phone")
        expect(card).to_contain_text("Expires in 90 days")
        assert_fits(page)
        page.screenshot(path=str(artifacts / "api-keys-phone.png"), full_page=True)

        # My packages: unlist a version with its button.
        pushed = httpx.put(
            f"{web_server.url}/api/v2/package/",
            files={"package": ("p.nupkg", nupkg("Phone.Lib", "1.0.0"))},
            headers={"X-NuGet-ApiKey": secret},
        )
        assert pushed.status_code == 201, pushed.text
        page.locator("details.menu summary").click()  # without JavaScript <details> still opens
        page.get_by_role("link", name="My packages").click()
        assert_fits(page)
        page.get_by_role("button", name="Unlist Phone.Lib 1.0.0").click()
        expect(page.get_by_role("status")).to_have_text(
            "Phone.Lib 1.0.0 unlisted: it no longer shows in search."
        )
        expect(page.locator("section.owned tbody tr")).to_contain_text("Unlisted")
        expect(page.get_by_role("button", name="Relist Phone.Lib 1.0.0")).to_be_visible()
    finally:
        context.close()


class SlowPosts:
    """Every POST to ``path`` reaches the server at once, and its answer the browser only when
    ``double_click`` lets it (about 150 ms of latency, as a user might have); they are listed in ``posts``.
    An answer that arrives once ``double_click`` is done is passed on at once: no request is left held."""

    def __init__(self, page: Page, path: str) -> None:
        self.posts: list[str] = []
        self.held: list[tuple[Route, APIResponse]] = []
        self.holding = False
        page.route(f"**{path}", self._hold)

    def _hold(self, route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        self.posts.append(route.request.url)
        response = route.fetch(max_redirects=0)
        if self.holding:
            self.held.append((route, response))
        else:
            with contextlib.suppress(PlaywrightError):  # the browser gave up this one
                route.fulfill(response=response)

    def double_click(self, page: Page, button: Locator) -> None:
        """Click, and click again while the first POST is on its way; then let the answers through."""
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        self.holding = True
        try:
            page.mouse.click(x, y)  # the mouse: a locator's click would wait for the navigation
            page.wait_for_timeout(75)
            page.mouse.click(x, y)
            for _ in range(200):  # until the server has answered the first (10 s at most, on a busy machine)
                if self.held:
                    break
                page.wait_for_timeout(50)
            page.wait_for_timeout(75)  # a second POST, if the page sent one, is on its way too
        finally:
            self.holding = False
            for route, response in self.held:
                with contextlib.suppress(PlaywrightError):
                    route.fulfill(response=response)
            self.held.clear()


def test_a_double_click_on_create_or_regenerate_shows_the_secret(page: Page, web_server: NugatServer) -> None:
    ensure_user(web_server, "dblclick")
    sign_in(page, "dblclick")
    try:
        slow = SlowPosts(page, "/account/apikeys")
        page.goto("/account/apikeys/new")
        page.get_by_label("Key name").fill("double")
        page.get_by_label("Glob pattern").fill("*")
        slow.double_click(page, page.get_by_role("button", name="Create"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Your new API key")
        secret = page.locator("#secret").input_value()
        SECRETS.append(secret)
        assert secret.startswith("nugat_") and len(slow.posts) == 1
        page.goto("/account/apikeys")
        expect(page.locator("li.key")).to_have_count(1)

        key_id = secret.split("_")[1]
        slow = SlowPosts(page, f"/account/apikeys/{key_id}/regenerate")
        page.locator("li.key").get_by_role("link", name="Regenerate").click()
        slow.double_click(page, page.get_by_role("button", name="Regenerate"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Your regenerated API key")
        regenerated = page.locator("#secret").input_value()
        SECRETS.append(regenerated)
        assert regenerated.startswith("nugat_") and regenerated != secret and len(slow.posts) == 1
    finally:  # no handler left to wait for when the page closes
        page.unroute_all(behavior="ignoreErrors")


def test_key_dates_are_shown_in_the_visitors_time_zone(chromium: Browser, web_server: NugatServer) -> None:
    """A key expiring at 20:30 UTC expires the next morning in Tokyo: the list says so (the UTC time stays in
    the title, and is what the page says without JavaScript)."""
    ensure_user(web_server, "tokyo")
    info = create_key(web_server, "tokyo", ["push"], name="tz key")
    expires = (datetime.now(UTC) + timedelta(days=5)).replace(hour=20, minute=30, second=0, microsecond=0)
    set_key_expiry(web_server, str(info["id"]), expires)
    local = expires.astimezone(ZoneInfo("Asia/Tokyo"))
    for script in (True, False):
        context = chromium.new_context(
            base_url=web_server.url,  # type: ignore[arg-type]
            timezone_id="Asia/Tokyo",
            locale="en-US",
            java_script_enabled=script,
        )
        try:
            context.set_default_timeout(15_000)
            page = context.new_page()
            sign_in(page, "tokyo")
            page.goto("/account/apikeys")
            expiry = page.locator("li.key", has_text="tz key").locator("dd.expiry time")
            if script:
                expect(expiry).to_have_text(f"{local:%Y-%m-%d %H:%M} GMT+9")
                expect(expiry).to_have_attribute("title", f"{expires:%Y-%m-%d %H:%M} UTC")
            else:
                expect(expiry).to_have_text(f"{expires:%Y-%m-%d %H:%M} UTC")
        finally:
            context.close()
