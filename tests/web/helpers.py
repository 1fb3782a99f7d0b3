"""Helpers of the page tests: the whole application in process behind a browser-like client."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from html import unescape

import httpx
from starlette.testclient import TestClient

from nugat.core import Core
from nugat.settings import Settings

PASSWORD = "correct horse battery staple"


def nupkg(
    package_id: str,
    version: str,
    *,
    description: str = "A package",
    extra: str = "",
    files: dict[str, str] | None = None,
) -> bytes:
    """A minimal valid .nupkg (nuspec and one file), made in memory."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            f"{package_id}.nuspec",
            f"""<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"><metadata>
<id>{package_id}</id><version>{version}</version><authors>Ann Author</authors>
<description>{description}</description>{extra}</metadata></package>""",
        )
        z.writestr("lib/net8.0/a.txt", "x")
        for name, text in (files or {}).items():
            z.writestr(name, text)
    return buf.getvalue()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, f"no CSRF field in:\n{html[:2000]}"
    return found.group(1)


def once_of(html: str) -> str:
    found = re.search(r'name="once" value="([^"]+)"', html)
    assert found, f"no one-time field in:\n{html[:2000]}"
    return found.group(1)


def field_errors(html: str) -> dict[str, str]:
    """``{field: message}`` of the errors shown beside the fields."""
    return {
        name: unescape(text)
        for name, text in re.findall(r'<p class="field-error" id="([\w-]+)-error">([^<]*)</p>', html)
    }


def page_text(html: str) -> str:
    """The page's text, tags removed and whitespace folded (what a reader sees; ``<wbr>``, a place a
    line may break, is no space)."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html.replace("<wbr>", ""))).split())


def secret_of(html: str) -> str:
    found = re.search(r'<textarea id="secret"[^>]*>(nugat_[^<]+)</textarea>', html)
    assert found, f"no secret in:\n{html[:3000]}"
    return found.group(1)


@dataclass
class Site:
    client: TestClient
    core: Core
    settings: Settings

    def get(self, path: str, *, follow_redirects: bool = True) -> httpx.Response:
        return self.client.get(path, follow_redirects=follow_redirects)

    def submit(
        self, page: str, action: str, data: dict[str, str | list[str]], *, follow: bool = False
    ) -> httpx.Response:
        """Open ``page``, take its CSRF (and one-time) token, POST ``data`` to ``action`` as its form does."""
        html = self.client.get(page).text
        tokens = {"csrf": csrf_of(html)}
        if 'name="once"' in html:
            tokens["once"] = once_of(html)
        return self.client.post(action, data={**tokens, **data}, follow_redirects=follow)

    def sign_in(self, login: str, password: str = PASSWORD) -> httpx.Response:
        response = self.submit("/signin", "/signin", {"login": login, "password": password})
        assert response.status_code == 303, response.text
        return response

    def browser(self, name: str, *, admin: bool = False) -> Site:
        """Another browser on the same site, signed in as ``name`` (a user created first if missing)."""
        if name.lower() not in {u.name.lower() for u in self.core.accounts.users()}:
            self.core.accounts.create_user(name, f"{name}@example.test", PASSWORD, admin=admin)
        other = Site(TestClient(self.client.app, base_url="http://127.0.0.1"), self.core, self.settings)
        other.sign_in(name)
        return other

    def create_key(self, **fields: str | list[str]) -> tuple[httpx.Response, str]:
        data: dict[str, str | list[str]] = {
            "name": "ci",
            "owner": "alice",
            "push": "on",
            "push_kind": "push",
            "glob": "*",
            "expires": "365",
            **fields,
        }
        response = self.submit("/account/apikeys/new", "/account/apikeys", data)
        assert response.status_code == 200, response.text
        return response, secret_of(response.text)

    def push(self, key: str, body: bytes) -> int:
        files = {"package": ("package.nupkg", body, "application/octet-stream")}
        response = self.client.put("/api/v2/package/", files=files, headers={"X-NuGet-ApiKey": key})
        return response.status_code


MakeSite = Callable[..., Site]
