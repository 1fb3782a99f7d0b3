"""``/read-access`` is meant for nginx's auth_request, yet any client can call it (directly, and through
``location /`` of docs/nginx/nugat-private.conf). Its 403 for a private organization's id against 204 for
an id never pushed then tells an outsider which private ids exist, which every feed URL hides (404)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from functional.test_feed_http import nupkg
from nugat.app import create_app
from nugat.core import Core
from nugat.settings import Settings

PRIVATE, NEVER = "Contoso.Secret", "Nope.Nothing"


@pytest.fixture(params=["public", "users"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    settings = Settings(data_dir=tmp_path, secret_key="oracle", read_access=request.param)
    core = Core(settings)
    core.db.upgrade()
    for name in ("alice", "bob"):
        core.accounts.create_user(name, f"{name}@example.test", None)
    core.orgs.create("contoso", "alice")
    _, push = core.accounts.create_key("alice", "org push", ["push"], ["*"], [], 30, "contoso")
    _, outsider = core.accounts.create_key("bob", "restore", ["read"], ["*"], [], 30)
    upload = tmp_path / "upload.nupkg"
    upload.write_bytes(nupkg(PRIVATE, "1.0.0"))
    core.packages.push(upload, core.accounts.verify_key(push, "127.0.0.1")[0])
    core.orgs.set_private("contoso", True)
    core.close()
    with TestClient(create_app(settings), base_url="http://feed.test") as client:
        yield client, outsider


@pytest.mark.parametrize("credential", ["anonymous", "outsider read key"])
def test_read_access_does_not_tell_a_private_id_from_one_never_pushed(
    site: tuple[TestClient, str], credential: str
) -> None:
    client, outsider = site
    auth = ("any", outsider) if credential != "anonymous" else None
    answers = {
        package_id: client.get(
            "/read-access",
            headers={"x-original-uri": f"/v3/flatcontainer/{package_id.lower()}/index.json"},
            auth=auth,
        ).status_code
        for package_id in (PRIVATE, NEVER)
    }
    # Every feed URL answers both alike (404); the auth_request endpoint must not answer them apart.
    assert answers[PRIVATE] == answers[NEVER], answers
