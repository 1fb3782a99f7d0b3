"""Abuse limits: failed API keys throttled per client address and per key id (never locking out the key's
holder), failed read credentials per client address (also as nginx's ``/read-access`` sees them), and
pushes limited per key per hour. Each client address is a distinct 127.x.y.z source address.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from hostile.harness import DATABASES, Feed, assert_refusal, client, started
from nugat import keys
from support.server import create_key
from support.zips import package

PUSH_LIMIT = 3
FAILED_KEY_LIMIT = 30  # nugat.services.accounts.FAILED_KEY_LIMIT, per minute
FAILED_READ_LIMIT = 30  # nugat.services.readers.FAILED_READ_LIMIT, per minute
PROXY = "127.0.0.9"  # the one trusted proxy: its X-Forwarded-For is believed


@pytest.fixture(scope="module", params=DATABASES)
def feed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feed]:
    env = {
        "NUGAT_PUSH_LIMIT_PER_HOUR": str(PUSH_LIMIT),
        "NUGAT_TRUST_FORWARDED": "true",
        "NUGAT_TRUSTED_PROXIES": PROXY,
    }
    with started(tmp_path_factory, "throttle", request.param, env) as server:
        info = create_key(server, "alice", ["push", "unlist"])
        feed = Feed(server, str(info["key"]))
        yield feed
        feed.close()


def unlist(feed: Feed, key: str, address: str) -> httpx.Response:
    """Needs only a valid key: a 404 for the unknown package proves the key was accepted."""
    with client(address) as c:
        return c.delete(
            f"{feed.server.url}/api/v2/package/No.Such.Pkg/1.0.0", headers={"X-NuGet-ApiKey": key}
        )


def assert_accepted(resp: httpx.Response) -> None:
    assert resp.status_code == 404, f"{resp.status_code}: {resp.text}"
    assert resp.text == "No.Such.Pkg 1.0.0 does not exist"


def test_a_burst_of_wrong_keys_from_one_address_is_throttled(feed: Feed) -> None:
    attacker = "127.0.0.31"
    guesses = [keys.new_key(keys.new_key_id()) for _ in range(300)]  # well formed, for key ids nobody has
    with ThreadPoolExecutor(8) as pool:  # 300 guesses as fast as 8 connections go
        answers = list(pool.map(lambda guess: unlist(feed, guess, attacker), guesses))
    statuses = Counter(r.status_code for r in answers)
    assert set(statuses) == {403, 429}, statuses
    # Concurrent requests may slip a few guesses past the count, never many.
    assert FAILED_KEY_LIMIT <= statuses[403] <= FAILED_KEY_LIMIT + 8, statuses
    refused = next(r for r in answers if r.status_code == 429)
    assert_refusal(refused, 429, rf"^Too many failed API key attempts from {attacker}; retry later$")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # The attacker's address stays blocked, even with the right key...
    assert unlist(feed, feed.key, attacker).status_code == 429
    # ...while the key's holder, elsewhere, is not affected.
    assert_accepted(unlist(feed, feed.key, "127.0.0.32"))
    log = feed.server.log_path.read_text(errors="replace")
    assert "Traceback" not in log, "a concurrent first failure raced (IntegrityError?)"


def test_guessing_one_key_from_many_addresses_is_throttled_per_key_id(feed: Feed) -> None:
    holder = create_key(feed.server, "bob", ["push", "unlist"])
    key_id = str(holder["id"])
    statuses = []
    for i in range(FAILED_KEY_LIMIT + 5):  # one guess per address: no address limit is reached
        resp = unlist(feed, keys.new_key(key_id), f"127.0.1.{i + 1}")
        statuses.append(resp.status_code)
    assert statuses == [403] * FAILED_KEY_LIMIT + [429] * 5
    assert_refusal(resp, 429, rf"^Too many failed attempts for API key {key_id}; retry later$")
    assert resp.headers["retry-after"] == "60"
    # Only failures are refused: the holder of the right secret is never locked out, from anywhere.
    assert_accepted(unlist(feed, str(holder["key"]), "127.0.2.1"))
    assert_accepted(unlist(feed, str(holder["key"]), "127.0.1.1"))


def test_pushes_are_limited_per_key_per_hour(feed: Feed) -> None:
    limited = str(create_key(feed.server, "carol", ["push"])["key"])
    for i in range(PUSH_LIMIT):
        assert feed.push(package(f"Limited.Pkg{i}"), key=limited).status_code == 201
    before = feed.snapshot()
    resp = feed.push(package("Limited.PkgX"), key=limited)
    assert_refusal(
        resp, 429, rf"has pushed {PUSH_LIMIT} packages this hour, the limit; retry in \d+ seconds$"
    )
    assert 1 <= int(resp.headers["retry-after"]) <= 3600
    feed.assert_nothing_stored(before)
    # The limit is the key's: another key of the same user pushes on.
    other = str(create_key(feed.server, "carol", ["push"])["key"])
    assert feed.push(package("Limited.PkgX"), key=other).status_code == 201


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"ci:{key}".encode()).decode()}


def read(feed: Feed, key: str, address: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """A flat-container read with ``key`` as the source's password (a 404: the key was accepted)."""
    with client(address) as c:
        return c.get(
            f"{feed.server.url}/v3/flatcontainer/no.such.pkg/index.json",
            headers={**basic(key), **(headers or {})},
        )


def read_access(feed: Feed, key: str, address: str, forwarded_for: str) -> httpx.Response:
    """nginx's ``auth_request`` as docs/nginx/nugat-private.conf makes it."""
    headers = {
        **basic(key),
        "X-Original-URI": "/v3/flatcontainer/no.such.pkg/index.json",
        "X-Forwarded-For": forwarded_for,
    }
    with client(address) as c:
        return c.get(f"{feed.server.url}/read-access", headers=headers)


def test_a_burst_of_wrong_read_credentials_from_one_address_is_throttled(feed: Feed) -> None:
    attacker = "127.0.0.41"
    reader = str(create_key(feed.server, "dave", ["read"])["key"])
    guesses = [keys.new_key(keys.new_key_id()) for _ in range(120)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda guess: read(feed, guess, attacker), guesses))
    statuses = Counter(r.status_code for r in answers)
    assert set(statuses) == {401, 429}, statuses
    assert FAILED_READ_LIMIT <= statuses[401] <= FAILED_READ_LIMIT + 8, statuses
    refused = next(r for r in answers if r.status_code == 429)
    assert_refusal(refused, 429, rf"^Too many failed read credentials from {attacker}; retry later$")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "www-authenticate" not in refused.headers  # the client is not to ask for other credentials now
    # The address stays refused, even with a good key...
    assert read(feed, reader, attacker).status_code == 429
    # ...while the same key from elsewhere reads, and anonymous reads of the public feed go on.
    assert read(feed, reader, "127.0.0.42").status_code == 404
    with client(attacker) as c:
        assert c.get(f"{feed.server.url}/v3/flatcontainer/no.such.pkg/index.json").status_code == 404


def test_the_same_refused_read_credential_is_counted_once(feed: Feed) -> None:
    """A restore with a stale key repeats it hundreds of times: its address is not refused for that."""
    stale = keys.new_key(keys.new_key_id())
    statuses = Counter(read(feed, stale, "127.0.0.43").status_code for _ in range(FAILED_READ_LIMIT + 10))
    assert statuses == {401: FAILED_READ_LIMIT + 10}


def test_read_access_counts_failures_against_the_address_nginx_forwards(feed: Feed) -> None:
    reader = str(create_key(feed.server, "erin", ["read"])["key"])
    client_address = "203.0.113.7"
    for _ in range(FAILED_READ_LIMIT):
        assert read_access(feed, keys.new_key(keys.new_key_id()), PROXY, client_address).status_code == 401
    # Past the limit /read-access still says 401 (auth_request knows no 429), and nginx hands the request
    # itself to nugat, which refuses it with 429 for the address nginx forwards.
    assert read_access(feed, keys.new_key(keys.new_key_id()), PROXY, client_address).status_code == 401
    assert read_access(feed, reader, PROXY, client_address).status_code == 401
    throttled = read(feed, reader, PROXY, {"X-Forwarded-For": client_address})
    assert_refusal(throttled, 429, rf"^Too many failed read credentials from {client_address}; retry later$")
    # Other clients behind the same proxy read on.
    assert read_access(feed, reader, PROXY, "203.0.113.8").status_code == 204  # nginx looks for the file
    # Only a trusted proxy may ask /read-access (its answers tell private ids apart): any other peer gets
    # the 404 of an unknown path, and nothing is counted.
    for _ in range(FAILED_READ_LIMIT + 1):
        assert (
            read_access(feed, keys.new_key(keys.new_key_id()), "127.0.0.44", "203.0.113.9").status_code == 404
        )
    assert read_access(feed, reader, "127.0.0.44", "203.0.113.9").status_code == 404
    assert read(feed, reader, "127.0.0.44").status_code == 404  # let in: the id does not exist
