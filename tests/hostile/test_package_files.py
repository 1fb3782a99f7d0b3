"""Package files never act as pages of the feed's site (issue 10, item 1), and documents whose URLs
follow the request's host say so to shared caches (item 6, ``Vary: Host``).

Anyone with a push key chooses the bytes of a nuspec, readme, license or icon. Each is served with
``nosniff``, a Content-Security-Policy that lets nothing run, and a type no browser runs script in; an
icon must be a PNG or JPEG image by its bytes. (That a browser indeed runs none of it is
tests/browser/test_package_files_in_browser.py.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from hostile.harness import Feed, assert_refusal, started
from support.hostile_files import (
    JPEG_START,
    file_paths,
    hostile_nuspec,
    hostile_package,
    html_with_script,
    png_image,
    svg_with_script,
)
from support.server import user_key
from support.zips import package

LOCKED_DOWN_POLICY = "default-src 'none'; sandbox"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=utf-8"
TYPES = {
    "nuspec": "application/octet-stream",
    "nupkg": "application/octet-stream",
    "readme": TEXT,
    "license": TEXT,
    "icon": "image/png",
    "flat index": JSON,
    "registration": JSON,
    "leaf": "application/json",
}


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feed]:
    """A server without NUGAT_PUBLIC_URL (URLs follow the request), holding a hostile package."""
    with started(tmp_path_factory, "files", "sqlite", {}) as server:
        feed = Feed(server, user_key(server, "mallory", ["push"]))
        assert feed.push(hostile_package("Hostile.Pkg")).status_code == 201
        yield feed
        feed.close()


def assert_locked_down(resp: httpx.Response) -> None:
    assert resp.headers.get("x-content-type-options") == "nosniff", resp.headers
    assert resp.headers.get("content-security-policy") == LOCKED_DOWN_POLICY, resp.headers
    assert "set-cookie" not in resp.headers


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("encoding", ["gzip", "identity"])
@pytest.mark.parametrize("name", list(TYPES))
def test_every_package_file_is_served_locked_down(feed: Feed, name: str, method: str, encoding: str) -> None:
    path = file_paths("Hostile.Pkg")[name]
    resp = httpx.request(method, feed.server.url + path, headers={"accept-encoding": encoding}, timeout=30)
    assert resp.status_code == 200, (path, resp.status_code)
    assert_locked_down(resp)
    assert resp.headers["content-type"] == TYPES[name]
    if name == "nuspec":  # XML a browser would show, and run the XHTML script of: a download instead
        assert resp.headers["content-disposition"] == 'attachment; filename="hostile.pkg.nuspec"'
        assert method == "HEAD" or b"<x:script" in resp.content  # the bytes are the package's own


def test_a_cached_answer_and_the_errors_are_locked_down_too(feed: Feed) -> None:
    url = feed.server.url + file_paths("Hostile.Pkg")["nuspec"]
    first = httpx.get(url, timeout=30)
    again = httpx.get(url, headers={"if-none-match": first.headers["etag"]}, timeout=30)
    assert again.status_code == 304
    for resp in (httpx.get(url, timeout=30), httpx.get(url.replace("hostile.pkg", "no.such"), timeout=30)):
        assert_locked_down(resp)
    assert httpx.post(url, timeout=30).headers["x-content-type-options"] == "nosniff"


def test_a_readme_too_large_for_the_cache_is_locked_down(feed: Feed) -> None:
    """Files over 1 MiB are sent from the file rather than from memory: the same headers."""
    readme = html_with_script("large-readme") * (1_200_000 // len(html_with_script("large-readme")) + 1)
    extra = "<readme>README.md</readme>"
    body = package(
        "Hostile.Large", spec=hostile_nuspec("Hostile.Large", "1.0.0", extra), files={"README.md": readme}
    )
    assert feed.push(body).status_code == 201
    resp = feed.server.get(file_paths("Hostile.Large")["readme"])
    assert resp.status_code == 200 and len(resp.content) == len(readme) > 1 << 20
    assert_locked_down(resp)
    assert resp.headers["content-type"] == TEXT


NOT_AN_IMAGE = "is not a PNG or JPEG image"
ICONS = {
    "svg": ("icon.svg", svg_with_script(), NOT_AN_IMAGE),
    "svg named png": ("icon.png", svg_with_script(), NOT_AN_IMAGE),
    "html named png": ("images/icon.png", html_with_script("icon"), NOT_AN_IMAGE),
    "gif": ("icon.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", NOT_AN_IMAGE),
    "empty": ("icon.png", b"", NOT_AN_IMAGE),
    "png over 1 MiB": ("icon.png", png_image() + os.urandom(1 << 20), "larger than 1048576 bytes"),
}


@pytest.mark.parametrize("case", list(ICONS))
def test_an_icon_that_is_not_a_png_or_jpeg_image_is_refused(feed: Feed, case: str) -> None:
    name, data, reason = ICONS[case]
    before = feed.snapshot()
    resp = feed.push(hostile_package(f"Hostile.Icon{list(ICONS).index(case)}", icon=(name, data)))
    assert_refusal(resp, 400, reason)
    feed.assert_nothing_stored(before)


def test_a_jpeg_icon_is_served_as_jpeg_and_icon_url_still_works(feed: Feed) -> None:
    extra = "<icon>logo.jpg</icon><iconUrl>https://example.test/logo.svg</iconUrl>"
    spec = hostile_nuspec("Hostile.Jpeg", "1.0.0", extra)
    jpeg = JPEG_START + b"\x00" * 64 + b"\xff\xd9"
    assert feed.push(package("Hostile.Jpeg", spec=spec, files={"logo.jpg": jpeg})).status_code == 201
    resp = feed.server.get(file_paths("Hostile.Jpeg")["icon"])
    assert resp.status_code == 200 and resp.content == jpeg
    assert resp.headers["content-type"] == "image/jpeg"
    assert_locked_down(resp)
    # An icon URL names an image elsewhere: nugat never serves it, and keeps accepting it.
    spec = hostile_nuspec("Hostile.IconUrl", "1.0.0", "<iconUrl>https://example.test/logo.svg</iconUrl>")
    assert feed.push(package("Hostile.IconUrl", spec=spec)).status_code == 201
    index = feed.server.get_json(file_paths("Hostile.IconUrl")["registration"])
    assert index["items"][0]["items"][0]["catalogEntry"]["iconUrl"] == "https://example.test/logo.svg"


def test_an_icon_stored_before_icons_were_checked_is_a_download(feed: Feed) -> None:
    """Storage written by an older nugat may hold an SVG icon: it is served as bytes to save, not shown."""
    assert feed.push(hostile_package("Hostile.Legacy")).status_code == 201
    stored = feed.server.data_dir / "storage" / file_paths("Hostile.Legacy")["icon"].lstrip("/")
    stored.write_bytes(svg_with_script())
    resp = feed.server.get(file_paths("Hostile.Legacy")["icon"])
    assert resp.status_code == 200 and resp.content == svg_with_script()
    assert resp.headers["content-type"] == "application/octet-stream"
    assert resp.headers["content-disposition"] == 'attachment; filename="icon"'
    assert_locked_down(resp)


@pytest.mark.parametrize("name", ["flat index", "registration", "leaf"])
def test_documents_built_from_the_host_vary_with_it(feed: Feed, name: str) -> None:
    """Without NUGAT_PUBLIC_URL a document's URLs come from the request's Host: a shared cache must not
    give one host's answer to another."""
    path = file_paths("Hostile.Pkg")[name]
    answers = {
        host: httpx.get(feed.server.url + path, headers={"host": host}, timeout=30)
        for host in ("feed-a.test", "feed-b.test:8080")
    }
    for host, resp in answers.items():
        assert resp.status_code == 200
        assert "host" in [v.strip().lower() for v in resp.headers.get("vary", "").split(",")], resp.headers
        assert resp.headers["cache-control"] == "public, max-age=60"
        if name != "flat index":
            assert f"http://{host}/v3/" in resp.text and "127.0.0.1" not in resp.text


def test_package_files_do_not_vary_with_the_host(feed: Feed) -> None:
    resp = feed.server.get(file_paths("Hostile.Pkg")["nupkg"])
    assert "host" not in resp.headers.get("vary", "").lower()
