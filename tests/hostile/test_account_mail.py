"""Holes of issue 15 tried against a real ``nugat serve`` with mail (a real SMTP server on the loopback),
as an attacker would: the leak-report endpoint fed garbage, nesting and floods; reset links guessed,
oversized or replayed; a reset asked for with a forged Host header (the link must still name the site);
an account's mailbox flooded through the Forgotten password form."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from hostile.harness import started
from support.server import TEST_PASSWORD, NugatServer, ensure_user
from support.smtp import MailBox

PUBLIC = "http://nugat.example.test"


@pytest.fixture(scope="module")
def mailbox() -> Iterator[MailBox]:
    box = MailBox().start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, mailbox: MailBox) -> Iterator[NugatServer]:
    env = {
        "NUGAT_SMTP_URL": mailbox.url,
        "NUGAT_MAIL_FROM": "nugat@example.test",
        "NUGAT_PUBLIC_URL": PUBLIC,
        "NUGAT_MAIL_POLL_SECONDS": "0.1",
    }
    with started(tmp_path_factory, "account-mail", "sqlite", env) as server:
        yield server


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def forgot(client: httpx.Client, login: str, headers: dict[str, str] | None = None) -> httpx.Response:
    token = csrf(client.get("/account/forgot").text)
    return client.post("/account/forgot", data={"csrf": token, "login": login}, headers=headers)


def test_leak_reports_of_garbage_are_refused_plainly(server: NugatServer) -> None:
    with httpx.Client(base_url=server.url, timeout=60, headers={"X-Forwarded-For": "203.0.113.9"}) as c:
        cases = [
            b"",
            b"{not json",
            b"\xff\xfe\x00garbage",
            b"[" * 100_000 + b"]" * 100_000,  # nesting far past the parser's recursion limit
            b'{"token": 5}',
            b"null",
        ]
        for body in cases:
            response = c.post("/api/v2/revoke", content=body)
            assert response.status_code in (400, 202), (body[:20], response.status_code, response.text)
        assert c.post("/api/v2/revoke", content=b"[" + b'"x",' * 300_000 + b'"x"]').status_code == 413
    assert server.get("/health").status_code == 200


def test_reset_links_cannot_be_guessed_or_stretched(server: NugatServer) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        for token in (secrets.token_urlsafe(32), "x" * 10_000, "%00", "..%2F..%2Fetc", "' OR 1=1 --"):
            response = c.get(f"/account/reset/{token}")
            assert response.status_code in (404, 410), (token[:20], response.status_code)
            assert "password" not in response.text.lower() or "expired" in response.text.lower()
        page = c.get("/account/forgot")
        posted = c.post(
            f"/account/reset/{secrets.token_urlsafe(32)}",
            data={"csrf": csrf(page.text), "password": TEST_PASSWORD, "confirm": TEST_PASSWORD},
        )
        assert posted.status_code == 410


def test_a_forged_host_header_never_reaches_the_mail(server: NugatServer, mailbox: MailBox) -> None:
    ensure_user(server, "hosted")
    with httpx.Client(base_url=server.url, timeout=60) as c:
        forgot(c, "hosted", headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    mail = mailbox.to("hosted@example.test", "Reset your password")
    assert "evil.example" not in mail.text + mail.html
    assert f"{PUBLIC}/account/reset/" in mail.text
    # The link works once, through the real server.
    path = "/" + re.findall(rf"{PUBLIC}/(account/reset/\S+)", mail.text)[0]
    with httpx.Client(base_url=server.url, timeout=60) as c:
        form = c.get(path)
        assert form.status_code == 200
        done = c.post(
            path,
            data={"csrf": csrf(form.text), "password": TEST_PASSWORD + "!", "confirm": TEST_PASSWORD + "!"},
        )
        assert done.status_code == 303
        assert c.get(path).status_code == 410


def test_the_forgotten_password_form_cannot_flood_a_mailbox(server: NugatServer, mailbox: MailBox) -> None:
    ensure_user(server, "flooded")
    with httpx.Client(base_url=server.url, timeout=60) as c:
        answers = {forgot(c, "flooded").status_code for _ in range(12)}
    assert answers == {200}
    mailbox.to("flooded@example.test", "Reset")
    time.sleep(1.0)  # the sender polls every 0.1 s: anything more would have arrived
    assert mailbox.count(lambda m: "flooded@example.test" in m.recipients) == 5
