"""Helpers of the browser tests: nuget.exe's verdicts and the account menu."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from support.nugetexe import NuGetResult
from support.server import TEST_PASSWORD

PUSHED = "Your package was pushed"
PHONE = {"width": 390, "height": 844}


def assert_pushed(result: NuGetResult) -> None:
    assert result.returncode == 0 and PUSHED in result.output, result.output


def assert_refused(result: NuGetResult, status: int, reason: str) -> None:
    assert result.returncode != 0, result.output
    assert f"Response status code does not indicate success: {status}" in result.output, result.output
    assert re.search(rf"WARNING: .*{reason}", result.output, re.IGNORECASE), result.output


def open_menu_item(page: Page, item: str | re.Pattern[str]) -> None:
    """Open the account menu with the keyboard (upper right) and follow one of its items."""
    page.locator("details.menu summary").focus()
    page.keyboard.press("Enter")
    page.get_by_role("link", name=item, exact=True).click()


def assert_fits(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} scrolls sideways on a phone ({width}px)"


def sign_in(page: Page, name: str) -> None:
    """Sign in on the page's sign-in form as ``name`` (the tests' password)."""
    page.goto("/signin")
    page.get_by_label("Username or email").fill(name)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("details.menu summary")).to_contain_text(name)
