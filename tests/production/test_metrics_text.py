"""The metrics module alone: route classes, and its text as the reference Prometheus parser reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nugat import metrics


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", "/v3/flatcontainer/a.b/index.json", "flat_index"),
        ("HEAD", "/v3/flatcontainer/a.b/1.0.0/a.b.1.0.0.nupkg", "nupkg"),
        ("GET", "/v3/flatcontainer/a.b/1.0.0/a.b.nuspec", "flat_file"),
        ("GET", "/v3/registration-semver2/a.b/index.json", "registration"),
        ("GET", "/v3/index.json", "service_index"),
        ("GET", "/v3/search", "search"),
        ("GET", "/v3/autocomplete", "v3_other"),
        ("PUT", "/api/v2/package/", "push"),
        ("POST", "/api/v2/package", "push"),
        ("DELETE", "/api/v2/package/A.B/1.0.0", "unlist"),
        ("POST", "/api/v2/package/A.B/1.0.0", "relist"),
        ("GET", "/api/v2/package/A.B/1.0.0", "v2_download"),
        ("GET", "/api/v2/FindPackagesById()", "v2"),
        # NuGet 2.x pushes to, and deletes below, the source URL it is given
        ("PUT", "/api/v2/", "push"),
        ("PUT", "/v3/index.json/", "push"),
        ("DELETE", "/api/v2/A.B/1.0.0", "unlist"),
        ("DELETE", "/v3/index.json/A.B/1.0.0", "unlist"),
        ("GET", "/api/v2/", "v2"),
        ("GET", "/health", "health"),
        ("GET", "/metrics", "metrics"),
        ("GET", "/packages/A.B/1.0.0", "web"),
    ],
)
def test_route_classes(method: str, path: str, route: str) -> None:
    assert metrics.route_class(method, path) == route


TOKEN = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("client", "authorization", "token", "answered"),
    [
        ("127.0.0.1", None, None, True),  # Prometheus (or nginx, passing the client on) on this host
        ("127.8.9.10", None, None, True),
        ("::1", None, None, True),
        ("::ffff:127.0.0.1", None, None, True),
        ("[::1]:9090", None, None, True),
        ("203.0.113.9", None, None, False),  # any other host, when no token is set
        ("10.0.0.5", f"Bearer {TOKEN}", None, False),  # a token when none is set
        ("testclient", None, None, False),  # not an address
        ("unknown", None, None, False),
        ("203.0.113.9", None, TOKEN, False),
        ("203.0.113.9", f"Bearer {TOKEN}", TOKEN, True),
        ("203.0.113.9", f"bearer  {TOKEN} ", TOKEN, True),  # the scheme's case and spaces do not matter
        ("203.0.113.9", f"Bearer {TOKEN[:-1]}", TOKEN, False),
        ("203.0.113.9", f"Bearer {TOKEN}0", TOKEN, False),
        ("203.0.113.9", "Bearer ", TOKEN, False),
        ("203.0.113.9", f"Basic {TOKEN}", TOKEN, False),
        ("203.0.113.9", TOKEN, TOKEN, False),
        ("127.0.0.1", "Bearer wrong", TOKEN, True),  # this host needs no token
    ],
)
def test_only_this_host_or_the_token_may_scrape(
    client: str, authorization: str | None, token: str | None, answered: bool
) -> None:
    assert metrics.may_scrape(client, authorization, token) is answered


def test_counts_of_several_processes_add_up(tmp_path: Path) -> None:
    directory = metrics.server_dir(tmp_path)
    other = metrics.Recorder()
    other.request("push", 201, 0.02)
    other.request("flat_index", 200, 0.0003)
    other.auth_failure("expired")
    (directory / "1-1.json").write_text(json.dumps(other.snapshot()))
    # this process's recorder may hold counts of other tests already: add to what it has
    own = metrics.RECORDER.requests.get(("flat_index", 200), 0) + 1
    timed = sum(metrics.RECORDER.latency.get("flat_index", [0])[:-1]) + 1
    metrics.RECORDER.request("flat_index", 200, 0.7)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.exposition(directory).decode())
        for s in family.samples
    }
    assert samples[("nugat_http_requests_total", (("route", "flat_index"), ("status", "200")))] == own + 1
    assert samples[("nugat_pushes_total", (("result", "created"),))] >= 1
    assert samples[("nugat_auth_failures_total", (("reason", "expired"),))] >= 1
    bucket = ("nugat_http_request_duration_seconds_bucket", (("le", "0.0005"), ("route", "flat_index")))
    inf = ("nugat_http_request_duration_seconds_bucket", (("le", "+Inf"), ("route", "flat_index")))
    assert samples[bucket] >= 1 and samples[inf] == timed + 1  # cumulative buckets
    assert (directory / metrics.RECORDER.file_name).exists()  # this process saved its own counts too
