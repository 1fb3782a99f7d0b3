"""Security headers on every page (a CSP without inline script or style, no framing, a referrer policy),
pages that need no inline code, and cookies that are Secure when the client speaks TLS."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from hostile.harness import Feed, started
from nugat.services.sessions import SESSION_COOKIE
from nugat.web.pages import CSRF_COOKIE
from support.server import TEST_PASSWORD, user_key
from support.zips import package

PAGES = [
    "/",
    "/packages",
    "/packages?q=hdr",
    "/packages/Hdr.Pkg",
    "/packages/Hdr.Pkg/1.0.0",
    "/packages/No.Such.Pkg",
    "/signin",
    "/signup",
    "/account",
    "/no/such/page",
    "/static/site.css",
]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
INLINE_STYLE = re.compile(r"<style\b|<[^>]+\sstyle\s*=", re.I)


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feed]:
    """Behind a TLS-terminating proxy, as deployed: X-Forwarded-Proto is trusted."""
    with started(tmp_path_factory, "headers", "sqlite", {"NUGAT_TRUST_FORWARDED": "true"}) as server:
        feed = Feed(server, user_key(server, "alice", ["push"]))
        assert feed.push(package("Hdr.Pkg")).status_code == 201
        yield feed
        feed.close()


def policy(header: str) -> dict[str, list[str]]:
    directives = (d.split() for d in header.split(";") if d.strip())
    return {d[0]: d[1:] for d in directives}


@pytest.mark.parametrize("path", PAGES)
def test_pages_carry_the_security_headers(feed: Feed, path: str) -> None:
    resp = feed.server.get(path)
    assert resp.status_code in (200, 303, 404), resp.status_code
    csp = policy(resp.headers["content-security-policy"])
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    for directive in ("default-src", "script-src", "style-src"):
        assert csp[directive] == ["'self'"], directive
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] in (
        "same-origin",
        "strict-origin-when-cross-origin",
        "no-referrer",
    )
    if resp.headers.get("content-type", "").startswith("text/html"):
        # The CSP would block inline code: the pages must not need any.
        assert not INLINE_SCRIPT.search(resp.text)
        assert not INLINE_HANDLER.search(resp.text)
        assert not INLINE_STYLE.search(resp.text)


def set_cookie(resp: httpx.Response, name: str) -> tuple[str, set[str]]:
    """The value and the attribute names of the cookie ``name`` that ``resp`` sets."""
    for header in resp.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            value, *attributes = header.split(";")
            return value.split("=", 1)[1], {a.strip().split("=")[0].lower() for a in attributes}
    raise AssertionError(f"no {name} cookie in {resp.headers.get_list('set-cookie')}")


@pytest.mark.parametrize("tls", [True, False], ids=["https", "http"])
def test_cookies_are_secure_when_tls(feed: Feed, tls: bool) -> None:
    proto = {"X-Forwarded-Proto": "https" if tls else "http"}
    form = httpx.get(f"{feed.server.url}/signin", headers=proto, timeout=30)
    csrf_cookie, attributes = set_cookie(form, CSRF_COOKIE)
    assert ("secure" in attributes) is tls
    assert {"httponly", "samesite"} <= attributes
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    signed_in = httpx.post(
        f"{feed.server.url}/signin",
        data={"login": "alice", "password": TEST_PASSWORD, "csrf": token[1], "next": "/"},
        headers={**proto, "Cookie": f"{CSRF_COOKIE}={csrf_cookie}"},
        timeout=30,
    )
    assert signed_in.status_code == 303, signed_in.text[:500]
    _, attributes = set_cookie(signed_in, SESSION_COOKIE)
    assert ("secure" in attributes) is tls
    assert {"httponly", "samesite", "max-age"} <= attributes
