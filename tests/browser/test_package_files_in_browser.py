"""Issue 10, item 1, in Chromium against a real server: a signed-in user who opens the files of a hostile
package (a nuspec with an XHTML script, a readme and a license of HTML with script) runs none of their
script, and no API key is made in their name; an SVG icon is refused at push.

The script (``support.hostile_files``) asks for a marker URL first, then creates a key with the user's
session: the test watches every request the browser makes and the user's keys.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Request

from browser.helpers import sign_in
from support.hostile_files import SCRIPT_RAN, file_paths, hostile_package, svg_with_script
from support.server import NugatServer, ensure_user, user_key

pytestmark = pytest.mark.browser

PACKAGE = "Hostile.Files"


def push(server: NugatServer, key: str, body: bytes) -> httpx.Response:
    files = {"package": ("package.nupkg", body, "application/octet-stream")}
    return httpx.put(f"{server.url}/api/v2/package", files=files, headers={"X-NuGet-ApiKey": key}, timeout=60)


def key_names(server: NugatServer, user: str) -> list[str]:
    listed = server.cli("key", "list", "--user", user, "--json", check=True).stdout
    return [key["name"] for key in json.loads(listed)]


def open_file(page: Page, url: str) -> None:
    """Navigate as a click on a link to the file would (a download ends the navigation: that is fine)."""
    try:
        page.goto(url, wait_until="load")
    except PlaywrightError as exc:
        if "Download is starting" not in str(exc) and "ERR_ABORTED" not in str(exc):
            raise


def test_hostile_package_files_run_no_script_for_a_signed_in_user(
    page: Page, web_server: NugatServer, artifacts: Path
) -> None:
    mallory = user_key(web_server, "mallory", ["push"], globs=["Hostile.*"])
    assert push(web_server, mallory, hostile_package(PACKAGE)).status_code == 201

    ensure_user(web_server, "victim")
    sign_in(page, "victim")
    keys_before = key_names(web_server, "victim")
    seen: list[str] = []

    def watch(request: Request) -> None:
        seen.append(request.url)

    page.context.on("request", watch)
    opened = []
    for name, path in file_paths(PACKAGE).items():
        tab = page.context.new_page()
        open_file(tab, web_server.url + path)
        opened.append((name, tab))
    page.wait_for_timeout(2500)  # the script's first fetch comes within milliseconds where it runs
    for name, tab in opened:
        if name in ("readme", "icon"):
            tab.screenshot(path=str(artifacts / f"hostile-package-{name}.png"))
        tab.close()

    ran = [url for url in seen if SCRIPT_RAN in url or "/account/" in url]
    assert ran == [], f"a package file ran script: {ran}"
    assert {url.removeprefix(web_server.url) for url in seen} <= set(file_paths(PACKAGE).values()), seen
    assert key_names(web_server, "victim") == keys_before
    # The page still works for its user: the session was neither used nor spoiled.
    page.goto("/account/apikeys")
    assert page.url.endswith("/account/apikeys")

    # An icon a browser could run script in is never stored.
    svg = push(web_server, mallory, hostile_package("Hostile.Svg", icon=("icon.svg", svg_with_script())))
    assert svg.status_code == 400 and "not a PNG or JPEG image" in svg.text, svg.text
    assert web_server.get("/v3/flatcontainer/hostile.svg/1.0.0/icon").status_code == 404
