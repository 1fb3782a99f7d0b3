"""The client address cannot be chosen by the client: X-Forwarded-For is believed only from the proxies the
operator trusts (NUGAT_TRUSTED_PROXIES), and then only its rightmost address that is not such a proxy.

The server trusts forwarded headers (NUGAT_TRUST_FORWARDED=true) from one proxy, 127.0.0.1; every other
127.x.y.z source address is a client connecting directly. Requests "through the proxy" come from
127.0.0.1 with the X-Forwarded-For a proxy that appends would send: what the client wrote, then the
address the proxy saw. Sign-ins that fail from anywhere never stop the owner from signing in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from hostile.harness import DATABASES, Feed, assert_refusal, client, started
from nugat import keys
from nugat.services.accounts import FAILED_KEY_LIMIT, FAILED_SIGNIN_PER_ACCOUNT_ADDRESS
from production.helpers import running_nginx
from support.server import TEST_PASSWORD, NugatServer, create_key, ensure_user, free_port, running_server
from support.zips import incompressible, package

PROXY = "127.0.0.1"


@pytest.fixture(scope="module", params=DATABASES)
def feed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feed]:
    env = {"NUGAT_TRUST_FORWARDED": "true", "NUGAT_TRUSTED_PROXIES": PROXY}
    with started(tmp_path_factory, "address", request.param, env) as server:
        info = create_key(server, "alice", ["push", "unlist"])
        feed = Feed(server, str(info["key"]))
        yield feed
        feed.close()


def unlist(feed: Feed, key: str, address: str, forwarded_for: str | None = None) -> httpx.Response:
    """Needs only a valid key: a 404 for the unknown package proves the key was accepted."""
    headers = {"X-NuGet-ApiKey": key, **({"X-Forwarded-For": forwarded_for} if forwarded_for else {})}
    with client(address) as c:
        return c.delete(f"{feed.server.url}/api/v2/package/No.Such.Pkg/1.0.0", headers=headers)


def assert_accepted(resp: httpx.Response) -> None:
    assert resp.status_code == 404, f"{resp.status_code}: {resp.text}"
    assert resp.text == "No.Such.Pkg 1.0.0 does not exist"


def wrong_key() -> str:
    return keys.new_key(keys.new_key_id())


def test_a_forged_forwarded_for_does_not_escape_the_per_address_throttle(feed: Feed) -> None:
    statuses = [
        unlist(feed, wrong_key(), "127.0.3.1", f"198.51.100.{i}").status_code for i in range(FAILED_KEY_LIMIT)
    ]
    assert statuses == [403] * FAILED_KEY_LIMIT
    resp = unlist(feed, wrong_key(), "127.0.3.1", "198.51.100.250")
    assert_refusal(resp, 429, r"^Too many failed API key attempts from 127\.0\.3\.1; retry later$")
    # Through the proxy, the client's own part of the header changes nothing either.
    for i in range(FAILED_KEY_LIMIT):
        assert unlist(feed, wrong_key(), PROXY, f"198.51.100.{i}, 10.7.0.1").status_code == 403
    resp = unlist(feed, wrong_key(), PROXY, "198.51.100.250, 10.7.0.1")
    assert_refusal(resp, 429, r"^Too many failed API key attempts from 10\.7\.0\.1; retry later$")


def test_forging_a_victims_address_does_not_get_the_victim_throttled(feed: Feed) -> None:
    victim = "127.0.3.3"
    for _ in range(FAILED_KEY_LIMIT + 5):  # a direct client claiming to be the victim
        unlist(feed, wrong_key(), "127.0.3.2", victim)
    for _ in range(FAILED_KEY_LIMIT + 5):  # a client of the proxy claiming to be the victim
        unlist(feed, wrong_key(), PROXY, f"{victim}, 10.7.0.2")
    assert unlist(feed, wrong_key(), "127.0.3.2").status_code == 429  # the attacker is throttled...
    assert unlist(feed, feed.key, PROXY, "10.7.0.2").status_code == 429  # ...wherever it really is
    assert_accepted(unlist(feed, feed.key, victim))  # the victim, directly
    assert_accepted(unlist(feed, feed.key, PROXY, victim))  # and through the proxy


def audited_address(feed: Feed, key_id: str) -> list[str]:
    rows = feed.rows(
        "SELECT address FROM audit_events WHERE action = 'key.use_failed' AND key_id = :k ORDER BY id",
        k=key_id,
    )
    return [str(r[0]) for r in rows]


def test_the_audit_log_records_the_real_address(feed: Feed) -> None:
    key_id = str(create_key(feed.server, "audited", ["push"])["id"])
    unlist(feed, keys.new_key(key_id), "127.0.3.4", "203.0.113.9")
    unlist(feed, keys.new_key(key_id), PROXY, "203.0.113.9, 10.7.0.4")
    unlist(feed, keys.new_key(key_id), PROXY, "[2001:db8::1]:443, ::ffff:10.7.0.5")
    unlist(feed, keys.new_key(key_id), PROXY, "not an address, 10.7.0.6")
    unlist(feed, keys.new_key(key_id), PROXY, "10.7.0.7, not an address")
    assert audited_address(feed, key_id) == ["127.0.3.4", "10.7.0.4", "10.7.0.5", "10.7.0.6", PROXY]


def sign_in(server: NugatServer, login: str, password: str, address: str, forwarded_for: str = "") -> int:
    """The status of a sign-in from ``address`` (303 when signed in), with the form's CSRF token."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    with client(address) as c:
        page = c.get(f"{server.url}/signin", headers=headers)
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        form = {"csrf": token.group(1), "login": login, "password": password}
        resp = c.post(f"{server.url}/signin", data=form, headers=headers)
        assert resp.status_code != 303 or "nugat_session" in resp.cookies
        return resp.status_code


def test_wrong_passwords_from_anywhere_do_not_lock_the_owner_out(feed: Feed) -> None:
    """Ten wrong passwords used to lock the account for everyone; now they refuse only where they came
    from, even when the guesser claims the owner's address. (The per-address limit, and forging against
    it, are tested in tests/web/test_page_security.py, where a password check costs less.)"""
    server = feed.server
    ensure_user(server, "owner")
    for _ in range(FAILED_SIGNIN_PER_ACCOUNT_ADDRESS):
        assert sign_in(server, "owner", "not the password", "127.0.4.100", "127.0.4.200") == 400
    assert sign_in(server, "owner", TEST_PASSWORD, "127.0.4.100") == 429  # the guesser is refused there
    assert sign_in(server, "owner", TEST_PASSWORD, "127.0.4.200") == 303  # the owner signs in


def test_behind_the_documented_nginx_the_client_cannot_write_its_address(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """docs/nginx/nugat.conf overwrites X-Forwarded-For: a client on the proxies' own network (here the
    loopback, trusted by default) cannot put another address in front of its own."""
    port = free_port()
    env = {"NUGAT_TRUST_FORWARDED": "true"}
    with (
        running_server(tmp_path_factory.mktemp("nginx-address"), extra_env=env) as nugat,
        running_nginx(tmp_path_factory.mktemp("nginx"), nugat, port) as url,
    ):
        key_id = str(create_key(nugat, "behind", ["push"])["id"])
        headers = {"X-NuGet-ApiKey": keys.new_key(key_id), "X-Forwarded-For": "203.0.113.9"}
        with client("127.0.5.1") as c:
            assert c.delete(f"{url}/api/v2/package/No.Such.Pkg/1.0.0", headers=headers).status_code == 403
        feed = Feed(nugat, "")
        try:
            assert audited_address(feed, key_id) == ["127.0.5.1"]
        finally:
            feed.close()
        # The include's 64 KiB bound on page forms leaves pushes alone, at /api/v2/package and at /api/v2/.
        key = str(create_key(nugat, "behind", ["push"])["key"])
        for path, package_id in (("/api/v2/package", "Behind.One"), ("/api/v2/", "Behind.Two")):
            body = package(package_id, payload=incompressible(200 * 1024))
            resp = httpx.put(f"{url}{path}", content=body, headers={"X-NuGet-ApiKey": key}, timeout=60)
            assert resp.status_code == 201, f"{path}: {resp.status_code} {resp.text[:300]}"
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert httpx.post(f"{url}/signin", content=b"a" * (65 * 1024), headers=form).status_code == 413
