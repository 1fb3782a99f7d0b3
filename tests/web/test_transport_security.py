"""Strict-Transport-Security on every answer of the site over https (TLS here, an https public URL, or a
trusted proxy's X-Forwarded-Proto), so that a browser that saw it once never tries plain http again (where
a network attacker could show it a sign-in form of their own); never over plain http."""

from __future__ import annotations

from starlette.testclient import TestClient

from web.helpers import MakeSite

HSTS = "max-age=31536000"


def hsts(client: TestClient, path: str, **headers: str) -> str | None:
    answer = client.get(path, headers={"accept": "text/html", **headers}, follow_redirects=False)
    return answer.headers.get("strict-transport-security")


def test_every_answer_over_https_says_to_keep_to_https(make_site: MakeSite) -> None:
    site = make_site()
    tls = TestClient(site.client.app, base_url="https://127.0.0.1")
    for path in ("/signin", "/no-such-page", "/account", "/static/site.css", "/v3/index.json"):
        assert hsts(tls, path) == HSTS, path
    assert hsts(site.client, "/signin") is None  # plain http: a browser would ignore it anyway


def test_an_https_public_url_or_a_trusted_proxys_https_counts(make_site: MakeSite) -> None:
    public = make_site(public_url="https://nuget.example.test")
    assert hsts(public.client, "/signin") == HSTS
    behind = make_site(trust_forwarded=True)  # its client is the loopback: a trusted proxy
    assert hsts(behind.client, "/signin", **{"x-forwarded-proto": "https"}) == HSTS
    assert hsts(behind.client, "/signin", **{"x-forwarded-proto": "http"}) is None
    untrusted = make_site()  # forwarded headers not trusted: a client's X-Forwarded-Proto is not believed
    assert hsts(untrusted.client, "/signin", **{"x-forwarded-proto": "https"}) is None
