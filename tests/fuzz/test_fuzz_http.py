"""Bounded, hypothesis-driven fuzzing of every JSON and V2 (Atom XML) endpoint and the publish endpoints.

Instead of schemathesis: nugat has no OpenAPI description (the NuGet V3 protocol is defined by its
documents, not by a schema), and writing one just for the fuzzer would describe little but paths and
query strings. Hypothesis draws requests from the same space (every route with hostile path segments,
query parameters, headers and bodies) and checks what schemathesis' default check does: no 5xx, no
unhandled exception (the test client re-raises them), and JSON or XML that parses wherever it is answered.
Runs in process (Starlette's test client): thousands of requests in seconds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from nugat.app import create_app
from nugat.core import Core
from nugat.settings import Settings
from support.zips import package

EXAMPLES = int(os.environ.get("NUGAT_FUZZ_EXAMPLES", "400"))
SEEDED = [("Fuzz.Pkg", "1.0.0"), ("Fuzz.Pkg", "2.0.0-beta.1"), ("Fuzz.Other", "1.0.0+meta")]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz-http")
    settings_ = Settings(data_dir=data_dir, max_package_bytes=1 << 20)
    core = Core(settings_)
    core.db.upgrade()
    core.accounts.create_user("fuzzer", "fuzzer@example.test", None)
    _, key = core.accounts.create_key("fuzzer", "k", ["push", "unlist"], ["*"], [], 30)
    core.close()
    with TestClient(create_app(settings_), base_url="http://feed.test") as client:
        for package_id, version in SEEDED:
            body = package(
                package_id,
                version,
                extra='<dependencies><dependency id="Fuzz.Pkg" version="1.0"/></dependencies>',
            )
            resp = client.put("/api/v2/package", content=body, headers={"X-NuGet-ApiKey": key})
            assert resp.status_code == 201, resp.text
        yield client, key


words = st.one_of(
    st.sampled_from(
        [
            "fuzz.pkg",
            "Fuzz.Pkg",
            "fuzz.other",
            "1.0.0",
            "2.0.0-beta.1",
            "1.0.0+meta",
            "index",
            "index.json",
            "page",
            "fuzz.pkg.1.0.0.nupkg",
            "fuzz.pkg.nuspec",
            "readme",
            "icon",
            "license",
            "..",
            ".",
            "",
            "%",
            "\\",
            "\x00",
            "9" * 40,
            "x" * 300,
        ]
    ),
    st.text(max_size=24),
)
numbers = st.one_of(
    st.integers(-(10**30), 10**30).map(str), st.sampled_from(["", "abc", "1e3", "0x10", "-0", " 5", "NaN"])
)
params = st.dictionaries(
    st.sampled_from(
        [
            *("q", "skip", "take", "prerelease", "semVerLevel", "packageType", "id", "unknown", ""),
            *("$filter", "$skip", "$top", "$orderby", "searchTerm", "includePrerelease"),
        ]
    ),
    st.one_of(words, numbers),
    max_size=6,
)
printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
ROUTES = [
    ("GET", "/v3/index.json"),
    ("GET", "/v3/search"),
    ("GET", "/v3/autocomplete"),
    ("GET", "/v3/registration/{}/index.json"),
    ("GET", "/v3/registration-semver2/{}/{}.json"),
    ("GET", "/v3/registration/{}/page/{}/{}.json"),
    ("GET", "/v3/flatcontainer/{}/index.json"),
    ("GET", "/v3/flatcontainer/{}/{}/{}"),
    ("HEAD", "/v3/flatcontainer/{}/{}/{}"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/api/v2/"),
    ("GET", "/api/v2/$metadata"),
    ("GET", "/api/v2/Search()"),
    ("GET", "/api/v2/Search()/$count"),
    ("GET", "/api/v2/FindPackagesById()"),
    ("GET", "/api/v2/Packages()"),
    ("GET", "/api/v2/Packages(Id='{}',Version='{}')"),
    ("GET", "/api/v2/Packages({})"),
    ("GET", "/api/v2/package/{}/{}"),
    ("DELETE", "/api/v2/package/{}/{}"),
    ("POST", "/api/v2/package/{}/{}"),
    ("PUT", "/api/v2/package"),
]


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    method, template = draw(st.sampled_from(ROUTES))
    segments = [quote(draw(words), safe="") for _ in range(template.count("{}"))]
    headers = {
        name: draw(value)
        for name, value in (
            ("X-NuGet-ApiKey", st.one_of(st.just("VALID"), printable)),
            ("Accept-Encoding", st.sampled_from(["gzip", "identity", "br, gzip;q=0", ""])),
            ("If-None-Match", printable),
            ("X-Forwarded-For", printable),
            ("Host", st.sampled_from(["feed.test", "evil.test:99999", "[::1]", "a" * 300])),
        )
        if draw(st.booleans())
    }
    body = b""
    if method == "PUT":
        body = draw(
            st.one_of(
                st.builds(
                    package,
                    st.sampled_from(["Fuzz.New", "Fuzz.Pkg", "fuzz.pkg"]),
                    st.sampled_from(["3.0.0", "1.0"]),
                ),
                st.binary(max_size=300),
            )
        )
    return {
        "method": method,
        "url": template.format(*segments),
        "params": draw(params),
        "headers": headers,
        "content": body,
        "multipart": draw(st.booleans()),
    }


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_no_request_gets_a_server_error(app: tuple[TestClient, str], request: dict[str, Any]) -> None:
    client, key = app
    headers = dict(request["headers"])
    if headers.get("X-NuGet-ApiKey") == "VALID":
        headers["X-NuGet-ApiKey"] = key
    kwargs: dict[str, Any] = {"params": request["params"], "headers": headers}
    if request["method"] == "PUT" and request["multipart"]:
        kwargs["files"] = {"package": ("package.nupkg", request["content"], "application/octet-stream")}
    elif request["method"] == "PUT":
        kwargs["content"] = request["content"]
    resp = client.request(request["method"], request["url"], **kwargs)
    assert resp.status_code < 500, f"{resp.status_code}: {resp.text[:500]}"
    content_type = resp.headers.get("content-type", "")
    if resp.status_code == 200 and content_type.startswith("application/json"):
        json.loads(resp.content)
    if resp.status_code == 200 and content_type.startswith(("application/atom+xml", "application/xml")):
        ElementTree.fromstring(resp.content)
