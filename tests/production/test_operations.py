"""What an operator relies on: /metrics over several workers, JSON logs, /health, TLS, forwarded headers,
a fixed public URL with idempotent rebuilds, and large packages on S3 (streamed or redirected)."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from nugat import keys
from nugat.feed import BASE
from production.helpers import push, s3_env
from support.nugetexe import NuGetClient, installed_packages
from support.s3 import S3Server
from support.server import (
    SECRETS,
    NugatServer,
    base_env,
    create_key,
    free_port,
    nugat_command,
    running_server,
    set_key_expiry,
)
from support.zips import package

METRICS_TOKEN = secrets.token_hex(32)


@pytest.fixture(scope="module")
def ops_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NugatServer]:
    """Two workers, JSON logs, behind a trusted proxy, a token for scrapers on other hosts."""
    SECRETS.append(METRICS_TOKEN)  # the leak check looks for it in every log and file
    env = {"NUGAT_LOG_FORMAT": "json", "NUGAT_TRUST_FORWARDED": "true", "NUGAT_METRICS_TOKEN": METRICS_TOKEN}
    with running_server(tmp_path_factory.mktemp("ops"), extra_env=env, workers=2) as server:
        yield server


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: NugatServer) -> Samples:
    """``{(sample name, sorted labels): value}`` as the reference Prometheus parser reads /metrics."""
    resp = server.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(resp.text)
        for sample in family.samples
    }


def settle(server: NugatServer, name: str, labels: dict[str, str], want: float) -> Samples:
    """Scrape until ``name{labels}`` reads ``want`` (workers save their counts once a second)."""
    key = (name, tuple(sorted(labels.items())))
    deadline = time.monotonic() + 6
    samples = scrape(server)
    while samples.get(key) != want:
        assert time.monotonic() < deadline, f"{key}: {samples.get(key)} after 6 s, want {want}"
        time.sleep(0.2)
        samples = scrape(server)
    return samples


def test_metrics_sum_every_worker(ops_server: NugatServer) -> None:
    with httpx.Client() as client:  # new connections: the requests spread over both workers
        for _ in range(40):
            client.get(
                f"{ops_server.url}/v3/flatcontainer/metrics.none/index.json", headers={"connection": "close"}
            )
    # each scrape is answered by either worker, and must count the other's requests too
    for _ in range(4):
        samples = settle(
            ops_server, "nugat_http_requests_total", {"route": "flat_index", "status": "404"}, 40
        )
    assert samples[("nugat_http_request_duration_seconds_count", (("route", "flat_index"),))] == 40
    assert (
        samples[("nugat_http_request_duration_seconds_bucket", (("le", "+Inf"), ("route", "flat_index")))]
        == 40
    )


def test_a_scraper_on_another_host_needs_the_metrics_token(ops_server: NugatServer) -> None:
    elsewhere = {"x-forwarded-for": "203.0.113.9"}  # through the trusted proxy, from another host
    wrong = METRICS_TOKEN[:-1] + ("1" if METRICS_TOKEN.endswith("0") else "0")  # one character off
    for authorization in (None, "Bearer " + wrong, "Basic " + METRICS_TOKEN):
        headers = dict(elsewhere, **({"authorization": authorization} if authorization else {}))
        resp = ops_server.get("/metrics", headers=headers)
        assert resp.status_code == 401, (authorization, resp.text)
        assert resp.headers["www-authenticate"] == 'Bearer realm="nugat metrics"'
        assert "nugat_" not in resp.text and "NUGAT_METRICS_TOKEN" in resp.text
    resp = ops_server.get("/metrics", headers={**elsewhere, "authorization": f"Bearer {METRICS_TOKEN}"})
    assert resp.status_code == 200
    assert any(f.name == "nugat_http_requests" for f in text_string_to_metric_families(resp.text))
    assert ops_server.get("/metrics").status_code == 200  # this host's Prometheus needs no token


def test_pushes_and_auth_failures_are_counted_by_result_and_reason(ops_server: NugatServer) -> None:
    info = create_key(ops_server, "ops", ["push"])
    key = str(info["key"])
    body = package("Ops.Counted", "1.0.0")
    assert push(ops_server, key, body).status_code == 201
    assert push(ops_server, key, body).status_code == 409
    assert push(ops_server, key, b"not a zip").status_code == 400
    headers = {"Content-Type": "application/octet-stream"}
    assert httpx.put(f"{ops_server.url}/api/v2/package/", content=body, headers=headers).status_code == 403
    assert push(ops_server, "garbage", body).status_code == 403
    assert push(ops_server, keys.new_key(keys.new_key_id()), body).status_code == 403  # well-formed, unknown
    set_key_expiry(
        ops_server, str(info["id"]), datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    )
    assert push(ops_server, key, package("Ops.Counted", "2.0.0")).status_code == 403
    # Each worker saves its counts once a second: wait for every count, not only the last one sent.
    for result, count in (("created", 1), ("conflict", 1), ("invalid", 1), ("refused", 4)):
        settle(ops_server, "nugat_pushes_total", {"result": result}, count)
    for reason in ("missing", "malformed", "unknown", "expired"):
        settle(ops_server, "nugat_auth_failures_total", {"reason": reason}, 1)
    assert scrape(ops_server)[("nugat_auth_failures_total", (("reason", "throttled"),))] == 0


def test_logs_are_one_json_object_per_line_from_every_process(ops_server: NugatServer) -> None:
    key = create_key(ops_server, "ops-logs", ["push"])["key"]
    assert push(ops_server, str(key), package("Ops.Logged", "1.0.0")).status_code == 201
    deadline = time.monotonic() + 5
    while "Ops.Logged" not in ops_server.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    records = []
    for line in ops_server.log_path.read_text().splitlines():
        if line.startswith(("### ", "nugat serving ")):  # the test harness's and the banner, on stdout
            continue
        record = json.loads(line)
        assert set(record) >= {"time", "level", "logger", "message"}, line
        records.append(record)
    assert any("Ops.Logged" in r["message"] and r["logger"].startswith("nugat") for r in records)
    assert any(r["logger"] == "_granian" for r in records)  # the server's own lines too


def test_forwarded_headers_make_https_urls_only_when_trusted(
    ops_server: NugatServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    key = create_key(ops_server, "ops-proxy", ["push"])["key"]
    assert push(ops_server, str(key), package("Ops.Proxied", "1.0.0")).status_code == 201
    forwarded = {"x-forwarded-proto": "https", "x-forwarded-host": "nuget.example.test"}
    index = ops_server.get_json("/v3/index.json", headers=forwarded)
    assert all(r["@id"].startswith("https://nuget.example.test/") for r in index["resources"])
    reg = ops_server.get_json("/v3/registration/ops.proxied/index.json", headers=forwarded)
    assert reg["@id"] == "https://nuget.example.test/v3/registration/ops.proxied/index.json"
    with running_server(tmp_path_factory.mktemp("untrusting")) as plain:
        index = plain.get_json("/v3/index.json", headers=forwarded)
        assert index["resources"][0]["@id"].startswith(plain.url)


def test_health_reports_an_unreachable_bucket(
    s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = s3_env(s3_server, "nugat-bucket-that-does-not-exist")
    with running_server(tmp_path_factory.mktemp("unhealthy"), extra_env=env) as server:
        resp = server.get("/health")
        assert resp.status_code == 503 and resp.json()["status"] == "unhealthy" and "storage" in resp.json()
    with running_server(
        tmp_path_factory.mktemp("healthy"), extra_env=s3_env(s3_server, s3_server.new_bucket())
    ) as server:
        assert server.get("/health").json() == {"status": "ok"}


def test_public_url_stores_final_documents_and_rebuild_is_idempotent(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    env = {"NUGAT_PUBLIC_URL": "https://nuget.example.test/"}
    with running_server(tmp_path_factory.mktemp("public"), extra_env=env) as server:
        key = create_key(server, "pub", ["push"])["key"]
        for version in ("1.0.0", "1.1.0-beta"):
            assert push(server, str(key), package("Pub.Lib", version)).status_code == 201
        reg = server.get_json("/v3/registration-semver2/pub.lib/index.json")
        assert reg["@id"] == "https://nuget.example.test/v3/registration-semver2/pub.lib/index.json"
        assert server.get_json("/v3/index.json")["resources"][0]["@id"].startswith(
            "https://nuget.example.test/"
        )
        root = server.data_dir / "storage" / "v3"
        before = documents(root)
        assert before and BASE not in json.dumps(before)  # servable as they are
        (root / "registration/pub.lib/index.json").unlink()
        for _ in range(2):
            assert "rebuilt the documents of 1 package ids" in server.cli("rebuild", check=True).stdout
            assert documents(root) == before


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_rebuild_in_two_processes_rewrites_every_id_once_while_serving(
    tmp_path_factory: pytest.TempPathFactory, database: str
) -> None:
    """``nugat rebuild --processes 2``: the processes share the ids (PostgreSQL: each batch locks its own;
    SQLite: one writer at a time) and together rewrite every document as it was."""
    with running_server(tmp_path_factory.mktemp(f"rebuild-{database}"), database, workers=2) as server:
        key = str(create_key(server, "reb", ["push"])["key"])
        for n in range(6):
            for version in ("1.0.0", "2.0.0-rc.1", "3.0.0+build.7")[: n % 3 + 1]:
                assert push(server, key, package(f"Reb.Lib{n}", version)).status_code == 201
        root = server.data_dir / "storage" / "v3"
        before = documents(root)
        for path in root.glob("registration*/reb.lib[024]/index.json"):
            path.unlink()
        (root / "flatcontainer/reb.lib1/index.json").write_text('{"versions":[]}')
        done = server.cli("rebuild", "--processes", "2", check=True, timeout=120).stdout
        assert "rebuilt the documents of 6 package ids" in done
        assert documents(root) == before
        assert server.get_json("/v3/flatcontainer/reb.lib5/index.json") == {
            "versions": ["1.0.0", "2.0.0-rc.1", "3.0.0"]
        }


def documents(root: Path) -> dict[str, Any]:
    """Every stored JSON document, without the commit ids and times a rebuild renews."""

    def strip(doc: Any) -> Any:
        if isinstance(doc, dict):
            return {k: strip(v) for k, v in doc.items() if k not in ("commitId", "commitTimeStamp")}
        return [strip(v) for v in doc] if isinstance(doc, list) else doc

    return {p.relative_to(root).as_posix(): strip(json.loads(p.read_text())) for p in root.rglob("*.json")}


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return certfile, keyfile


def test_serve_over_tls(tls_files: tuple[Path, Path], tmp_path: Path) -> None:
    certfile, keyfile = tls_files
    port = free_port()
    env = base_env() | {"NUGAT_DATA_DIR": str(tmp_path)}
    argv = [
        *nugat_command(),
        "serve",
        "--port",
        str(port),
        "--certfile",
        str(certfile),
        "--keyfile",
        str(keyfile),
    ]
    with (
        (tmp_path / "server.log").open("w") as log,
        subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT) as proc,
    ):
        try:
            url = f"https://127.0.0.1:{port}/v3/index.json"
            index = None
            deadline = time.monotonic() + 30
            while index is None:
                assert proc.poll() is None and time.monotonic() < deadline, (
                    tmp_path / "server.log"
                ).read_text()
                with contextlib.suppress(httpx.HTTPError):
                    index = httpx.get(
                        url, verify=ssl.create_default_context(cafile=certfile), timeout=5
                    ).json()
                time.sleep(0.1)
            assert all(r["@id"].startswith(f"https://127.0.0.1:{port}/") for r in index["resources"])
            # TLS 1.2 clients (nuget.exe on .NET Framework and mono) are served too
            tls12 = ssl.create_default_context(cafile=certfile)
            tls12.maximum_version = ssl.TLSVersion.TLSv1_2
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
                tls12.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
            ):
                assert tls.version() == "TLSv1.2"
            with pytest.raises(httpx.HTTPError):  # and plain http is not
                httpx.get(f"http://127.0.0.1:{port}/v3/index.json", timeout=5)
        finally:
            proc.terminate()
            proc.wait(timeout=15)


MIB = 1 << 20


@pytest.mark.e2e
def test_large_packages_on_s3_stream_or_redirect(
    s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory, nuget_exe: Path
) -> None:
    bucket = s3_server.new_bucket()
    big = package("S3.Big", "1.0.0", payload=os.urandom(3 * MIB))  # above the read path's memory cache
    url = "/v3/flatcontainer/s3.big/1.0.0/s3.big.1.0.0.nupkg"
    with running_server(tmp_path_factory.mktemp("s3-stream"), extra_env=s3_env(s3_server, bucket)) as server:
        key = create_key(server, "big", ["push"])["key"]
        assert push(server, str(key), big).status_code == 201
        streamed = server.get(url)
        assert streamed.status_code == 200 and streamed.content == big
        assert int(streamed.headers["content-length"]) == len(big) and streamed.headers["etag"]
        assert server.get(url, headers={"if-none-match": streamed.headers["etag"]}).status_code == 304
        head = httpx.head(server.url + url)
        assert (
            head.status_code == 200
            and head.content == b""
            and int(head.headers["content-length"]) == len(big)
        )
    redirect_env = s3_env(s3_server, bucket, redirect="1")
    with running_server(tmp_path_factory.mktemp("s3-redirect"), extra_env=redirect_env) as server:
        moved = server.get(url)
        assert moved.status_code == 302 and moved.headers["location"].startswith(s3_server.endpoint)
        assert httpx.get(moved.headers["location"], timeout=60).content == big
        # the real client follows the redirect to the bucket
        home = tmp_path_factory.mktemp("nuget-redirect")
        out = home / "out"
        result = NuGetClient(nuget_exe, home / "nuget-home").install(
            "S3.Big", "1.0.0", source=server.source, output_dir=out
        )
        assert result.ok, result.output
        assert installed_packages(out) == {"S3.Big.1.0.0"}
        assert (out / "S3.Big.1.0.0" / "S3.Big.1.0.0.nupkg").read_bytes() == big


def test_conditional_head_and_large_file_answers(ops_server: NugatServer) -> None:
    key = str(create_key(ops_server, "ops-files", ["push"])["key"])
    big = package(
        "Ops.Files", "1.0.0", payload=os.urandom(2 * MIB)
    )  # above the memory cache: sent from the file
    assert push(ops_server, key, big).status_code == 201
    for url, body in (
        ("/v3/flatcontainer/ops.files/index.json", b'{"versions":["1.0.0"]}'),
        ("/v3/flatcontainer/ops.files/1.0.0/ops.files.1.0.0.nupkg", big),
    ):
        first = ops_server.get(url)
        assert first.status_code == 200 and first.content == body
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert etag.startswith('"') and modified.endswith(" GMT") and first.headers["cache-control"]
        assert ops_server.get(url, headers={"if-none-match": etag}).status_code == 304
        assert ops_server.get(url, headers={"if-none-match": f'"x", W/{etag}'}).status_code == 304
        head = httpx.head(ops_server.url + url)
        assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
        assert int(head.headers["content-length"]) == len(body)
    index = "/v3/flatcontainer/ops.files/index.json"
    modified = ops_server.get(index).headers["last-modified"]
    assert ops_server.get(index, headers={"if-modified-since": modified}).status_code == 304
    part = ops_server.get(
        "/v3/flatcontainer/ops.files/1.0.0/ops.files.1.0.0.nupkg", headers={"range": "bytes=0-99"}
    )
    assert part.status_code == 206 and part.content == big[:100]  # resumable downloads of large packages
