"""nugat's benchmarks: one run, one machine, 127.0.0.1, every load bounded in time; prints a Markdown table.

    .venv/bin/python benchmarks/run.py                 # about 6 minutes
    .venv/bin/python benchmarks/run.py --duration 2 --rounds 1 --search-versions 20000   # a quick look

Setups, all on one data folder (so every setup serves the same files):

* ``nugat 1``     ``nugat serve`` (one worker process), the embedded default: SQLite + local folder
* ``nugat 2``     ``nugat serve --workers 2``
* ``nginx+nugat`` nginx with docs/nginx/nugat.conf in front of ``nugat 2``: the read path as static files
* ``nginx``       nginx serving the same files with a bare ``root``: the ceiling

Reads are measured with wrk (one thread, 32 connections, ``--duration`` seconds), the setups interleaved
and the whole repeated ``--rounds`` times; the table shows the median round, and as "vs nginx" the median
of each round's ratio to that round's nginx run of the same URL (for the reads with a read key by nugat
itself, the ratio to the same process's anonymous read of the same file). Pushes are timed one by one
(then eight at a time) with httpx. The machine is shared: the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import io
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
from machine import Machine, measure, process_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
NUGAT = [str(Path(sys.executable).with_name("nugat"))]
NGINX_INCLUDE = ROOT / "docs" / "nginx" / "nugat.conf"
NGINX_PRIVATE_INCLUDE = ROOT / "docs" / "nginx" / "nugat-private.conf"
NUSPEC_NS = "http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"
READ_ID = "Bench.Lib"


# ------------------------------------------------------------------------------------------- tools


def ensure_tools() -> tuple[str, str]:
    """wrk and nginx, installed from Debian when missing."""
    missing = [
        name for name in ("wrk", "nginx") if not (shutil.which(name) or Path(f"/usr/sbin/{name}").exists())
    ]
    if missing:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", *missing], check=True)
    wrk = shutil.which("wrk") or "/usr/bin/wrk"
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return wrk, nginx


# The words of the generated ids and descriptions (``generate_search_data``).
WORDS = ["json", "http", "logging", "sql", "cache", "queue", "auth", "crypto"]
WORDS += ["image", "pdf", "xml", "yaml", "grpc", "redis", "kafka", "test"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nuspec(package_id: str, version: str) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><package xmlns="{NUSPEC_NS}"><metadata>'
        f"<id>{package_id}</id><version>{version}</version><authors>bench</authors>"
        f"<description>{package_id} {version}</description></metadata></package>"
    )


def nupkg(package_id: str, version: str, payload: int = 16 << 10) -> bytes:
    """A small valid package with ``payload`` random (incompressible) bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{package_id}.nuspec", nuspec(package_id, version))
        zf.writestr("lib/netstandard2.0/payload.bin", random.randbytes(payload))
    return buf.getvalue()


def proc_kib(pid: int, field: str, file: str = "status") -> int:
    """A memory figure of a process in KiB: VmRSS, VmHWM (its peak RSS) from status, Pss from smaps_rollup."""
    with open(f"/proc/{pid}/{file}") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(f"{field}:"))


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


# ------------------------------------------------------------------------------------------- servers


@dataclass
class Nugat:
    data_dir: Path
    workers: int
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Nugat:
        log = (self.data_dir / f"serve-{self.port}.log").open("w")
        argv = [*NUGAT, "serve", "--port", str(self.port), "--workers", str(self.workers)]
        self.proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(f"{self.url}/health", self.proc, timeout)
        while len(self.workers_pids()) < self.workers:
            time.sleep(0.05)
        return self

    def workers_pids(self) -> list[int]:
        assert self.proc is not None
        return children(self.proc.pid)

    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid, *self.workers_pids()]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [*NUGAT, *args], env=self.env, input=stdin, capture_output=True, text=True, check=True
        )
        return done.stdout


def wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout} s")
        time.sleep(0.1)


@contextlib.contextmanager
def nginx(
    binary: str,
    folder: Path,
    storage: Path,
    upstream: Nugat,
    proxy_port: int,
    static_port: int,
    private_port: int,
) -> Iterator[None]:
    """One nginx (one worker): the documented setup on ``proxy_port``, bare files on ``static_port``, the
    documented setup for private reads (auth_request to nugat) on ``private_port``."""
    folder.mkdir()
    include = folder / "nugat.conf"
    include.write_text(NGINX_INCLUDE.read_text().replace("/var/lib/nugat/storage", str(storage)))
    private = folder / "nugat-private.conf"
    private.write_text(NGINX_PRIVATE_INCLUDE.read_text().replace("/var/lib/nugat/storage", str(storage)))
    config = folder / "nginx.conf"
    config.write_text(
        f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    limit_conn_zone $binary_remote_addr zone=nugat_per_client:10m;
    proxy_cache_path {folder}/reads keys_zone=nugat_reads:1m max_size=16m inactive=10s;
    upstream nugat {{ server 127.0.0.1:{upstream.port}; keepalive 32; keepalive_timeout 5s; }}
    server {{
        listen 127.0.0.1:{proxy_port};
        include {include};
    }}
    server {{
        listen 127.0.0.1:{private_port};
        include {private};
    }}
    server {{
        listen 127.0.0.1:{static_port};
        root {storage};
        default_type application/octet-stream;
    }}
}}
"""
    )
    proc = subprocess.Popen([binary, "-p", str(folder), "-c", str(config)], stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{static_port}/", proc)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# ------------------------------------------------------------------------------------------- measures


@dataclass
class Result:
    rps: float
    p50: float  # milliseconds
    p99: float
    errors: int = 0


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    binary: str,
    url: str,
    seconds: float,
    connections: int = 32,
    timeout: int = 10,
    auth: str | None = None,
    script: Path | None = None,
) -> Result:
    """``auth``: a read key, sent as nuget.exe sends a source's password (HTTP Basic); ``script``: a Lua
    script making each request (``url`` then gives only the server)."""
    headers = ["-H", f"Authorization: {basic(auth)}"] if auth else []
    headers += ["-s", str(script)] if script else []
    out = subprocess.run(
        [
            binary,
            "-t1",
            f"-c{connections}",
            f"-d{round(seconds)}s",
            f"--timeout={timeout}s",
            "--latency",
            *headers,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + timeout + 30,
    ).stdout

    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = sum(
        int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors:.*?timeout)\s*:?\s*(\d+)", out)
    )
    return Result(float(rps.group(1)) if rps else 0.0, latency("50"), latency("99"), errors)


def push_run(url: str, key: str, bodies: list[bytes], threads: int) -> Result:
    """Push every body (``threads`` at a time, one keep-alive connection each); pushes/s and latencies.

    The client is the standard library's http.client: httpx spends about 2 ms of CPU per push on this
    2-core machine, which the server would be charged for (wrk is the client for reads for the same reason).
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    latencies: list[float] = []
    failures = 0
    local = threading.local()

    def one(body: bytes) -> None:
        nonlocal failures
        conn = getattr(local, "conn", None) or http.client.HTTPConnection(host, int(port), timeout=120)
        local.conn = conn
        start = time.perf_counter()
        conn.request("PUT", "/api/v2/package/", body=body, headers={"X-NuGet-ApiKey": key})
        response = conn.getresponse()
        response.read()
        latencies.append((time.perf_counter() - start) * 1000)
        failures += response.status != 201

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, bodies))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return Result(
        len(bodies) / elapsed,
        statistics.median(latencies),
        latencies[int(0.99 * (len(latencies) - 1))],
        failures,
    )


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"bench:{key}".encode()).decode()


def make_read_key(server: Nugat, *selection: str) -> str:
    """A read key of the user bench (made by ``make_key``); ``selection``: ``--glob``/``--package`` args."""
    created = server.cli(
        "key", "create", "--user", "bench", "--name", f"read-{len(selection)}", "--scope", "read", *selection,
        "--json",
    )  # fmt: skip
    return str(json.loads(created)["key"])


def make_key(server: Nugat) -> str:
    server.cli(
        "user",
        "create",
        "bench",
        "--email",
        "bench@example.test",
        "--password-stdin",
        stdin="bench-password-1234\n",
    )
    created = server.cli(
        "key", "create", "--user", "bench", "--name", "bench", "--scope", "push", "--glob", "*", "--json"
    )
    return str(json.loads(created)["key"])


def version_row(
    registration_id: int,
    package_id: str,
    version: str,
    published: datetime,
    *,
    downloads: int,
    search_text: str,
    metadata: dict[str, object],
) -> dict[str, object]:
    """A ``package_versions`` row for data inserted straight into the database (no package behind it)."""
    return {
        "registration_id": registration_id,
        "package_id": package_id,
        "version": version,
        "version_lower": version,
        "full_version": version,
        "original_version": version,
        "is_prerelease": False,
        "is_semver2": False,
        "listed": True,
        "published_at": published,
        "pushed_by_key": None,
        "size": 1000,
        "sha512": "x",
        "downloads": downloads,
        "search_text": search_text,
        "metadata_json": metadata,
    }


def generate_search_data(env: dict[str, str], versions: int, *, database_url: str | None = None) -> int:
    """``versions`` listed versions over ids of 10 versions each, straight into the database, then search's
    entries built for them (``search_index.index_all``: what the migration or ``nugat rebuild`` does)."""
    from sqlalchemy import insert

    from nugat.confusables import skeleton
    from nugat.db import Database
    from nugat.db.models import PackageRegistration, PackageVersion
    from nugat.services.search_index import index_all
    from nugat.settings import Settings

    words = WORDS
    db = Database(database_url or Settings(data_dir=Path(env["NUGAT_DATA_DIR"])).db_url)
    db.upgrade()
    now = datetime(2025, 1, 1)
    ids = versions // 10
    rng = random.Random(16)
    for first in range(0, ids, 10_000):  # one transaction per 10,000 ids (100,000 versions)
        chunk = range(first, min(first + 10_000, ids))
        with db.engine.begin() as conn:
            conn.execute(
                insert(PackageRegistration),
                [
                    {
                        "id": i + 1,
                        "package_id": f"Gen.{words[i % 16].title()}.P{i}",
                        "id_lower": f"gen.{words[i % 16]}.p{i}",
                        "revision": 1,
                        "built_revision": 1,
                        "total_downloads": i,
                        "created_at": now,
                        "skeleton": skeleton(f"Gen.{words[i % 16].title()}.P{i}"),
                    }
                    for i in chunk
                ],
            )
            for start in range(chunk.start, chunk.stop, 1000):
                rows = []
                for i in range(start, min(start + 1000, chunk.stop)):
                    word = words[i % 16]
                    description = f"A {word} library number {i}: {' '.join(rng.sample(words, 4))}."
                    for v in range(10):
                        rows.append(
                            version_row(
                                i + 1,
                                f"Gen.{word.title()}.P{i}",
                                f"1.{v}.0",
                                now,
                                downloads=v,
                                search_text=f"gen.{word}.p{i}\n\n{word}\n{description.lower()}\nbench",
                                metadata={"description": description, "authors": ["bench"], "tags": [word]},
                            )
                        )
                conn.execute(insert(PackageVersion), rows)
    if db.url.startswith("postgresql"):
        with db.engine.begin() as conn:  # the ids were given: the sequence goes on after them
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('package_registrations', 'id'), "
                "(SELECT max(id) FROM package_registrations))"
            )
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    with db.engine.begin() as conn:
        index_all(conn)
    if db.url.startswith("postgresql"):
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    db.dispose()
    return ids


@dataclass
class Row:
    measure: str
    setup: str
    value: str  # "12,345 req/s", "85 MB", ...
    p50: float | None = None
    p99: float | None = None
    ratio: float | None = None  # to the nginx ceiling
    target: str = ""
    met: bool | None = None


def rate_row(measure: str, setup: str, result: Result, unit: str, ratio: float | None = None) -> Row:
    errors = f" ({result.errors} errors)" if result.errors else ""
    rate = f"{result.rps:,.0f}" if result.rps >= 10 else f"{result.rps:.2f}"
    return Row(measure, setup, f"{rate} {unit}{errors}", result.p50, result.p99, ratio)


def median_result(results: list[Result]) -> Result:
    ordered = sorted(results, key=lambda r: r.rps)
    return ordered[len(ordered) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of reads (default 3)")
    parser.add_argument("--pushes", type=int, default=200, help="small pushes per push measure (default 200)")
    parser.add_argument(
        "--search-versions", type=int, default=100_000, help="versions for the search measure"
    )
    parser.add_argument("--big-mb", type=int, default=100, help="size of the one big push (default 100 MB)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    wrk_bin, nginx_bin = ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="nugat-bench-"))
    rows: list[Row] = []
    machine = measure(work)
    started = time.monotonic()
    try:
        rows += reads_and_pushes(args, wrk_bin, nginx_bin, work)
        rows += big_push_and_idle(args, work)
        rows += search_at_scale(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_table(rows, args, machine, os.getloadavg(), time.monotonic() - started)
    return 0


def base_env(data_dir: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUGAT_")}
    return env | {"NUGAT_DATA_DIR": str(data_dir), "NUGAT_PUSH_LIMIT_PER_HOUR": "1000000000"} | more


def reads_and_pushes(args: argparse.Namespace, wrk_bin: str, nginx_bin: str, work: Path) -> list[Row]:
    data = work / "feed"
    data.mkdir()
    proxy_port, static_port, private_port = free_port(), free_port(), free_port()
    env = base_env(data, NUGAT_PUBLIC_URL=f"http://127.0.0.1:{proxy_port}", NUGAT_TRUST_FORWARDED="true")
    one = Nugat(data, 1, env)
    two = Nugat(data, 2, env)
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        for server in (one, two):
            server.start()
            stack.callback(server.stop)
        key = make_key(one)
        assert push_run(one.url, key, [nupkg(READ_ID, f"1.{v}.0") for v in range(10)], 1).errors == 0
        stack.enter_context(
            nginx(nginx_bin, work / "nginx", data / "storage", two, proxy_port, static_port, private_port)
        )
        setups = {
            "nugat 1": one.url,
            "nugat 2": two.url,
            "nginx+nugat": f"http://127.0.0.1:{proxy_port}",
            "nginx": f"http://127.0.0.1:{static_port}",
        }
        id_lower = READ_ID.lower()
        reads = {
            "flat-container index.json": f"/v3/flatcontainer/{id_lower}/index.json",
            ".nupkg download (16 KB)": f"/v3/flatcontainer/{id_lower}/1.0.0/{id_lower}.1.0.0.nupkg",
            "registration index (10 versions)": f"/v3/registration/{id_lower}/index.json",
            "search (q=bench, 1 id)": "/v3/search?q=bench&take=20",
        }
        # The same files read with a read key on the credentialed source (``/private``: every read checks
        # the key), compared with the anonymous public reads of the same process and round.
        read_key = make_read_key(one, "--glob", "Bench.*")
        private = {
            "flat-container index.json, read key": "flat-container index.json",
            ".nupkg download (16 KB), read key": ".nupkg download (16 KB)",
        }
        results: dict[tuple[str, str], list[Result]] = {}
        for _ in range(args.rounds):
            for measure, path in reads.items():
                for setup, base in setups.items():
                    if setup == "nginx" and path.startswith("/v3/search"):
                        continue
                    results.setdefault((measure, setup), []).append(wrk(wrk_bin, base + path, args.duration))
            for measure, public in private.items():
                url = f"{one.url}/private{reads[public]}"
                results.setdefault((measure, "nugat 1"), []).append(
                    wrk(wrk_bin, url, args.duration, auth=read_key)
                )
                # nginx asking nugat (auth_request, answers kept 1 s) before serving the file
                url = f"http://127.0.0.1:{private_port}{reads[public]}"
                runs = results.setdefault((measure, "nginx-private+nugat"), [])
                runs.append(wrk(wrk_bin, url, args.duration, auth=read_key))
        targets = {
            ("flat-container index.json", "nugat 1"): (10_000, 0.2),
            (".nupkg download (16 KB)", "nugat 1"): (8_000, None),
        }
        for (measure, setup), runs in results.items():
            result = median_result(runs)
            # each round's ratio to that round's nginx run (rounds are minutes apart), then the median; for
            # the private reads, to that round's public read of the same file by the same process
            # (for nginx in front of private reads, to bare nginx serving the same file)
            if measure in private:
                ceiling = results.get((private[measure], "nginx" if setup.startswith("nginx") else setup))
            else:
                ceiling = results.get((measure, "nginx"))
            ratios = [run.rps / top.rps for run, top in zip(runs, ceiling, strict=True)] if ceiling else []
            row = rate_row(measure, setup, result, "req/s", statistics.median(ratios) if ratios else None)
            if measure in private and setup == "nugat 1":
                row.target, row.met = ">= 0.7 of the public read", (row.ratio or 0) >= 0.7
            elif (measure, setup) in targets:
                rps, least = targets[(measure, setup)]
                row.target = f">= {rps:,} req/s" + (f", >= {least} of nginx" if least else "")
                row.met = result.rps >= rps and (least is None or (row.ratio or 0) >= least)
            elif setup == "nginx+nugat" and row.ratio is not None:
                row.target, row.met = ">= 0.9 of nginx", row.ratio >= 0.9
            rows.append(row)
        # pushes: 20 ids of 10 versions each, sequentially, then 8 at a time
        for setup, url in (
            ("nugat 1", one.url),
            ("nugat 2", two.url),
            ("nginx+nugat", setups["nginx+nugat"]),
        ):
            tag = setup.replace(" ", "").replace("+", "")
            seq = [nupkg(f"Push.{tag}.S{i % 20}", f"1.{i // 20}.0", 2 << 10) for i in range(args.pushes)]
            par = [nupkg(f"Push.{tag}.C{i % 20}", f"1.{i // 20}.0", 2 << 10) for i in range(args.pushes)]
            server = one if setup == "nugat 1" else two
            cpu_before = process_cpu_seconds(server.pids())
            row = rate_row("sequential small pushes", setup, push_run(url, key, seq, 1), "pushes/s")
            cpu_ms = (process_cpu_seconds(server.pids()) - cpu_before) * 1000 / len(seq)
            if setup == "nugat 1":
                row.target, row.met = ">= 300 pushes/s", float(row.value.split()[0].replace(",", "")) >= 300
            rows.append(row)
            rows.append(Row("server CPU per sequential small push", setup, f"{cpu_ms:.2f} ms"))
            rows.append(rate_row("8 concurrent small pushes", setup, push_run(url, key, par, 8), "pushes/s"))
        peak = max(proc_kib(pid, "VmHWM") for pid in one.pids() + two.pids()) / 1024
        rows.append(Row("peak RSS of a nugat process, after all the above", "nugat 1, 2", f"{peak:.0f} MB"))
        rows[-1].target, rows[-1].met = "<= 200 MB", peak <= 200
    return rows


def big_push_and_idle(args: argparse.Namespace, work: Path) -> list[Row]:
    data = work / "big"
    data.mkdir()
    server = Nugat(data, 1, base_env(data)).start()
    try:
        key = make_key(server)
        time.sleep(2)  # idle
        worker = server.workers_pids()[0]
        idle = proc_kib(worker, "VmRSS") / 1024
        main_rss = proc_kib(server.pids()[0], "VmRSS") / 1024
        pss = sum(proc_kib(pid, "Pss", "smaps_rollup") for pid in server.pids()) / 1024
        big = work / "big.nupkg"
        with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("Big.One.nuspec", nuspec("Big.One", "1.0.0"))
            with zf.open("lib/payload.bin", "w", force_zip64=True) as out:
                for _ in range(args.big_mb):
                    out.write(os.urandom(1 << 20))
        before = proc_kib(worker, "VmRSS")
        start = time.perf_counter()
        with big.open("rb") as fh:
            status = httpx.put(
                f"{server.url}/api/v2/package/",
                files={"package": ("package.nupkg", fh, "application/octet-stream")},
                headers={"X-NuGet-ApiKey": key},
                timeout=600,
            ).status_code
        seconds = time.perf_counter() - start
        growth = (proc_kib(worker, "VmHWM") - before) / 1024
        return [
            Row(
                "idle RSS of the worker; of the main process; PSS of both",
                "nugat 1",
                f"{idle:.0f} MB; {main_rss:.0f} MB; {pss:.0f} MB",
                target="<= 100 MB",
                met=idle <= 100,
            ),
            Row(
                f"push of one {args.big_mb} MB package: time, peak RSS growth",
                "nugat 1",
                f"{seconds:.1f} s, +{growth:.0f} MB" + ("" if status == 201 else f" (HTTP {status})"),
                target="RSS growth <= 50 MB",
                met=status == 201 and growth <= 50,
            ),
        ]
    finally:
        server.stop()


def one_at_a_time(url: str, seconds: float, most: int = 500, auth: str | None = None) -> Result:
    """GET ``url`` again and again for ``seconds`` (at least 3 times, at most ``most``): latency alone;
    ``auth``: a read key, sent as HTTP Basic."""
    times: list[float] = []
    errors = 0
    headers = {"authorization": basic(auth)} if auth else {}
    with httpx.Client(timeout=300, headers=headers) as client:
        client.get(url)  # warm up
        start = time.perf_counter()
        while len(times) < 3 or (time.perf_counter() - start < seconds and len(times) < most):
            began = time.perf_counter()
            errors += client.get(url).status_code != 200
            times.append((time.perf_counter() - began) * 1000)
        elapsed = time.perf_counter() - start
    times.sort()
    return Result(len(times) / elapsed, statistics.median(times), times[int(0.99 * (len(times) - 1))], errors)


def search_at_scale(args: argparse.Namespace, work: Path) -> list[Row]:
    data = work / "search"
    data.mkdir()
    env = base_env(data)
    ids = generate_search_data(env, args.search_versions)
    server = Nugat(data, 1, env).start()
    try:
        rows = []
        for label, query in (("q=json", "q=json&take=20"), ("no q (browse)", "take=20")):
            result = one_at_a_time(f"{server.url}/v3/search?{query}", max(args.duration, 10))
            measure = f"search at {args.search_versions:,} versions ({ids:,} ids), {label}, one at a time"
            row = rate_row(measure, "nugat 1", result, "req/s")
            row.target, row.met = "p99 <= 20 ms", result.p99 <= 20
            rows.append(row)
        rows += filtered_search(args, data, env, server, ids)
        return rows
    finally:
        server.stop()


def filtered_search(
    args: argparse.Namespace, data: Path, env: dict[str, str], server: Nugat, ids: int
) -> list[Row]:
    """Search on a ``NUGAT_READ_ACCESS=users`` server (the same data) with a read key naming 1% of the ids:
    the key's selection is a filter of the SQL query, so counts and pages hold only those."""
    make_key(server)
    words = WORDS
    chosen = [f"Gen.{words[i % 16].title()}.P{i}" for i in range(0, ids, 100)]
    key = make_read_key(server, *(arg for package in chosen for arg in ("--package", package)))
    private = Nugat(data, 1, env | {"NUGAT_READ_ACCESS": "users"}).start()
    try:
        rows = []
        for label, query in (("q=json", "q=json&take=20"), ("no q (browse)", "take=20")):
            result = one_at_a_time(f"{private.url}/v3/search?{query}", max(args.duration, 10), auth=key)
            measure = f"search, read key covering {len(chosen):,} of {ids:,} ids, {label}, one at a time"
            row = rate_row(measure, "nugat 1, users", result, "req/s")
            row.target, row.met = "p99 <= 20 ms", result.p99 <= 20
            rows.append(row)
        return rows
    finally:
        private.stop()


def print_table(
    rows: list[Row],
    args: argparse.Namespace,
    machine: Machine,
    after: tuple[float, ...],
    seconds: float,
) -> None:
    print(f"\nnugat benchmarks on {machine.line()} before, {after[0]:.2f} after")
    rounds = f"median of {args.rounds} interleaved rounds"
    print(f"{seconds / 60:.1f} min; wrk -t1 -c32 -d{args.duration:g}s, {rounds}\n")
    print("| measure | setup | result | p50 ms | p99 ms | vs nginx | target | met |")
    print("|---|---|---:|---:|---:|---:|---|---|")
    for row in rows:
        p50 = "" if row.p50 is None else f"{row.p50:.2f}"
        p99 = "" if row.p99 is None else f"{row.p99:.2f}"
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        print(
            f"| {row.measure} | {row.setup} | {row.value} | {p50} | {p99} | {ratio} | {row.target} | {met} |"
        )


if __name__ == "__main__":
    sys.exit(main())
