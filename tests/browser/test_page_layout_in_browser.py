"""Layout and script behaviour of the pages in Chromium, against a real server: on a phone (390 px) the
buttons of My packages and of an org's members are on screen without scrolling sideways; on a laptop
(1280 px) Activity shows its Details column whole; the one-time secret shows whole beside Copy; a refused
form puts the focus on its error summary; Push's two kinds are disabled while Push is unchecked.
Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from browser.conftest import LAPTOP
from browser.helpers import PHONE, assert_fits
from support.server import SECRETS, TEST_PASSWORD, NugatServer, create_key, ensure_user
from web.helpers import nupkg

pytestmark = pytest.mark.browser

LONG_ID = "Layout.Very.Long.Package.Name.For.Phones"


@pytest.fixture(scope="module")
def layout_data(web_server: NugatServer) -> str:
    """layoutann owns LONG_ID (1.0.0 unlisted, 1.1.0, 2.0.0-beta.1) and administers LayoutOrg alone, with
    layoutben as a collaborator. Returns layoutann's key."""
    for user in ("layoutann", "layoutben"):
        ensure_user(web_server, user)
    key = str(create_key(web_server, "layoutann", ["push", "unlist"], globs=["Layout.*"])["key"])
    for version in ("1.0.0", "1.1.0", "2.0.0-beta.1"):
        pushed = httpx.put(
            f"{web_server.url}/api/v2/package/",
            files={"package": ("p.nupkg", nupkg(LONG_ID, version))},
            headers={"X-NuGet-ApiKey": key},
        )
        assert pushed.status_code == 201, pushed.text
    unlisted = httpx.delete(
        f"{web_server.url}/api/v2/package/{LONG_ID}/1.0.0", headers={"X-NuGet-ApiKey": key}
    )
    assert unlisted.status_code == 204, unlisted.text
    web_server.cli("org", "create", "LayoutOrg", "--admin", "layoutann", check=True)
    web_server.cli("org", "add-member", "LayoutOrg", "layoutben", "--role", "collaborator", check=True)
    return key


@contextlib.contextmanager
def signed_in(chromium: Browser, server: NugatServer, name: str, viewport: dict[str, int]) -> Iterator[Page]:
    """A fresh browser profile of ``viewport`` size, signed in as ``name``."""
    context = chromium.new_context(base_url=server.url, viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        page.goto("/signin")
        page.get_by_label("Username or email").fill(name)
        page.get_by_label("Password").fill(TEST_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("details.menu summary")).to_contain_text(name)
        yield page
    finally:
        context.close()


@pytest.fixture
def ann_on_a_phone(chromium: Browser, web_server: NugatServer, layout_data: str) -> Iterator[Page]:
    with signed_in(chromium, web_server, "layoutann", PHONE) as page:
        yield page


@pytest.fixture
def ann_on_a_laptop(chromium: Browser, web_server: NugatServer, layout_data: str) -> Iterator[Page]:
    with signed_in(chromium, web_server, "layoutann", LAPTOP) as page:
        yield page


def assert_on_screen(page: Page, target: Locator) -> None:
    """``target`` can be seen and clicked where it is, with no sideways scrolling of the page or of any box
    around it (a table's scroller): the window scrolled down to it only, the target wholly inside the
    viewport's width, and the topmost element at its centre (nothing clips or covers it)."""
    target.evaluate("(e) => window.scrollTo(0, window.scrollY + e.getBoundingClientRect().top - 80)")
    assert page.evaluate("window.scrollX") == 0
    box = target.bounding_box()
    assert box is not None
    width = page.viewport_size["width"]  # type: ignore[index]
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"off-screen: {box} in {width} px"
    on_top = target.evaluate(
        "(e) => { const r = e.getBoundingClientRect();"
        " const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);"
        " return hit !== null && (hit === e || e.contains(hit)); }"
    )
    assert on_top, "something clips or covers it"


def test_my_packages_buttons_and_status_are_on_a_phones_screen(ann_on_a_phone: Page, artifacts: Path) -> None:
    page = ann_on_a_phone
    page.goto("/account/packages")
    assert_fits(page)
    rows = page.locator("section.owned tbody tr")
    expect(rows).to_have_count(3)
    for version, status, button in (
        ("2.0.0-beta.1", "Listed", "Unlist"),
        ("1.1.0", "Listed", "Unlist"),
        ("1.0.0", "Unlisted", "Relist"),
    ):
        row = rows.filter(has_text=version)
        assert_on_screen(page, row.get_by_text(status, exact=True))
        assert_on_screen(page, row.get_by_role("button", name=f"{button} {LONG_ID} {version}"))
    page.screenshot(path=str(artifacts / "my-packages-phone.png"), full_page=True)
    page.get_by_role("button", name=f"Relist {LONG_ID} 1.0.0").click()
    expect(page.get_by_role("status")).to_have_text(f"{LONG_ID} 1.0.0 listed again.")
    unlist = page.get_by_role("button", name=f"Unlist {LONG_ID} 1.0.0")
    assert_on_screen(page, unlist)
    unlist.click()
    expect(page.get_by_role("status")).to_have_text(
        f"{LONG_ID} 1.0.0 unlisted: it no longer shows in search."
    )
    assert_fits(page)


def test_org_members_remove_buttons_are_on_a_phones_screen(ann_on_a_phone: Page, artifacts: Path) -> None:
    page = ann_on_a_phone
    page.goto("/orgs/LayoutOrg")
    assert_fits(page)
    assert_on_screen(page, page.get_by_role("link", name="Remove layoutben"))
    assert_on_screen(page, page.get_by_label("Role of layoutben"))
    assert_on_screen(page, page.get_by_role("button", name="Change role of layoutben"))
    # layoutann is the only administrator: neither Remove nor Leave is offered, the page says why.
    expect(page.get_by_role("link", name="Remove layoutann")).to_have_count(0)
    expect(page.get_by_role("link", name="Leave LayoutOrg")).to_have_count(0)
    expect(page.get_by_text("You are the only administrator of LayoutOrg")).to_be_visible()
    page.screenshot(path=str(artifacts / "org-members-phone.png"), full_page=True)
    page.get_by_role("link", name="Remove layoutben").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Remove layoutben from LayoutOrg?")
    assert_fits(page)


def test_activity_shows_its_details_whole_on_a_laptop_and_fits_a_phone(
    ann_on_a_laptop: Page, artifacts: Path
) -> None:
    page = ann_on_a_laptop
    page.goto("/account/activity")
    table = page.locator("table.events")
    expect(table.locator("tbody tr").first).to_be_visible()
    wrap = page.locator(".table-wrap", has=table)
    scroll, client = wrap.evaluate("(e) => [e.scrollWidth, e.clientWidth]")
    assert scroll <= client, f"the Activity table scrolls sideways on a laptop ({scroll} > {client} px)"
    right = wrap.evaluate("(e) => e.getBoundingClientRect().right")
    header = table.get_by_role("columnheader", name="Details")
    assert_on_screen(page, header)
    for cell in table.locator("td.details").all():
        assert cell.evaluate("(e) => e.getBoundingClientRect().right") <= right
        assert cell.evaluate("(e) => e.scrollWidth <= e.clientWidth"), cell.inner_text()
    details = table.locator("td.details", has_text="admin: layoutann")
    expect(details).to_have_count(1)  # the org's creation names its administrator
    assert_on_screen(page, details)
    page.screenshot(path=str(artifacts / "activity-laptop.png"), full_page=True)

    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    page.reload()
    assert_fits(page)
    assert_on_screen(page, table.locator("td.details", has_text="admin: layoutann"))
    page.screenshot(path=str(artifacts / "activity-phone.png"), full_page=True)


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_new_secret_shows_whole_beside_copy(
    chromium: Browser, web_server: NugatServer, layout_data: str, viewport: dict[str, int], artifacts: Path
) -> None:
    with signed_in(chromium, web_server, "layoutann", viewport) as page:
        page.goto("/account/apikeys/new")
        page.get_by_label("Key name").fill(f"whole secret {viewport['width']}")
        page.get_by_label("Glob pattern").fill("Layout.*")
        page.get_by_role("button", name="Create").click()
        box = page.locator("#secret")
        secret = box.input_value()
        SECRETS.append(secret)
        assert re.fullmatch(r"nugat_[a-z2-7]{16}_[A-Za-z0-9_-]{50}", secret), secret
        assert_on_screen(page, box)
        hidden = box.evaluate("(e) => [e.scrollWidth - e.clientWidth, e.scrollHeight - e.clientHeight]")
        assert hidden == [0, 0], f"part of the secret is hidden: {hidden} px"
        copy = page.get_by_role("button", name="Copy")
        assert_on_screen(page, copy)
        field, button = box.bounding_box(), copy.bounding_box()
        assert field is not None and button is not None
        assert button["x"] >= field["x"] + field["width"]  # beside it, to the right
        assert button["y"] < field["y"] + field["height"]  # on its first line
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        page.screenshot(path=str(artifacts / f"secret-{viewport['width']}.png"), full_page=True)


def test_a_refused_form_puts_the_focus_on_its_error_summary(ann_on_a_laptop: Page) -> None:
    page = ann_on_a_laptop
    page.goto("/account/apikeys/new")
    page.get_by_label("Glob pattern").fill("a/b, Layout.*")
    page.get_by_label("Expires in").select_option("90")
    page.get_by_role("button", name="Create").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("heading")).to_have_text("There are 2 problems")
    expect(summary.get_by_role("link")).to_have_text(
        [
            "Give the key a name (at most 128 characters)",
            re.compile(r"^The glob pattern 'a/b' contains '/'\."),
        ]
    )
    expect(page.get_by_label("Expires in")).to_have_value("90")  # the choice is kept
    summary.get_by_role("link", name="The glob pattern").click()
    expect(page.get_by_label("Glob pattern")).to_be_focused()
    summary.get_by_role("link", name="Give the key a name").click()
    expect(page.get_by_label("Key name")).to_be_focused()

    page.goto("/orgs/LayoutOrg")  # another form: adding an unknown member
    page.get_by_label("Username").fill("nobody-here")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#error-summary")).to_be_focused()
    page.locator("#error-summary").get_by_role("link").click()
    expect(page.get_by_label("Username")).to_be_focused()


def test_push_kinds_are_disabled_while_push_is_unchecked(ann_on_a_laptop: Page) -> None:
    page = ann_on_a_laptop
    page.goto("/account/apikeys/new")
    push = page.get_by_label("Push", exact=True)
    kinds = [
        page.get_by_label("Push new packages and package versions"),
        page.get_by_label("Push only new package versions"),
    ]
    expect(push).to_be_checked()
    for kind in kinds:
        expect(kind).to_be_enabled()
    push.uncheck()
    for kind in kinds:
        expect(kind).to_be_disabled()
    push.check()
    kinds[1].check()
    push.uncheck()
    for kind in kinds:
        expect(kind).to_be_disabled()
    page.get_by_label("Key name").fill("unlist only")
    page.get_by_label("Unlist package").check()
    page.get_by_label("Glob pattern").fill("Layout.*")
    page.get_by_role("button", name="Create").click()
    SECRETS.append(page.locator("#secret").input_value())
    expect(page.locator("dl.facts")).to_contain_text(re.compile(r"Scopes\s*Unlist package\s*Packages"))


LONG_WORD = "Unbroken" * 40  # 320 characters without a place to break
LONG_TAG = "tag" * 50  # 150 characters
LONG_LABEL = "prerelease" * 5  # the version: 56 characters of the 64 allowed
LONG_PACKAGE = "Phone.Long.Strings"


@pytest.fixture(scope="module")
def long_strings(web_server: NugatServer) -> str:
    """phonelong owns LONG_PACKAGE, whose one version has a long prerelease label, a long tag and a long
    word in its description. Returns that version."""
    ensure_user(web_server, "phonelong")
    key = str(create_key(web_server, "phonelong", ["push"], globs=["Phone.Long.*"])["key"])
    version = f"1.0.0-{LONG_LABEL}"
    body = nupkg(
        LONG_PACKAGE, version, description=f"See {LONG_WORD} here.", extra=f"<tags>short {LONG_TAG}</tags>"
    )
    pushed = httpx.put(
        f"{web_server.url}/api/v2/package/",
        files={"package": ("p.nupkg", body)},
        headers={"X-NuGet-ApiKey": key},
    )
    assert pushed.status_code == 201, pushed.text
    return version


def test_long_unbroken_strings_stay_on_a_phones_screen(
    chromium: Browser, web_server: NugatServer, long_strings: str, artifacts: Path
) -> None:
    with signed_in(chromium, web_server, "phonelong", PHONE) as page:
        page.goto(f"/packages/{LONG_PACKAGE}/{long_strings}")
        expect(page.get_by_text(LONG_LABEL).first).to_be_visible()
        assert_fits(page)
        page.screenshot(path=str(artifacts / "long-strings-package-phone.png"), full_page=True)
        page.goto("/packages?q=Phone.Long")
        expect(page.get_by_role("link", name=LONG_TAG)).to_be_visible()
        assert_fits(page)
        page.goto("/account/apikeys/new")
        page.get_by_label("Key name").fill("k" * 128)
        page.get_by_label("Glob pattern").fill("Phone.Long.*")
        page.get_by_role("button", name="Create").click()
        SECRETS.append(page.locator("#secret").input_value())
        assert_fits(page)
        page.screenshot(path=str(artifacts / "long-strings-secret-phone.png"), full_page=True)
        page.goto("/account/trusted-publishing")
        assert_fits(page)
        assert_on_screen(page, page.get_by_role("button", name=f"Trusted publishing only for {LONG_PACKAGE}"))
        page.screenshot(path=str(artifacts / "trusted-only-phone.png"), full_page=True)
