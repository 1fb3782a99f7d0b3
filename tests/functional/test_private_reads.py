"""Every read route, V2 included, for every kind of reader, in both site modes, on SQLite and PostgreSQL.

A table: each route says how a response shows the id as found or not; each reader (anonymous, a read key
covering the id, a read key covering other ids, a member's session, an outsider's session) and each site
mode (``NUGAT_READ_ACCESS``) says what it should see of a public id and of an id of a private organization.
An id a reader may not see must answer exactly as an id never pushed does.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import fromstring

import httpx
import pytest
from starlette.testclient import TestClient

from functional.test_feed_http import nupkg
from nugat.app import create_app
from nugat.core import Core
from nugat.services.sessions import Sessions
from nugat.settings import Settings
from nugat.web.pages import SESSION_COOKIE
from support.server import postgres_database

PUBLIC, PRIVATE, NEVER = "Acme.Lib", "Contoso.Secret", "Nope.Nothing"
ATOM_ENTRY = "{http://www.w3.org/2005/Atom}entry"


@dataclass
class Feed:
    client: TestClient
    public_site: bool
    keys: dict[str, str]  # reader -> API key (the key readers)
    cookies: dict[str, str]  # reader -> session token (the session readers)

    def get(self, path: str, reader: str) -> httpx.Response:
        auth = ("any", self.keys[reader]) if reader in self.keys else None
        self.client.cookies.clear()
        if reader in self.cookies:
            self.client.cookies.set(SESSION_COOKIE, self.cookies[reader])
        return self.client.get(path, auth=auth, follow_redirects=False)


def _push(core: Core, tmp: Path, key: str, package_id: str, deps: str = "") -> None:
    grant, _ = core.accounts.verify_key(key, "127.0.0.1")
    upload = tmp / "upload.nupkg"
    upload.write_bytes(nupkg(package_id, "1.0.0", description=f"About {package_id}", tags=deps))
    core.packages.push(upload, grant)


@pytest.fixture(scope="module", params=["sqlite-public", "sqlite-users", "postgres-public", "postgres-users"])
def feed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feed]:
    database, _, mode = request.param.partition("-")
    tmp = tmp_path_factory.mktemp(request.param)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if database == "postgres" else None
        settings = Settings(data_dir=tmp, database_url=url, secret_key="private-reads", read_access=mode)
        core = Core(settings)
        core.db.upgrade()
        for name in ("alice", "bob", "carol"):
            core.accounts.create_user(name, f"{name}@example.test", None)
        core.orgs.create("contoso", "alice")
        _, bob = core.accounts.create_key("bob", "push", ["push"], ["*"], [], 30)
        _, contoso = core.accounts.create_key("alice", "org push", ["push"], ["*"], [], 30, "contoso")
        _push(core, tmp, bob, PUBLIC)
        _push(core, tmp, contoso, PRIVATE)
        core.orgs.set_private("contoso", True)
        keys = {
            "covering key": core.accounts.create_key(
                "alice", "r1", ["read"], ["Acme.*", "Contoso.*"], [], 30
            )[1],
            "other ids key": core.accounts.create_key("alice", "r2", ["read"], [], ["Other.Thing"], 30)[1],
            "push key": bob,
            # an outsider's key that may push and unlist anything: to probe the refusals
            "outsider key": core.accounts.create_key("carol", "w", ["push", "unlist"], ["*"], [], 30)[1],
        }
        sessions = Sessions(core.db, settings.server_secret())
        cookies = {}
        with core.db.reading() as s:
            from nugat.services.orgs import account_named

            cookies["member session"] = sessions.start(account_named(s, "alice").id)
            cookies["outsider session"] = sessions.start(account_named(s, "carol").id)
        core.close()
        # from a loopback address: a trusted proxy by default, which /read-access answers (nginx's ask)
        client = stack.enter_context(
            TestClient(create_app(settings), base_url="http://feed.test", client=("127.0.0.1", 50000))
        )
        yield Feed(client, mode == "public", keys, cookies)


def _status(found: int, absent: int) -> Callable[[httpx.Response], bool]:
    def shown(response: httpx.Response) -> bool:
        assert response.status_code in (found, absent), response.text
        return response.status_code == found

    return shown


def _json(pick: Callable[[dict], bool]) -> Callable[[httpx.Response], bool]:  # type: ignore[type-arg]
    def shown(response: httpx.Response) -> bool:
        assert response.status_code == 200, response.text
        return pick(response.json())

    return shown


def _v3_search(package_id: str) -> Callable[[dict], bool]:  # type: ignore[type-arg]
    def found(doc: dict) -> bool:  # type: ignore[type-arg]
        assert doc["totalHits"] == len(doc["data"])  # nothing hidden is counted
        return any(d["id"] == package_id for d in doc["data"])

    return found


def _atom(response: httpx.Response) -> bool:
    assert response.status_code == 200, response.text
    return len(fromstring(response.content).findall(ATOM_ENTRY)) > 0


def _count(response: httpx.Response) -> bool:
    assert response.status_code == 200, response.text
    return int(response.text) > 0


def _html_link(package_id: str) -> Callable[[httpx.Response], bool]:
    def shown(response: httpx.Response) -> bool:
        assert response.status_code == 200, response.text
        return f'href="/packages/{package_id}"' in response.text

    return shown


Probe = Callable[[httpx.Response], bool]


def routes(package_id: str) -> list[tuple[str, str, Probe]]:
    """(kind, path, whether the response shows ``package_id``): kind "feed" or "page"."""
    low = package_id.lower()
    flat = f"/v3/flatcontainer/{low}"
    return [
        ("feed", f"{flat}/index.json", _status(200, 404)),
        ("feed", f"{flat}/1.0.0/{low}.1.0.0.nupkg", _status(200, 404)),
        ("feed", f"{flat}/1.0.0/{low}.nuspec", _status(200, 404)),
        ("feed", f"/v3/registration/{low}/index.json", _status(200, 404)),
        ("feed", f"/v3/registration-semver2/{low}/index.json", _status(200, 404)),
        ("feed", f"/v3/registration/{low}/1.0.0.json", _status(200, 404)),
        ("feed", f"/v3/search?q={package_id}", _json(_v3_search(package_id))),
        ("feed", f"/v3/search?q={package_id.split('.')[0]}&take=0", _json(lambda d: d["totalHits"] > 0)),
        ("feed", f"/v3/autocomplete?q={low}", _json(lambda d: package_id in d["data"])),
        ("feed", f"/v3/autocomplete?id={package_id}", _json(lambda d: d["data"] == ["1.0.0"])),
        ("feed", f"/api/v2/FindPackagesById()?id='{package_id}'", _atom),
        ("feed", f"/api/v2/FindPackagesById()/$count?id='{package_id}'", _count),
        ("feed", f"/api/v2/Packages(Id='{package_id}',Version='1.0.0')", _status(200, 404)),
        ("feed", f"/api/v2/Search()?searchTerm='{package_id}'", _atom),
        ("feed", f"/api/v2/Search()/$count?searchTerm='{package_id}'", _count),
        ("feed", f"/api/v2/Packages()?$filter=tolower(Id) eq '{low}'", _atom),
        ("feed", f"/api/v2/Packages()/$count?$filter=IsLatestVersion&searchTerm='{package_id}'", _count),
        ("feed", f"/api/v2/GetUpdates()?packageIds='{package_id}'&versions='0.1.0'", _atom),
        ("feed", f"/api/v2/GetUpdates()/$count?packageIds='{package_id}'&versions='0.1.0'", _count),
        ("feed", f"/api/v2/package/{package_id}", _status(302, 404)),
        ("page", f"/packages/{package_id}", _status(200, 404)),
        ("page", f"/packages/{package_id}/1.0.0", _status(200, 404)),
        ("page", f"/packages?q={package_id}", _html_link(package_id)),
    ]


KEY_READERS = ("anonymous", "covering key", "other ids key")
SESSION_READERS = ("anonymous", "member session", "outsider session")
READERS = ("anonymous", "covering key", "other ids key", "member session", "outsider session")


def expected(kind: str, reader: str, package_id: str, public_site: bool) -> str:
    """ "found", "absent" (as an id never pushed), "challenge" (401) or "sign in" (a redirect)."""
    # Feeds take keys (a session cookie is no credential there); pages take sessions (and ignore keys).
    effective = reader if reader in (KEY_READERS if kind == "feed" else SESSION_READERS) else "anonymous"
    if effective == "anonymous" and not public_site:
        return "challenge" if kind == "feed" else "sign in"
    if package_id == PRIVATE:
        return "found" if effective in ("covering key", "member session") else "absent"
    if public_site or effective != "other ids key":
        return "found"
    return "absent"


CASES = [
    (package_id, index, reader)
    for package_id in (PUBLIC, PRIVATE)
    for index in range(len(routes(package_id)))
    for reader in READERS
]


@pytest.mark.parametrize(("package_id", "index", "reader"), CASES)
def test_every_read_route_for_every_reader(feed: Feed, package_id: str, index: int, reader: str) -> None:
    kind, path, shown = routes(package_id)[index]
    want = expected(kind, reader, package_id, feed.public_site)
    response = feed.get(path, reader)
    if want == "challenge":
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Basic realm="nugat"'
        assert response.headers["x-nuget-warning"] == response.text
        assert response.text.startswith("This feed needs credentials")
        return
    if want == "sign in":
        assert response.status_code == 303
        assert response.headers["location"].startswith("/signin?next=")
        return
    assert shown(response) is (want == "found"), (path, reader, response.status_code)
    if want == "absent":  # byte for byte as for an id never pushed
        _, never_path, _ = routes(NEVER)[index]
        never = feed.get(never_path, reader)
        assert response.status_code == never.status_code
        if response.status_code == 404:
            assert response.text.replace(package_id, NEVER) == never.text
            skip = {"date", "content-length", "set-cookie"}
            assert {k for k in response.headers if k not in skip} == {
                k for k in never.headers if k not in skip
            }
    keyed = reader in feed.keys
    if want == "found" and kind == "feed" and (keyed or not feed.public_site or package_id == PRIVATE):
        # a shared cache must not hand what a credential read to someone else
        assert response.headers.get("cache-control", "").startswith(("private", "no-cache")), path


def test_the_service_index_and_v2_service_documents_need_no_credentials(feed: Feed) -> None:
    for path in ("/v3/index.json", "/api/v2/$metadata"):
        assert feed.get(path, "anonymous").status_code == 200


@pytest.mark.parametrize("path", ["/api/v2/", "/api/v2"])
def test_the_v2_service_document_asks_for_credentials_on_a_users_site(feed: Feed, path: str) -> None:
    """NuGet 2.x takes a source's credentials only from a 401 to its first GET, of the service document;
    a 401 to a later query fails it (tests/e2e/test_private_feed_with_nuget_2_8_7.py)."""
    anonymous = feed.get(path, "anonymous")
    if feed.public_site:
        assert anonymous.status_code == 200
    else:
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == 'Basic realm="nugat"'
        assert "This feed needs credentials" in anonymous.headers["x-nuget-warning"]
    for reader in ("covering key", "other ids key"):
        answer = feed.get(path, reader)
        assert answer.status_code == 200, reader
        assert b'<collection href="Packages">' in answer.content
    if not feed.public_site:  # a key that does not read, as on every read
        assert feed.get(path, "push key").status_code == 403


@pytest.mark.parametrize("package_id", [PUBLIC, PRIVATE])
def test_a_v2_download_with_a_credential_is_the_package_itself(feed: Feed, package_id: str) -> None:
    """Not a redirect: NuGet 2.x on mono follows one without the credentials, and fails on its 401."""
    low = package_id.lower()
    flat = feed.get(f"/v3/flatcontainer/{low}/1.0.0/{low}.1.0.0.nupkg", "covering key")
    assert flat.status_code == 200
    for path in (f"/api/v2/package/{package_id}/1.0.0", f"/api/v2/package/{package_id}/1.0"):
        answer = feed.get(path, "covering key")
        assert (answer.status_code, answer.content) == (200, flat.content), path
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["cache-control"] == "private, no-cache"
        if expected("feed", "other ids key", package_id, feed.public_site) == "found":
            continue
        # to a key not covering it, byte for byte an id never pushed
        hidden, never = (
            feed.get(path.replace(package_id, other), "other ids key") for other in (package_id, NEVER)
        )
        assert (
            (hidden.status_code, hidden.content) == (never.status_code, never.content) == (404, b"Not found")
        )
        assert hidden.headers.get("cache-control") == never.headers.get("cache-control")


@pytest.mark.parametrize("path", ["/v3/flatcontainer/acme.lib/index.json", "/v3/search?q=acme"])
def test_a_wrong_or_unusable_credential_is_refused_with_its_reason(feed: Feed, path: str) -> None:
    cases = [
        (("any", "not-a-key"), 401, "The API key is not a nugat API key: it is mistyped or cut short"),
    ]
    for auth, status, reason in cases:
        response = feed.client.get(path, auth=auth)
        assert (response.status_code, response.text) == (status, reason)
        assert response.headers["x-nuget-warning"] == reason
        assert response.headers["www-authenticate"] == 'Basic realm="nugat"'
    empty = feed.client.get(path, auth=("any", ""))  # what mono sends for a source without credentials
    assert empty.status_code == feed.get(path, "anonymous").status_code == (200 if feed.public_site else 401)
    push_only = feed.get(path, "push key")
    assert push_only.status_code == 403
    assert push_only.text.endswith("does not allow reading packages: create a key with the Read scope for "
                                   "the feed's password")  # fmt: skip
    garbled = feed.client.get(path, headers={"authorization": "Basic %%%"})
    assert garbled.status_code == 401
    assert json.dumps(garbled.text)  # a reason, never a server error


@pytest.mark.parametrize("package_id", [PUBLIC, PRIVATE])
@pytest.mark.parametrize("reader", KEY_READERS)
def test_the_read_access_check_for_nginx_agrees_with_the_feed(
    feed: Feed, package_id: str, reader: str
) -> None:
    """``/read-access`` (nginx's auth_request): 204 where the feed would serve the file, 401 where it asks
    for credentials, 403 where it answers 404; the same on the credentialed source."""
    low = package_id.lower()
    for original in (f"/v3/flatcontainer/{low}/index.json", f"/private/v3/registration/{low}/index.json"):
        want = expected("feed", reader, package_id, feed.public_site)
        if original.startswith("/private") and reader == "anonymous":
            want = "challenge"  # the credentialed source asks even on a public site
        auth = ("any", feed.keys[reader]) if reader in feed.keys else None
        answer = feed.client.get("/read-access", headers={"x-original-uri": original}, auth=auth)
        assert answer.status_code == {"found": 204, "challenge": 401, "absent": 403}[want], (original, reader)


def visible(reader: str, kind: str, public_site: bool) -> int:
    """How many of the feed's ids (PUBLIC, PRIVATE) ``reader`` may see."""
    return sum(expected(kind, reader, package_id, public_site) == "found" for package_id in (PUBLIC, PRIVATE))


@pytest.mark.parametrize("reader", READERS)
def test_no_total_counts_what_the_reader_may_not_see(feed: Feed, reader: str) -> None:
    """Search ``totalHits``, autocomplete, the V2 ``$count``s and the pages' "N packages" count only what
    the reader may read (the table's per-id probes search for one id; these count everything)."""
    if expected("feed", reader, PUBLIC, feed.public_site) != "challenge":
        want = visible(reader, "feed", feed.public_site)
        assert feed.get("/v3/search?q=&take=0", reader).json()["totalHits"] == want
        assert feed.get("/v3/search?q=&prerelease=true&semVerLevel=2.0.0", reader).json()["totalHits"] == want
        assert feed.get("/v3/autocomplete?q=", reader).json()["totalHits"] == want
        everything = "Search()/$count?searchTerm=''&includePrerelease=true"
        updates = f"GetUpdates()/$count?packageIds='{PUBLIC}|{PRIVATE}'&versions='0.1|0.1'"
        counts = ("Packages()/$count", "Search()/$count", everything, updates)
        for count in counts:
            assert feed.get(f"/api/v2/{count}", reader).text == str(want), count
    if expected("page", reader, PUBLIC, feed.public_site) != "sign in":
        want = visible(reader, "page", feed.public_site)
        for path in ("/", "/packages"):
            heading = re.search(r'<h1 class="results-head">(\d+) packages?</h1>', feed.get(path, reader).text)
            assert heading is not None and int(heading[1]) == want, path


def test_metrics_name_no_package(feed: Feed) -> None:
    feed.get(f"/v3/flatcontainer/{PRIVATE.lower()}/1.0.0/{PRIVATE.lower()}.1.0.0.nupkg", "covering key")
    metrics = feed.get("/metrics", "anonymous").text  # the feed's client is on this host (127.0.0.1)
    assert "nugat_http_requests_total" in metrics
    assert PRIVATE.lower() not in metrics.lower() and PUBLIC.lower() not in metrics.lower()
    # from another host, with no NUGAT_METRICS_TOKEN set: nothing
    elsewhere = TestClient(feed.client.app, base_url="http://feed.test", client=("203.0.113.9", 50000))
    refused = elsewhere.get("/metrics", auth=("any", feed.keys["covering key"]))
    assert refused.status_code == 403 and "nugat_" not in refused.text, refused.text


def _protocol(feed: Feed, method: str, path: str, body: bytes | None = None) -> httpx.Response:
    key = {"X-NuGet-ApiKey": feed.keys["outsider key"]}
    if body is None:
        return feed.client.request(method, path, headers=key)
    return feed.client.put(path, headers=key, files={"package": ("p.nupkg", body)})


def test_an_outsider_learns_no_more_of_a_private_id_than_that_it_is_taken(feed: Feed) -> None:
    """As on nuget.org, pushing an id someone else owns says "not an owner" (the id is taken); nothing
    else an outsider sends tells which versions it has, how it is spelt, or what it is."""
    taken = "carol is not an owner of {}"
    for spelling in (PRIVATE, PRIVATE.lower()):
        for version in ("1.0.0", "7.7.7"):  # one that exists, one that does not: the same answer
            for method in ("DELETE", "POST"):  # unlist, relist
                answer = _protocol(feed, method, f"/api/v2/package/{spelling}/{version}")
                assert (answer.status_code, answer.text) == (403, taken.format(spelling)), (method, version)
            pushed = _protocol(feed, "PUT", "/api/v2/package", nupkg(spelling, version))
            assert (pushed.status_code, pushed.text) == (403, taken.format(spelling)), version
    never = _protocol(feed, "DELETE", f"/api/v2/package/{NEVER}/1.0.0")
    assert (never.status_code, never.text) == (404, f"{NEVER} 1.0.0 does not exist")
    # A look-alike is refused without naming what it looks like.
    lookalike = _protocol(feed, "PUT", "/api/v2/package", nupkg("C0ntoso.Secret", "1.0.0"))
    assert lookalike.status_code == 409
    assert PRIVATE.lower() not in lookalike.text.lower()


def test_the_credentialed_source_links_under_private_with_a_public_url(tmp_path: Path) -> None:
    """With ``NUGAT_PUBLIC_URL`` the documents are stored with their final URLs; served on the credentialed
    source, their feed URLs move under ``/private``, so a client given that source stays on it."""
    settings = Settings(data_dir=tmp_path, secret_key="links", public_url="http://feed.test")
    core = Core(settings)
    core.db.upgrade()
    core.accounts.create_user("alice", "alice@example.test", None)
    core.orgs.create("contoso", "alice")
    _, org = core.accounts.create_key("alice", "org push", ["push"], ["*"], [], 30, "contoso")
    _push(core, tmp_path, org, PRIVATE)
    _, bob = core.accounts.create_key("alice", "push", ["push"], ["*"], [], 30)
    _push(core, tmp_path, bob, PUBLIC)
    core.orgs.set_private("contoso", True)
    reader = core.accounts.create_key("alice", "read", ["read"], ["*"], [], 30)[1]
    core.close()
    with TestClient(create_app(settings), base_url="http://feed.test") as client:
        for package_id in (PRIVATE, PUBLIC):
            low = package_id.lower()
            for path in (f"/v3/registration/{low}/index.json", f"/v3/registration-semver2/{low}/1.0.0.json"):
                doc = client.get(f"/private{path}", auth=("any", reader))
                assert doc.status_code == 200, (path, doc.text)
                assert "http://feed.test/v3/" not in doc.text, path
                assert f"http://feed.test/private/v3/flatcontainer/{low}/1.0.0/{low}.1.0.0.nupkg" in doc.text
            plain = client.get(f"/v3/registration/{PUBLIC.lower()}/index.json").text
            assert "http://feed.test/private/" not in plain  # the plain feed's stay as stored
