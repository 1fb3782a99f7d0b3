"""A private nugat (``NUGAT_READ_ACCESS=users``) behind nginx with docs/nginx/nugat-private.conf: nginx
serves package files only after nugat's ``/read-access`` said yes (auth_request, answers kept 1 s); every
refusal is nugat's own answer; the real NuGet client restores through it with a read key."""

from __future__ import annotations

import base64
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from nugat import keys
from nugat.services.readers import FAILED_READ_LIMIT
from production.helpers import push, running_nginx
from support.nugetexe import NuGetClient, installed_packages
from support.server import NugatServer, create_key, free_port, running_server
from support.zips import package

pytestmark = pytest.mark.e2e

PRIVATE_INCLUDE = Path(__file__).resolve().parents[2] / "docs" / "nginx" / "nugat-private.conf"
NGINX_ETAG = re.compile(r'^(W/)?"[0-9a-f]+-[0-9a-f]+"$')  # nginx's "<mtime>-<size>": a file nginx served
BEHIND_NGINX_DELAY = 2.0  # docs/nginx/nugat-private.conf: 1 s in nginx's cache, 1 s in nugat's


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NugatServer, str]]:
    port = free_port()
    nginx_folder = tmp_path_factory.mktemp("nginx-private")
    env = {
        "NUGAT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "NUGAT_TRUST_FORWARDED": "true",
        "NUGAT_READ_ACCESS": "users",
    }
    with (
        running_server(tmp_path_factory.mktemp("private-behind-nginx"), extra_env=env) as nugat,
        running_nginx(nginx_folder, nugat, port, PRIVATE_INCLUDE) as url,
    ):
        pusher = create_key(nugat, "alice", ["push"])["key"]
        for package_id in ("Guard.Lib", "Other.Lib"):
            assert push(nugat, pusher, package(package_id, "1.0.0")).status_code == 201
        yield nugat, url
        cached = [p.read_bytes() for p in (nginx_folder / "reads").rglob("*") if p.is_file()]
        assert cached, "nginx kept no answer of /read-access"
        assert not any(b"Basic " in c or b"nugat_" in c for c in cached)  # never a credential on disk


def test_nginx_serves_files_only_to_readers_nugat_lets_in(proxied: tuple[NugatServer, str]) -> None:
    nugat, url = proxied
    key = create_key(nugat, "alice", ["read"], ["Guard.*"])["key"]
    flat, nupkg = (
        "/v3/flatcontainer/guard.lib/index.json",
        "/v3/flatcontainer/guard.lib/1.0.0/guard.lib.1.0.0.nupkg",
    )

    anonymous = httpx.get(url + flat)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == 'Basic realm="nugat"'
    assert anonymous.text.startswith("This feed needs credentials")  # nugat's own answer

    for path in (flat, nupkg, "/v3/registration/guard.lib/index.json"):
        allowed = httpx.get(url + path, auth=("any", key))
        assert allowed.status_code == 200 and NGINX_ETAG.match(allowed.headers["etag"]), path
        assert allowed.headers["cache-control"] == "private, no-cache"
    assert httpx.get(url + flat, auth=("any", key)).json() == {"versions": ["1.0.0"]}

    hidden = httpx.get(url + "/v3/flatcontainer/other.lib/index.json", auth=("any", key))
    never = httpx.get(url + "/v3/flatcontainer/never.lib/index.json", auth=("any", key))
    assert hidden.status_code == never.status_code == 404 and hidden.text == never.text

    wrong = httpx.get(url + flat, auth=("any", key[:-3] + "aaa"))
    assert wrong.status_code == 401 and "not a nugat API key" in wrong.headers["x-nuget-warning"]


def test_a_revoked_key_stops_reading_through_nginx_within_the_stated_delay(
    proxied: tuple[NugatServer, str],
) -> None:
    nugat, url = proxied
    info = create_key(nugat, "alice", ["read"], ["Guard.*"])
    flat = f"{url}/v3/flatcontainer/guard.lib/index.json"
    assert httpx.get(flat, auth=("any", info["key"])).status_code == 200
    nugat.cli("key", "revoke", "--owner", "alice", info["id"], check=True)
    time.sleep(BEHIND_NGINX_DELAY + 0.05)
    refused = httpx.get(flat, auth=("any", info["key"]))
    assert refused.status_code == 401 and f"API key {info['id']} was revoked" in refused.text


def test_nuget_exe_restores_through_nginx_with_a_read_key(
    proxied: tuple[NugatServer, str], nuget_exe: Path, tmp_path: Path, build_package: Callable[..., Path]
) -> None:
    nugat, url = proxied
    key = create_key(nugat, "alice", ["read"], ["Guard.*"])["key"]
    nuget = NuGetClient(nuget_exe, tmp_path / "home")
    source = ["-Name", "x", "-Source", f"{url}/v3/index.json", "-Username", "any", "-Password", key]
    added = nuget.run(
        "sources", "add", *source, "-StorePasswordInClearText", "-ConfigFile", str(nuget.config_file)
    )
    assert added.ok, added.output
    out = tmp_path / "out"
    result = nuget.install("Guard.Lib", "1.0.0", source="x", output_dir=out)
    assert result.ok, result.output
    assert installed_packages(out) == {"Guard.Lib.1.0.0"}


def test_while_documents_are_stale_nginx_leaves_them_to_nugat(proxied: tuple[NugatServer, str]) -> None:
    """After a crash of the machine nugat rebuilds documents while serving, with ``.stale-documents`` in
    the storage folder (README, "How a crash is recovered"): meanwhile nginx sends document requests to
    nugat, which still asks for credentials; packages are served by nginx after ``/read-access``."""
    nugat, url = proxied
    key = create_key(nugat, "alice", ["read"], ["Guard.*"])["key"]
    marker = nugat.data_dir / "storage" / ".stale-documents"
    documents = ("/v3/flatcontainer/guard.lib/index.json", "/v3/registration/guard.lib/index.json")
    marker.write_text("")
    try:
        for path in documents:
            assert httpx.get(url + path).status_code == 401, path
            answer = httpx.get(url + path, auth=("any", key))
            assert answer.status_code == 200 and not NGINX_ETAG.match(answer.headers["etag"]), path
        nupkg = httpx.get(url + "/v3/flatcontainer/guard.lib/1.0.0/guard.lib.1.0.0.nupkg", auth=("any", key))
        assert nupkg.status_code == 200 and NGINX_ETAG.match(nupkg.headers["etag"])
    finally:
        marker.unlink()
    for path in documents:
        assert NGINX_ETAG.match(httpx.get(url + path, auth=("any", key)).headers["etag"]), path


@pytest.mark.parametrize(
    "path",
    [
        "/v3/flatcontainer/guard.lib/../other.lib/index.json",
        "/v3/flatcontainer/guard.lib/%2e%2e/other.lib/index.json",
        "/v3/flatcontainer/guard.lib/..%2fother.lib/index.json",
        "/v3/flatcontainer//guard.lib/../other.lib/index.json",
        "/v3/registration/guard.lib/../other.lib/index.json",
    ],
)
def test_dot_segments_do_not_borrow_another_ids_permission(
    proxied: tuple[NugatServer, str], path: str
) -> None:
    """nginx serves the file of the normalized path: ``/read-access`` must decide on that path, not on
    the one the client wrote (a key for Guard.* must not read Other.Lib through ``guard.lib/../``)."""
    nugat, url = proxied
    key = create_key(nugat, "alice", ["read"], ["Guard.*"])["key"]
    host, port = url.removeprefix("http://").split(":")
    credential = base64.b64encode(f"any:{key}".encode()).decode()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {credential}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert status in (400, 404), answer[:300]
    assert b'"1.0.0"' not in answer


def test_a_flood_of_wrong_keys_through_nginx_is_throttled_for_its_client_only(
    proxied: tuple[NugatServer, str],
) -> None:
    """``/read-access`` counts refusals against the address nginx forwards (its own location must set
    ``X-Forwarded-For``); past the limit nugat answers the request itself with 429."""
    nugat, url = proxied
    flat = f"{url}/v3/flatcontainer/guard.lib/index.json"
    key = create_key(nugat, "alice", ["read"], ["Guard.*"])["key"]  # new: no answer of nginx's cache for it

    def get(address: str, password: str) -> httpx.Response:
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(transport=transport, timeout=30) as c:
            return c.get(flat, auth=("any", password))

    attacker = "127.0.0.77"
    statuses = [get(attacker, keys.new_key(keys.new_key_id())).status_code for _ in range(FAILED_READ_LIMIT)]
    assert statuses == [401] * FAILED_READ_LIMIT  # each counted once, though nugat saw it twice
    refused = get(attacker, keys.new_key(keys.new_key_id()))
    assert refused.status_code == 429, refused.text
    assert refused.text == f"Too many failed read credentials from {attacker}; retry later"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert get(attacker, key).status_code == 429
    # Another client behind the same nginx is let in by nginx (with a key of its own: nginx keeps the
    # answer of /read-access for 1 s by URL and credential, whoever asked).
    other = create_key(nugat, "alice", ["read"], ["Guard.*"])["key"]
    served = get("127.0.0.78", other)
    assert served.status_code == 200 and NGINX_ETAG.match(served.headers["etag"])


def test_a_documents_previous_version_is_never_served(proxied: tuple[NugatServer, str]) -> None:
    """A rewrite keeps a document's previous version beside it (``.<name>.old``, storage/filesystem.py):
    nginx never serves one, even to a reader of the id."""
    nugat, url = proxied
    pusher = create_key(nugat, "alice", ["push"])["key"]
    assert push(nugat, pusher, package("Guard.Spare", "1.0.0")).status_code == 201
    assert push(nugat, pusher, package("Guard.Spare", "1.1.0")).status_code == 201
    key = create_key(nugat, "alice", ["read"], ["Guard.*"])["key"]
    current = httpx.get(f"{url}/v3/registration/guard.spare/index.json", auth=("any", key))
    assert current.status_code == 200 and NGINX_ETAG.match(current.headers["etag"])  # the document: served
    spares = list((nugat.data_dir / "storage/v3").rglob("*guard.spare*/.*.old"))
    assert spares
    for spare in spares:
        answer = httpx.get(f"{url}/{spare.relative_to(nugat.data_dir / 'storage')}", auth=("any", key))
        assert answer.status_code == 404 and "etag" not in answer.headers, spare
