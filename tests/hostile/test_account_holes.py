"""Smaller holes of issue 10 (item 6), tried against a real ``nugat serve`` as an attacker would.

- ``NUGAT_FIRST_SIGNUP_ADMIN``: twelve simultaneous sign-ups on a fresh server (two worker processes) make
  exactly one site admin, on SQLite and on PostgreSQL.
- ``/account/activity?user=X`` answers an unknown name exactly as a user whose events one may not see.
- Common passwords are refused at sign-up, at a password change and by ``nugat user create``.
- Changing the email ends the account's other sessions, as changing the password does.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from html import unescape

import httpx
import pytest
import sqlalchemy as sa

from hostile.harness import DATABASES, started
from support.server import TEST_PASSWORD, NugatServer, ensure_user, running_server, user_key
from support.zips import package

COMMON = ["password12", "qwertyuiop", "Password1!", "P@ssw0rd2024", "iloveyou!!"]
COMMON_MESSAGE = "The password is one of the most common passwords, or one with only digits or symbols added"


def browser(server: NugatServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def submit(client: httpx.Client, page: str, action: str, data: dict[str, str]) -> httpx.Response:
    """Open ``page`` and post its form to ``action``, as the browser does (CSRF token included)."""
    return client.post(action, data={"csrf": csrf(client.get(page).text), **data})


def signed_in(server: NugatServer, login: str, password: str = TEST_PASSWORD) -> httpx.Client:
    client = browser(server)
    resp = submit(client, "/signin", "/signin", {"login": login, "password": password, "next": "/"})
    assert resp.status_code == 303, resp.text[:1000]
    return client


def field_error(html: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    assert found, f"no error for {field} in:\n{html[:3000]}"
    return unescape(found.group(1))


def scalar(server: NugatServer, sql: str) -> object:
    engine = sa.create_engine(server.db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------ the first sign-up's admin


@pytest.mark.parametrize("database", DATABASES)
def test_simultaneous_first_signups_make_one_admin(
    database: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {"NUGAT_FIRST_SIGNUP_ADMIN": "true"}
    with running_server(
        tmp_path_factory.mktemp(f"first-{database}"), database, extra_env=env, workers=2
    ) as server:
        clients = [browser(server) for _ in range(12)]
        tokens = [csrf(c.get("/signup").text) for c in clients]  # each with its own CSRF cookie
        barrier = threading.Barrier(len(clients))
        statuses: list[int] = []

        def sign_up(i: int) -> None:
            form = {
                "csrf": tokens[i],
                "username": f"user{i}",
                "email": f"user{i}@example.test",
                "password": TEST_PASSWORD,
                "confirm": TEST_PASSWORD,
            }
            barrier.wait()
            statuses.append(clients[i].post("/signup", data=form).status_code)

        threads = [threading.Thread(target=sign_up, args=(i,)) for i in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        for c in clients:
            c.close()
        assert statuses == [303] * len(clients)
        assert scalar(server, "SELECT count(*) FROM accounts WHERE kind = 'user'") == len(clients)
        admins = scalar(server, "SELECT count(*) FROM accounts WHERE is_admin = true")
        assert admins == 1, f"{admins} of {len(clients)} simultaneous first sign-ups became site admins"
        # Later sign-ups are never admins.
        late = browser(server)
        form = {"username": "late", "email": "late@example.test", "password": TEST_PASSWORD}
        assert submit(late, "/signup", "/signup", {**form, "confirm": TEST_PASSWORD}).status_code == 303
        assert scalar(server, "SELECT is_admin FROM accounts WHERE name = 'late'") in (False, 0)


# ------------------------------------------------------------------------ pages on one server (SQLite)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NugatServer]:
    with started(tmp_path_factory, "accounts", "sqlite", {}) as server:
        yield server


def test_activity_does_not_tell_which_accounts_exist(server: NugatServer) -> None:
    # bob has events (a key made, a push), none of which eve may see
    bob_key = user_key(server, "bob", ["push"])
    pushed = httpx.put(
        f"{server.url}/api/v2/package",
        files={"package": ("p.nupkg", package("Bob.Private"), "application/octet-stream")},
        headers={"X-NuGet-ApiKey": bob_key},
        timeout=60,
    )
    assert pushed.status_code == 201
    ensure_user(server, "eve")
    eve = signed_in(server, "eve")
    known = eve.get("/account/activity", params={"user": "bob"})
    unknown = eve.get("/account/activity", params={"user": "nobody9"})
    assert (known.status_code, unknown.status_code) == (200, 200)
    # The same page but for the name typed into the filter field.
    assert known.text.replace("bob", "NAME") == unknown.text.replace("nobody9", "NAME")
    assert "No account named" not in unknown.text
    # A site admin, who may see every account anyway, is told about a typo.
    server.cli("user", "create", "root", "--email", "root@example.test", "--password-stdin", "--admin",
               input=TEST_PASSWORD + "\n", check=True)  # fmt: skip
    server.users.add("root")
    admin = signed_in(server, "root")
    assert admin.get("/account/activity", params={"user": "bob"}).status_code == 200
    typo = admin.get("/account/activity", params={"user": "nobody9"})
    assert typo.status_code == 404 and "No account named &#39;nobody9&#39;" in typo.text


@pytest.mark.parametrize("password", COMMON)
def test_common_passwords_are_refused_at_signup(server: NugatServer, password: str) -> None:
    name = f"weak{COMMON.index(password)}"
    form = {"username": name, "email": f"{name}@example.test", "password": password, "confirm": password}
    resp = submit(browser(server), "/signup", "/signup", form)
    assert resp.status_code == 400
    assert field_error(resp.text, "password").startswith(COMMON_MESSAGE)
    assert scalar(server, f"SELECT count(*) FROM accounts WHERE name = '{name}'") == 0  # noqa: S608


def test_common_passwords_are_refused_on_change_and_by_the_cli(server: NugatServer) -> None:
    ensure_user(server, "carl")
    carl = signed_in(server, "carl")
    form = {"current": TEST_PASSWORD, "password": "Password1!", "confirm": "Password1!"}
    resp = submit(carl, "/account", "/account/password", form)
    assert resp.status_code == 400
    assert field_error(resp.text, "password_password").startswith(COMMON_MESSAGE)
    assert signed_in(server, "carl")  # the password did not change
    proc = server.cli("user", "create", "weakcli", "--email", "weakcli@example.test", "--password-stdin",
                      input="qwertyuiop\n")  # fmt: skip
    assert proc.returncode != 0 and COMMON_MESSAGE in proc.stderr + proc.stdout


def test_changing_the_email_signs_out_the_other_sessions(server: NugatServer) -> None:
    ensure_user(server, "dora")
    here, elsewhere = signed_in(server, "dora"), signed_in(server, "dora")
    assert elsewhere.get("/account").status_code == 200
    resp = submit(here, "/account", "/account/email", {"current": TEST_PASSWORD, "email": "dora@new.test"})
    assert resp.status_code == 303 and resp.headers["location"].startswith("/account?")
    assert "you were signed out everywhere else" in here.get(resp.headers["location"]).text
    gone = elsewhere.get("/account")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/signin")
    assert here.get("/account").status_code == 200  # the session that changed it stays
