"""How package files are served (``fileheaders``), icons by their bytes (``nuspec``), the content
origin's cookie rules (``content_origin``) and the URL settings it needs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from nugat.cli import cmd_serve
from nugat.content_origin import ContentOrigin
from nugat.fileheaders import file_headers
from nugat.nuspec import InvalidPackage, check_icon, image_type
from nugat.readpath import render
from nugat.settings import Settings
from nugat.storage import BlobInfo
from support.asgi import run as run_asgi

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
LOCKED = [
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"default-src 'none'; sandbox"),
]
FOLDER = "v3/flatcontainer/a.b/1.0.0"


@pytest.mark.parametrize(
    ("key", "head", "kind"),
    [
        ("v3/flatcontainer/a.b/index.json", b"{", [(b"content-type", b"application/json; charset=utf-8")]),
        ("v3/registration/a.b/index.json", b"{", [(b"content-type", b"application/json; charset=utf-8")]),
        (f"{FOLDER}/a.b.1.0.0.nupkg", b"PK", [(b"content-type", b"application/octet-stream")]),
        (
            f"{FOLDER}/a.b.nuspec",
            b"<?xml",
            [
                (b"content-type", b"application/octet-stream"),
                (b"content-disposition", b'attachment; filename="a.b.nuspec"'),
            ],
        ),
        (f"{FOLDER}/readme", b"<html>", [(b"content-type", b"text/plain; charset=utf-8")]),
        (f"{FOLDER}/license", b"<svg", [(b"content-type", b"text/plain; charset=utf-8")]),
        (f"{FOLDER}/icon", PNG, [(b"content-type", b"image/png")]),
        (f"{FOLDER}/icon", JPEG, [(b"content-type", b"image/jpeg")]),
        (
            f"{FOLDER}/icon",
            b"<svg xmlns",
            [
                (b"content-type", b"application/octet-stream"),
                (b"content-disposition", b'attachment; filename="icon"'),
            ],
        ),
        (
            f"{FOLDER}/other",
            b"<html>",
            [
                (b"content-type", b"application/octet-stream"),
                (b"content-disposition", b'attachment; filename="other"'),
            ],
        ),
    ],
)
def test_each_file_gets_a_type_no_browser_runs_script_in(key: str, head: bytes, kind: list[Any]) -> None:
    assert file_headers(key, head) == [*kind, *LOCKED]


def test_icons_are_known_by_their_bytes() -> None:
    assert image_type(PNG) == "image/png" and image_type(JPEG) == "image/jpeg"
    for other in (b"", b"\x89PNG", b"GIF89a", b"<svg", b"\xff\xd8", b"BM", b"RIFF\x00\x00\x00\x00WEBP"):
        assert image_type(other) is None
    assert check_icon("icon.jpg", JPEG) == "image/jpeg"
    with pytest.raises(InvalidPackage, match=r"^The icon file 'icon.png' is not a PNG or JPEG image"):
        check_icon("icon.png", b"<svg onload=alert(1)>")


def test_rendered_entries_carry_the_headers_and_vary_only_documents() -> None:
    info = BlobInfo("t", 10, 0.0)
    doc = render(
        "v3/registration/a.b/index.json", info, b'{"@id":"@@NUGAT_BASE@@/x"}' * 40, "http://h", b"Host"
    )
    assert doc.gzip_headers is not None
    for headers in (doc.headers, doc.gzip_headers, doc.validators):
        assert (b"vary", b"accept-encoding, Host") in headers
    assert set(LOCKED) <= set(doc.headers) and set(LOCKED) <= set(doc.gzip_headers)
    small = render("v3/flatcontainer/a.b/index.json", info, b'{"versions":[]}', "http://h", b"Host")
    assert (b"vary", b"Host") in small.headers
    fixed = render("v3/flatcontainer/a.b/index.json", info, b'{"versions":[]}', "http://h")
    assert not [v for k, v in fixed.headers if k == b"vary"]
    nupkg = render(f"{FOLDER}/a.b.1.0.0.nupkg", info, b"PK" * 400, "", b"Host")
    assert not [v for k, v in nupkg.headers if k == b"vary"]


def test_url_settings_are_checked() -> None:
    def problems(**urls: str) -> list[str]:
        return Settings(data_dir=Path("unused"), **urls).problems()

    assert problems(public_url="https://nuget.example.com", content_url="https://pkgs.example.com") == []
    assert problems(content_url="https://pkgs.example.com") == []
    assert problems(public_url="https://Nuget.example.com:443", content_url="https://nuget.example.com") == [
        "NUGAT_CONTENT_URL must name another host than NUGAT_PUBLIC_URL"
    ]
    assert problems(content_url="https://pkgs.example.com/feed") == [
        "NUGAT_CONTENT_URL must be a scheme and a host only (such as https://pkgs.example.com)"
    ]
    assert problems(content_url="pkgs.example.com") == [
        "NUGAT_CONTENT_URL must be an absolute http or https URL, not 'pkgs.example.com'"
    ]
    assert (
        Settings(data_dir=Path("u"), public_url="https://a", content_url="https://b").documents_url
        == "https://b"
    )


def call(host: bytes, path: str, forwarded: bytes | None = None) -> tuple[dict[str, Any], list[Any]]:
    """Run one request through the content origin of https://pkgs.example.com (behind a trusted proxy);
    returns what the app behind it saw and what was sent."""
    seen: dict[str, Any] = {}
    sent: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen["headers"] = dict(scope["headers"])
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"set-cookie", b"s=1"), (b"x", b"y")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    headers = [(b"host", host), (b"cookie", b"nugat_session=secret")]
    if forwarded is not None:
        headers.append((b"x-forwarded-host", forwarded))
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers}
    run_asgi(ContentOrigin(inner, "https://pkgs.example.com", trust_forwarded=True)(scope, receive, send))
    return seen, sent


def test_the_content_host_drops_cookies_both_ways() -> None:
    seen, sent = call(b"PKGS.example.com:443", "/v3/flatcontainer/a/index.json")
    assert b"cookie" not in seen["headers"]
    assert sent[0]["headers"] == [(b"x", b"y")]


def test_the_content_host_answers_nothing_else() -> None:
    seen, sent = call(b"pkgs.example.com", "/account/apikeys")
    assert seen == {} and sent[0]["status"] == 404
    assert not [k for k, _ in sent[0]["headers"] if k == b"set-cookie"]
    seen, _ = call(b"127.0.0.1", "/account/apikeys", forwarded=b"pkgs.example.com")
    assert seen == {}  # a trusted proxy's X-Forwarded-Host names the host


def test_other_hosts_pass_unchanged() -> None:
    seen, sent = call(b"nuget.example.com", "/account/apikeys")
    assert seen["headers"][b"cookie"] == b"nugat_session=secret"
    assert (b"set-cookie", b"s=1") in sent[0]["headers"]


def test_serve_refuses_a_content_url_on_the_public_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NUGAT_PUBLIC_URL", "https://nuget.example.com")
    monkeypatch.setenv("NUGAT_CONTENT_URL", "https://NUGET.example.com:443")
    assert cmd_serve(argparse.Namespace(data_dir=str(tmp_path))) == 2
    assert "NUGAT_CONTENT_URL must name another host than NUGAT_PUBLIC_URL" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before anything was opened
