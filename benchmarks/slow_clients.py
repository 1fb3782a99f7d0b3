"""Slow clients: how long a normal request takes while an attacker holds thousands of connections open.

    .venv/bin/python benchmarks/slow_clients.py            # 2,000 slow connections, about 7 minutes
    .venv/bin/python benchmarks/slow_clients.py --connections 500 --requests 50 --setups nugat

The attacker keeps ``--connections`` connections open, a third each: headers sent one line a second and
never finished, a sign-in form declared 60,000 bytes and sent one byte a second, idle keep-alive
connections after one request; whatever the server closes is opened again within a second. It attacks
from 16 addresses (127.0.8.1-16: every connection held, under any per-address limit), then from one
(127.0.0.2: past nugat's per-address limit, and nginx's). Meanwhile a visitor (127.0.0.1) sends
``--requests`` ``GET /signin`` one after another, ``--pause`` apart, each on a new connection; the table
shows their p50, p99 and worst time (no answer within ``--timeout``, or not a 200: that long, and a
failure). Setups: ``nugat`` (``nugat serve``, one worker, behind-a-proxy settings) and ``nginx+nugat``
(nginx with docs/nginx/nugat.conf in front of it, one nginx worker). All on 127.0.0.1, all stopped at
the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.slowclients import SlowClients, Timings, addresses, raise_fd_limit, timed_requests  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from run import free_port, wait_for  # noqa: E402

NUGAT = [str(Path(sys.executable).with_name("nugat"))]
NGINX_INCLUDE = ROOT / "docs" / "nginx" / "nugat.conf"
ATTACKER, VISITOR = "127.0.0.2", "127.0.0.1"


@contextlib.contextmanager
def nugat(data: Path, port: int, env: dict[str, str]) -> Iterator[None]:
    log = (data / "serve.log").open("w")
    argv = [*NUGAT, "serve", "--port", str(port), "--data-dir", str(data)]
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/health", proc)
        yield
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and its workers (its own process group), killing them if they linger."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


@contextlib.contextmanager
def nginx(folder: Path, storage: Path, upstream: int, port: int) -> Iterator[None]:
    """nginx (one worker) with the documented include in front of nugat."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    folder.mkdir()
    include = folder / "nugat.conf"
    include.write_text(NGINX_INCLUDE.read_text().replace("/var/lib/nugat/storage", str(storage)))
    config = folder / "nginx.conf"
    config.write_text(
        f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log crit;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    limit_conn_zone $binary_remote_addr zone=nugat_per_client:10m;
    upstream nugat {{ server 127.0.0.1:{upstream}; keepalive 32; keepalive_timeout 5s; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        include {include};
    }}
}}
"""
    )
    proc = subprocess.Popen(
        [binary, "-p", str(folder), "-c", str(config)], stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/health", proc)
        yield
    finally:
        stop(proc)


ATTACKS = {"16 addresses": addresses(16), "one address": (ATTACKER,)}


def measure(
    port: int, connections: int, sources: tuple[str, ...], args: argparse.Namespace
) -> tuple[Timings, str]:
    """The visitor's requests while ``connections`` slow ones come from ``sources``."""
    with SlowClients("127.0.0.1", port, connections, sources=sources) as attack:
        attack.start()
        time.sleep(args.settle)
        held = attack.open_now
        loaded = timed_requests(
            "127.0.0.1",
            port,
            "/signin",
            args.requests,
            source=VISITOR,
            timeout=args.timeout,
            pause=args.pause,
        )
        note = (
            f"{held} held when measuring began, {attack.open_now} at the end; {attack.reopened} reopened "
            f"after the server closed them, {attack.failed} connects failed"
        )
    return loaded, note


def row(setup: str, what: str, t: Timings) -> str:
    return (
        f"| {setup} | {what} | {len(t.seconds)} | {t.p50 * 1000:,.1f} | {t.p99 * 1000:,.1f} | "
        f"{t.worst * 1000:,.1f} | {t.failures} |"
    )


def run_setup(setup: str, port: int, args: argparse.Namespace, lines: list[str], notes: list[str]) -> None:
    quiet = timed_requests("127.0.0.1", port, "/signin", 40, source=VISITOR, pause=args.pause)
    lines.append(row(setup, "alone", quiet))
    print(lines[-1], flush=True)
    for name in args.attacks.split(","):
        loaded, note = measure(port, args.connections, ATTACKS[name], args)
        lines.append(row(setup, f"{args.connections:,} slow connections from {name}", loaded))
        notes.append(f"{setup}, {name}: {note}")
        print(lines[-1], f"\n* {notes[-1]}", flush=True)
        time.sleep(2)


def main() -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between the visitor's requests")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of attack before measuring")
    parser.add_argument("--setups", default="nugat,nginx+nugat")
    parser.add_argument("--attacks", default="16 addresses,one address")
    parser.add_argument("--timeout", type=float, default=10.0, help="a request's longest wait")
    args = parser.parse_args()
    raise_fd_limit(args.connections * 2 + 1024)
    lines = [
        "| setup | the visitor's GET /signin | n | p50 ms | p99 ms | worst ms | failed |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="nugat-slow-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUGAT_")}
        # As behind nginx; 127.0.0.1 (the visitor, nginx) is the trusted proxy, the attackers are not.
        env |= {"NUGAT_TRUST_FORWARDED": "true", "NUGAT_TRUSTED_PROXIES": VISITOR}
        nugat_port = free_port()
        data = work / "data"
        data.mkdir()
        with nugat(data, nugat_port, env):
            for setup in args.setups.split(","):
                with contextlib.ExitStack() as stack:
                    port = nugat_port
                    if setup == "nginx+nugat":
                        port = free_port()
                        stack.enter_context(nginx(work / "nginx", data / "storage", nugat_port, port))
                    run_setup(setup, port, args, lines, notes)
    load = os.getloadavg()
    print(
        f"\nslow clients, {time.strftime('%Y-%m-%d')}, load average {load[0]:.2f} (15 min: {load[2]:.2f})\n"
    )
    print("\n".join(lines))
    print()
    for note in notes:
        print(f"* {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
