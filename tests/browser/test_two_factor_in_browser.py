"""Two-factor sign-in in Chromium against a real server: enrol by reading the secret the page shows beside
its QR code, sign out, sign in with a code generated from it, then with a recovery code."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect

from browser.helpers import PHONE, assert_fits
from support.server import TEST_PASSWORD, NugatServer, ensure_user

pytestmark = pytest.mark.browser


def sign_out(page: Page) -> None:
    page.locator("details.menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()


def password_step(page: Page, name: str) -> None:
    page.goto("/signin")
    page.get_by_label("Username or email").fill(name)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()


def test_enrol_then_sign_in_with_a_code_and_a_recovery_code(
    page: Page, web_server: NugatServer, artifacts: Path
) -> None:
    ensure_user(web_server, "twofa")
    page.goto("/signin")
    page.get_by_label("Username or email").fill("twofa")
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/account")
    page.get_by_role("link", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("img", name="QR code of the two-factor secret")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().strip()
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code", exact=True).fill(totp.now())
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in is on")).to_be_visible()
    codes = [c.strip() for c in page.locator("#recovery-codes code").all_inner_texts()]
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-7]{5}-[a-z2-7]{5}", c) for c in codes)
    page.screenshot(path=str(artifacts / "two-factor-codes-laptop.png"), full_page=True)

    sign_out(page)
    password_step(page, "twofa")
    page.get_by_label("Code from your authenticator app").fill("000000")
    page.get_by_role("button", name="Verify").click()
    expect(page.locator(".error-summary")).to_contain_text("not right")
    # The code enrolment used cannot be used again: the app's next one (one step of drift is allowed).
    code = totp.at(time.time() + 30)
    page.get_by_label("Code from your authenticator app").fill(code)
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("details.menu summary")).to_contain_text("twofa")

    sign_out(page)
    password_step(page, "twofa")
    page.get_by_label("Code from your authenticator app").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.locator(".alert.warning")).to_contain_text("9 are left")
    expect(page.locator("details.menu summary")).to_contain_text("twofa")
    page.goto("/account/two-factor")
    expect(page.locator("main")).to_contain_text("Recovery codes left: 9 of 10")
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    assert_fits(page)
    page.screenshot(path=str(artifacts / "two-factor-phone.png"), full_page=True)
