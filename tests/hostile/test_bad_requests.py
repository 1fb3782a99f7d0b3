"""Hostile requests: malformed API-key headers, path traversal in every URL parameter, abusive search queries.

Never a 5xx, never a byte from outside the feed's storage. Raw sockets send the exact bytes (an HTTP
library would normalize ``..`` away or refuse a non-ASCII header before the server ever saw it).
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import pytest

from hostile.harness import Feed, RawResponse, raw_exchange
from nugat import keys
from nugat.protocol.publish import SMALL_UPLOAD
from nugat.services import INVALID_KEY
from support.zips import package

PASSWD_MARK = b"root:x:0:0"


def request(
    feed: Feed, method: str, target: str, *headers: bytes, address: str = "127.0.0.1", body: bytes = b""
) -> RawResponse:
    host = feed.server.url.removeprefix("http://").encode()
    start = f"{method} {target} HTTP/1.1".encode("latin-1")
    head = b"\r\n".join([start, b"Host: " + host, b"Connection: close", *headers])
    return raw_exchange(feed.server.url, head + b"\r\n\r\n" + body, address=address)


def key_header(value: bytes) -> bytes:
    return b"X-NuGet-ApiKey: " + value


def wrong_keys(real: str) -> dict[str, bytes]:
    parsed = keys.parse_key(real)
    assert parsed is not None
    other_secret = keys.new_key(parsed.key_id)  # well-formed, right key id, wrong secret
    typo = real[:-1] + ("a" if real[-1] != "a" else "b")  # fails the checksum
    return {
        "garbage": b"x",
        "prefix only": b"nugat_",
        "checksum typo": typo.encode(),
        "wrong secret": other_secret.encode(),
        "unknown key id": keys.new_key(keys.new_key_id()).encode(),
        "8 KiB": b"nugat_" + b"A" * 8192,
        "latin-1 bytes": b"cl\xe9-secr\xe8te",
        "UTF-8 text": "ключ-🔑".encode(),
        "invalid UTF-8": b"\xff\xfe\xfd",
        "key in quotes": b'"' + real.encode() + b'"',
        "SQL": b"' OR '1'='1",
    }


@pytest.mark.parametrize("method", ["PUT", "PUT small", "DELETE"])
def test_malformed_api_keys_are_403_never_500(feed: Feed, method: str) -> None:
    # Failed attempts are throttled per address: this test has an address of each of its own.
    address = {"PUT": "127.0.0.21", "PUT small": "127.0.0.24", "DELETE": "127.0.0.22"}[method]
    target = "/api/v2/package/Some.Pkg/1.0.0" if method == "DELETE" else "/api/v2/package"
    verb = method.split()[0]
    framing, body = [], b""
    if method == "PUT":  # a large body declared, never sent: the key is refused before any of it is read
        framing = [b"Content-Type: application/octet-stream", f"Content-Length: {SMALL_UPLOAD + 1}".encode()]
    elif method == "PUT small":  # a small body is received first, then the key is checked
        body = package("Some.Pkg", "1.0.0")  # a valid package: a valid key would have pushed it
        framing = [b"Content-Type: application/octet-stream", f"Content-Length: {len(body)}".encode()]
    for name, value in wrong_keys(feed.key).items():
        resp = request(feed, verb, target, key_header(value), *framing, address=address, body=body)
        text = resp.body.decode("utf-8", "replace")
        # 403 as on nuget.org (a 401 would make nuget.exe ask for a password), with the precise reason
        assert resp.status == 403, f"{name}: {resp.status} {text[:200]}"
        assert text.endswith(f". {INVALID_KEY}"), name
        assert text.startswith(("The API key is not a nugat API key", "The secret of API key", "API key ")), (
            text
        )
        assert resp.headers["x-nuget-warning"] == text
        assert "www-authenticate" not in resp.headers
    for name, headers in {"no header": [], "empty header": [b"X-NuGet-ApiKey: "]}.items():
        resp = request(feed, verb, target, *headers, *framing, address=address, body=body)
        assert resp.status == 403, name
        assert resp.body.startswith(b"No API key was sent: pass one with -ApiKey")


def test_oversized_and_control_character_key_headers_are_refused_by_the_http_layer(feed: Feed) -> None:
    for value in (b"nugat_" + b"A" * (1 << 20), b"nugat_\x00abc", b"nugat_\x01abc"):
        resp = request(
            feed, "DELETE", "/api/v2/package/Some.Pkg/1.0.0", key_header(value), address="127.0.0.23"
        )
        assert 400 <= resp.status < 500, resp
    assert feed.server.get("/health").status_code == 200


TRAVERSALS = [
    "../../secret.key",
    "..%2f..%2fsecret.key",
    "..%2F..%2Fsecret.key",
    "%2e%2e/%2e%2e/secret.key",
    "%2e%2e%2f%2e%2e%2fsecret.key",
    "..\\..\\secret.key",
    "..%5c..%5csecret.key",
    "%252e%252e%252fsecret.key",
    "....//....//secret.key",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "C:%5cWindows%5cwin.ini",
    "trav.pkg%00.json",
    "..%00/secret.key",
    "%c0%ae%c0%ae/secret.key",
]

URL_TEMPLATES = [
    "/v3/flatcontainer/{}",
    "/v3/flatcontainer/{}/index.json",
    "/v3/flatcontainer/trav.pkg/{}",
    "/v3/flatcontainer/trav.pkg/1.0.0/{}",
    "/v3/flatcontainer/trav.pkg/{}/trav.pkg.1.0.0.nupkg",
    "/v3/registration/{}/index.json",
    "/v3/registration/trav.pkg/{}.json",
    "/v3/registration-semver2/{}",
    "/v3/registration-semver2/trav.pkg/page/{}/2.0.0.json",
    "/static/{}",
    "/packages/{}",
    "/packages/Trav.Pkg/{}",
    "/packages/{}/1.0.0",
    "/{}",
    "/v3/{}",
    "/api/v2/package/{}",
    "/api/v2/package/{}/1.0.0",
    "/api/v2/package/Trav.Pkg/{}",
    "/api/v2/Packages({})",
    "/api/v2/Packages(Id='{}',Version='1.0.0')",
    "/api/v2/Packages(Id='Trav.Pkg',Version='{}')",
    "/api/v2/FindPackagesById()?id='{}'",
    "/api/v2/Search()?searchTerm='{}'",
]


def assert_nothing_leaked(feed: Feed, resp: RawResponse, target: str) -> None:
    assert resp.status < 500, f"{target}: {resp.status} {resp.body[:300]!r}"
    secret = (feed.server.data_dir / "secret.key").read_bytes().strip()
    assert secret not in resp.body, target
    assert PASSWD_MARK not in resp.body, target


def test_path_traversal_in_every_url_parameter(feed: Feed) -> None:
    assert feed.push(package("Trav.Pkg")).status_code == 201
    for template in URL_TEMPLATES:
        for attack in TRAVERSALS:
            target = template.format(attack)
            for method in ("GET", "HEAD"):
                resp = request(feed, method, target)
                assert_nothing_leaked(feed, resp, target)
                if template.startswith("/v3/"):
                    assert resp.status in (400, 404), f"{method} {target}: {resp.status}"


@pytest.mark.parametrize("method", ["DELETE", "POST"])
def test_path_traversal_in_unlist_and_relist(feed: Feed, method: str) -> None:
    for attack in TRAVERSALS:
        for target in (f"/api/v2/package/{attack}/1.0.0", f"/api/v2/package/Trav.Pkg/{attack}"):
            resp = request(feed, method, target, key_header(feed.key.encode()))
            assert_nothing_leaked(feed, resp, target)
            assert resp.status in (400, 404, 405), f"{method} {target}: {resp.status} {resp.body[:200]!r}"


SEARCH_ABUSE = [
    "skip=-1",
    "skip=-99999999999999999999999",
    "skip=99999999999999999999999",
    "take=-5",
    "take=100000000000000000000000000000",
    "take=1e3",
    "take=0x10",
    "take=",
    "skip=abc&take=def",
    "take=1&take=100000",
    "skip=%00",
    "prerelease=maybe",
    "prerelease=true&prerelease=false",
    "semVerLevel=99.99",
    "semVerLevel=%ff",
    "packageType=%00",
    "packageType=" + "x" * 1000,
    "q=%00%ff%fe",
    "q=" + quote("id: tags: owner: author: description: title: packageid:"),
    "q=" + quote("a " * 3000),
    "q=" + "x" * 20000,
    "q=%25%25%25_*?[]()",
    "q=" + quote("' OR 1=1 --"),
    "unknown=1&another=2&" + "&".join(f"p{i}=1" for i in range(200)),
    "q",
    "&&&&===",
]


@pytest.mark.parametrize("endpoint", ["/v3/search", "/v3/autocomplete", "/v3/autocomplete?id=Trav.Pkg&"])
def test_search_parameter_abuse(feed: Feed, endpoint: str) -> None:
    for query in SEARCH_ABUSE:
        target = endpoint + ("&" if "?" in endpoint else "?") + query
        start = time.monotonic()
        resp = request(feed, "GET", target)
        assert time.monotonic() - start < 5, target
        assert resp.status == 200, f"{target[:200]}: {resp.status} {resp.body[:300]!r}"
        doc = json.loads(resp.body)
        assert isinstance(doc["totalHits"], int) and doc["totalHits"] >= 0
        assert isinstance(doc["data"], list) and len(doc["data"]) <= 1000


def test_control_characters_in_parameters_cannot_forge_log_lines(feed: Feed) -> None:
    forged = "2026-01-01 00:00:00,000 INFO nugat.publish: pushed Forged.Pkg 1.0.0 with key x"
    for attack in (f"Evil\r\n{forged}", f"Evil\n{forged}", f"Evil\x1b[2K\r{forged}"):
        resp = request(
            feed, "DELETE", f"/api/v2/package/{quote(attack)}/1.0.0", key_header(feed.key.encode())
        )
        assert resp.status == 404
        assert resp.headers["x-nuget-warning"].startswith("Evil")
        assert "\r" not in resp.headers["x-nuget-warning"]
    lines = feed.server.log_path.read_text(errors="replace").splitlines()
    assert not [line for line in lines if line.startswith(forged[:40])]
    assert any("unlist refused (404): Evil" in line for line in lines)


def test_storage_folders_are_not_documents(feed: Feed) -> None:
    assert feed.push(package("Folder.Pkg")).status_code == 201
    for path in ("/v3/flatcontainer", "/v3/flatcontainer/folder.pkg", "/v3/flatcontainer/folder.pkg/1.0.0"):
        for target in (path, path + "/", path + "/."):
            resp = request(feed, "GET", target)
            assert resp.status == 404, f"{target}: {resp.status} {resp.body[:200]!r}"
    assert request(feed, "GET", "/v3/flatcontainer/" + "x" * 5000 + "/index.json").status == 404


V2_ABUSE = [
    "$top=-1",
    "$top=100000000000000000000000000000",
    "$skip=-5",
    "$skip=99999999999999999999999",
    "$skip=abc&$top=def",
    "$filter=" + quote("IsLatestVersion or 1 eq 1"),
    "$filter=" + quote("substringof('a',Id) and (((((("),
    "$filter=" + quote("Id eq 'unterminated"),
    "$filter=" + quote("tolower(Id) eq '" + "''" * 5000 + "'"),
    "$filter=" + quote(" and ".join(["IsLatestVersion"] * 2000)),
    "$filter=%00",
    "searchTerm=" + quote("'''"),
    "searchTerm=" + "x" * 20000,
    "id=" + quote("'"),
    "id=" + quote("'../../secret.key'"),
    "includePrerelease=maybe&semVerLevel=%ff",
    "$orderby=" + quote("Id desc; DROP TABLE package_versions"),
    "$select=*&$format=json&$expand=x",
]
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.mark.parametrize("endpoint", ["/api/v2/Search()", "/api/v2/FindPackagesById()", "/api/v2/Packages()"])
def test_v2_query_abuse(feed: Feed, endpoint: str) -> None:
    assert feed.push(package("V2.Abuse")).status_code in (201, 409)
    for query in V2_ABUSE:
        for target in (f"{endpoint}?{query}", f"{endpoint}/$count?{query}"):
            start = time.monotonic()
            resp = request(feed, "GET", target)
            assert time.monotonic() - start < 5, target[:200]
            assert resp.status in (200, 400), f"{target[:200]}: {resp.status} {resp.body[:300]!r}"
            if resp.status == 400:
                assert resp.headers["x-nuget-warning"].startswith(
                    ("Unsupported $filter", "Unsupported $orderby", "Unsupported $top", "Unsupported $skip")
                )
            elif "/$count" in target:
                assert int(resp.body) >= 0
            else:
                assert len(ElementTree.fromstring(resp.body).findall(f"{ATOM}entry")) <= 100
    assert feed.versions("V2.Abuse") == ["1.0.0"]


MARKUP = "<script>alert(1)</script> ]]> & \"quotes\" 'single' <!-- x --> &amp;"


def test_metadata_markup_is_escaped_everywhere(feed: Feed) -> None:
    """Markup in a nuspec's text comes out as text: in JSON, in the V2 Atom XML, and in the pages."""
    body = package("Markup.Pkg", description=MARKUP, extra=f"<title>{escape(MARKUP)}</title>")
    assert feed.push(body).status_code == 201
    hits = feed.server.get_json("/v3/search?q=packageid:markup.pkg")["data"]
    assert [(h["description"], h["title"]) for h in hits] == [(MARKUP, MARKUP)]
    leaf = feed.server.get_json("/v3/registration/markup.pkg/index.json")["items"][0]["items"][0]
    assert leaf["catalogEntry"]["description"] == MARKUP
    atom = ElementTree.fromstring(feed.server.get("/api/v2/FindPackagesById()?id='Markup.Pkg'").content)
    texts = [el.text for el in atom.iter() if el.text and "alert(1)" in el.text]
    assert texts and set(texts) == {MARKUP}
    for page in ("/packages/Markup.Pkg", "/packages?q=markup"):
        html = feed.server.get(page).text
        assert "<script>alert(1)</script>" not in html and "<!-- x -->" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
