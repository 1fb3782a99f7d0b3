"""No secret in any log line, page, error message, metrics or file the servers wrote.

Runs after every other test of the run: ``tests/hostile/conftest.py`` orders it last in its process, and
``scripts/test`` runs it in a process of its own after the parallel ones. It greps everything each server
of the run wrote (its log and every file of its data folder) for every API key and password the test
helpers created, in any process (``support.server.Recorded``), and for the S3 secret the servers got.
First it drives one more server through everything that handles a secret, so the check never runs on
nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hostile.harness import Feed, started
from nugat import keys
from nugat.services.sessions import SESSION_COOKIE
from nugat.web.pages import CSRF_COOKIE
from support.s3 import CREDENTIALS as S3_CREDENTIALS
from support.server import LOG_FILES, SECRETS, TEST_PASSWORD, NugatServer, create_key
from support.zips import package

pytestmark = pytest.mark.serial  # after every other test of the run


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NugatServer]:
    with started(tmp_path_factory, "secrets", "sqlite", {}) as server:
        yield server


def variants(secret: str) -> set[str]:
    """The secret as given, and for an API key also its secret part alone."""
    parsed = keys.parse_key(secret)
    return {secret} | ({parsed.secret} if parsed else set())


def sign_in(server: NugatServer, login: str, password: str) -> tuple[httpx.Response, dict[str, str]]:
    form = httpx.get(f"{server.url}/signin", timeout=30)
    csrf = form.cookies[CSRF_COOKIE]
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    resp = httpx.post(
        f"{server.url}/signin",
        data={"login": login, "password": password, "csrf": token[1], "next": "/"},
        cookies={CSRF_COOKIE: csrf},
        timeout=30,
    )
    return resp, {SESSION_COOKIE: resp.cookies.get(SESSION_COOKIE) or ""}


def exercise(server: NugatServer) -> list[str]:
    """Everything that handles a secret, right and wrong; returns the answers that must not show one."""
    info = create_key(server, "sam", ["push", "unlist"])
    key, key_id = str(info["key"]), str(info["id"])
    feed = Feed(server, key)
    answers = []
    try:
        regenerated = server.cli("key", "regenerate", "--user", "sam", key_id, "--json", check=True)
        new_key = str(json.loads(regenerated.stdout)["key"])
        SECRETS.append(new_key)
        stale = feed.push(package("Secret.Pkg"))  # the old secret, after regeneration
        assert stale.status_code == 403
        feed.key = new_key
        assert feed.push(package("Secret.Pkg")).status_code == 201
        narrow = str(create_key(server, "sam", ["unlist"], packages=["Other.Pkg"])["key"])
        answers += [
            feed.push(package("Secret.Pkg", "2.0.0"), key=narrow).text,  # 403, names the key id
            feed.push(package("Secret.Pkg", "2.0.0"), key=new_key[:-1] + "x").text,  # typo
            feed.push(b"not a zip", key=new_key).text,
            feed.push(
                package("Secret.Pkg", "2.0.0"), key=new_key, headers={"Authorization": f"Bearer {key}"}
            ).text,
        ]
        for url in (f"/v3/index.json?apikey={new_key}", f"/v3/search?q={new_key}", f"/packages/{new_key}"):
            server.get(url)  # a key pasted into a URL: echoing it to its sender is fine, logging it is not
        wrong, _ = sign_in(server, "sam", TEST_PASSWORD + "x")
        assert wrong.status_code == 400
        right, session = sign_in(server, "sam", TEST_PASSWORD)
        assert right.status_code == 303
        for page in ("/", "/account", "/account/apikeys", "/account/packages", "/metrics"):
            resp = httpx.get(f"{server.url}{page}", cookies=session, timeout=30)
            assert resp.status_code == 200, page
            answers.append(resp.text)
    finally:
        feed.close()
    return answers


def written_files() -> list[Path]:
    """Every log of the session's servers and every file in their data folders."""
    logs = [Path(p) for p in LOG_FILES.of_the_run()]
    files = {p for p in logs if p.exists()}
    for log in logs:
        files |= {p for p in log.parent.rglob("*") if p.is_file()}
    return sorted(files)


def test_no_secret_was_written_or_shown(server: NugatServer) -> None:
    answers = exercise(server)
    server.stop()  # its log is complete

    created = SECRETS.of_the_run()
    secrets = {v for s in created for v in variants(s)} | {S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    assert TEST_PASSWORD in secrets and len(created) >= 4
    for text in answers:
        assert not [s for s in secrets if s in text], text[:500]

    files = written_files()
    assert server.log_path in files and len(files) > 10
    leaks = []
    for path in files:
        data = path.read_bytes()
        leaks += [f"{path}: {secret[:12]}..." for secret in secrets if secret.encode() in data]
    assert not leaks, "secrets written by the server:\n" + "\n".join(leaks)
