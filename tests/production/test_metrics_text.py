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
        ("GET", "/health", "health"),
        ("GET", "/metrics", "metrics"),
        ("GET", "/packages/A.B/1.0.0", "web"),
    ],
)
def test_route_classes(method: str, path: str, route: str) -> None:
    assert metrics.route_class(method, path) == route


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
