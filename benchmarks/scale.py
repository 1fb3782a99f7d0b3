"""nugat at scale (issue 16): the costs that grew with the feed, measured at a given number of versions.

    nice -n 19 .venv/bin/python benchmarks/scale.py --versions 100000                   # SQLite
    nice -n 19 .venv/bin/python benchmarks/scale.py --versions 100000 --postgres        # PostgreSQL
    nice -n 19 .venv/bin/python benchmarks/scale.py --versions 1000000 --postgres

Generates the versions straight into the database (ids of 10 versions each, as ``run.py`` does, and one
id of 3,000 versions), builds search's entries for them, runs ``nugat rebuild``, settles the database
(VACUUM, ANALYZE, CHECKPOINT: as a feed that grew over time would be, not seconds after a bulk load),
starts ``nugat serve --workers 2``, and prints a Markdown table of: the first search after a start (and
after a restart of nugat alone), worker RSS, search one at a time and 16 at a time for several queries,
pushes of new ids, search right after a push, a push seen by search, pushes to the 3,000-version id,
``nugat rebuild``, and a start after a (simulated) machine crash (reads while the documents are rebuilt
in the background, and how long that takes). Every loop is bounded in count and time. The machine facts
(``benchmarks/machine.py``: CPU model, calibration, fsync latency, load) are printed with the table.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine
import run as bench

VARIED = Path(__file__).resolve().parent / "varied_search.lua"
BIG_ID = "Big.Many"
BIG_VERSIONS = 3000
QUERIES = [
    ("q=json", "q=json&take=20"),
    ("q=http", "q=http&take=20"),
    ("browse (no q)", "take=20"),
    ("q=json skip=1000", "q=json&skip=1000&take=20"),
    ("browse skip=1000", "skip=1000&take=20"),
    ("q=json prerelease semVerLevel=2", "q=json&take=20&prerelease=true&semVerLevel=2.0.0"),
]


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    import psycopg

    dsn = os.environ.get("NUGAT_BENCH_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    name = f"nugat_scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def add_big_id(db_url: str, data_dir: Path, owner: str) -> None:
    """An id of BIG_VERSIONS versions owned by ``owner``, inserted straight into the database, then built."""
    from sqlalchemy import func, insert, select

    from nugat.confusables import skeleton
    from nugat.core import Core
    from nugat.db import Database
    from nugat.db.models import Account, PackageOwner, PackageRegistration, PackageVersion
    from nugat.settings import Settings

    db = Database(db_url)
    now = datetime(2025, 1, 1)
    with db.engine.begin() as c:
        reg_id = c.execute(
            insert(PackageRegistration).returning(PackageRegistration.id),
            {
                "package_id": BIG_ID,
                "id_lower": BIG_ID.lower(),
                "revision": 1,
                "built_revision": 0,
                "total_downloads": 0,
                "created_at": now,
                "skeleton": skeleton(BIG_ID),
            },
        ).scalar_one()
        account = c.execute(select(Account.id).where(Account.name_lower == owner)).scalar_one()
        c.execute(insert(PackageOwner), {"registration_id": reg_id, "account_id": account})
        rows = []
        for n in range(BIG_VERSIONS):
            version = f"0.{n // 100}.{n % 100}"
            rows.append(
                bench.version_row(
                    reg_id,
                    BIG_ID,
                    version,
                    now,
                    downloads=0,
                    search_text="big.many\n\n\nmany versions\nbench",
                    metadata={"description": "Many versions", "authors": ["bench"], "tags": []},
                )
            )
        c.execute(insert(PackageVersion), rows)
        assert c.execute(select(func.count()).where(PackageVersion.registration_id == reg_id)).scalar_one()
    db.dispose()
    core = Core(Settings(data_dir=data_dir, database_url=db_url))
    core.materializer.build(BIG_ID.lower())
    core.close()


def settle(db_url: str) -> None:
    """What a feed that grew over months has and a bulk load has not yet: its tables vacuumed and
    analyzed, and the load's WAL checkpointed. Otherwise autovacuum and the checkpoint of the gigabytes
    just written run during the measures (at 1M versions they doubled a push's latency)."""
    if db_url.startswith("sqlite"):
        import sqlite3

        with contextlib.closing(
            sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        ) as db:
            db.execute("ANALYZE")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    import psycopg

    dsn = db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("VACUUM ANALYZE")
        db.execute("CHECKPOINT")


def timed_get(client: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    began = time.perf_counter()
    response = client.get(url)
    return (time.perf_counter() - began) * 1000, response


def start_and_search(server: bench.Nugat) -> tuple[float, float, int]:
    """Start ``server``: milliseconds to /health answering, then to its first search's answer, and that
    search's total."""
    began = time.perf_counter()
    server.start(timeout=600)
    started = (time.perf_counter() - began) * 1000
    with httpx.Client(timeout=300) as client:
        first, response = timed_get(client, f"{server.url}/v3/search?q=json&take=20")
    assert response.status_code == 200, response.text
    return started, first, int(response.json()["totalHits"])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * (len(ordered) - 1)))]


def push_one(conn: http.client.HTTPConnection, key: str, body: bytes) -> tuple[float, int]:
    began = time.perf_counter()
    conn.request("PUT", "/api/v2/package/", body=body, headers={"X-NuGet-ApiKey": key})
    response = conn.getresponse()
    response.read()
    return (time.perf_counter() - began) * 1000, response.status


def rss_mb(server: bench.Nugat) -> str:
    return ", ".join(f"{bench.proc_kib(pid, 'VmRSS') / 1024:.0f}" for pid in server.workers_pids()) + " MB"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL on 127.0.0.1:5432 (else SQLite)")
    parser.add_argument("--seconds", type=float, default=5, help="per one-at-a-time and wrk measure")
    parser.add_argument("--pushes", type=int, default=40, help="pushes per push measure")
    parser.add_argument("--restarts", type=int, default=5, help="restarts of nugat alone measured")
    parser.add_argument("--no-crash-start", action="store_true", help="skip the start after a machine crash")
    args = parser.parse_args()
    wrk_bin, _ = bench.ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="nugat-scale-"))
    facts = machine.measure(work).line()
    rows: list[tuple[str, str]] = []
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)
        db_url = stack.enter_context(postgres()) if args.postgres else None
        more = {"NUGAT_DATABASE_URL": db_url} if db_url else {}
        env = bench.base_env(work, **more)
        began = time.perf_counter()
        ids = bench.generate_search_data(env, args.versions, database_url=db_url)
        setup = bench.Nugat(work, 1, env)
        rows.append(
            (
                "data generated straight into the database (setup, not a goal)",
                f"{time.perf_counter() - began:.0f} s",
            )
        )
        key = bench.make_key(setup)
        add_big_id(db_url or f"sqlite:///{(work / 'nugat.db').resolve()}", work, "bench")
        began = time.perf_counter()
        subprocess.run([*bench.NUGAT, "rebuild"], env=env, check=True, capture_output=True, timeout=3600)
        rows.append(
            (
                "`nugat rebuild` (every id's documents and search entries)",
                f"{time.perf_counter() - began:.1f} s",
            )
        )
        began = time.perf_counter()
        settle(db_url or f"sqlite:///{(work / 'nugat.db').resolve()}")
        rows.append(
            (
                "database settled after the bulk load (VACUUM, ANALYZE, checkpoint; setup, not a goal)",
                f"{time.perf_counter() - began:.1f} s",
            )
        )

        server = bench.Nugat(work, 2, env)
        stack.callback(server.stop)
        started, first, total = start_and_search(server)
        rows.append(
            (
                "start to /health answering; first search after it (q=json; the database's cache as"
                " the bulk load left it)",
                f"{started:.0f} ms; {first:.0f} ms ({total:,} hits)",
            )
        )
        rows.append(("worker RSS after the first search", rss_mb(server)))
        # A restart of nugat alone (a deploy): the database has served searches, the workers start empty.
        # One start varies more than the sizes differ: several, and their median and range.
        starts: list[float] = []
        firsts: list[float] = []
        for _ in range(max(1, args.restarts)):
            server.stop()
            started, first, _ = start_and_search(server)
            starts.append(started)
            firsts.append(first)
        rows.append(
            (
                f"a restart of nugat alone ({len(firsts)} restarts): to /health answering; first search after"
                " it (q=json): median (range)",
                f"{statistics.median(starts):.0f} ms ({min(starts):.0f}-{max(starts):.0f});"
                f" {statistics.median(firsts):.0f} ms ({min(firsts):.0f}-{max(firsts):.0f})",
            )
        )
        with httpx.Client(timeout=300) as client:
            for label, query in QUERIES:
                result = bench.one_at_a_time(f"{server.url}/v3/search?{query}", args.seconds, most=400)
                rows.append(
                    (
                        f"search {label}, one at a time: p50 / p99",
                        f"{result.p50:.1f} / {result.p99:.1f} ms ({result.rps:.0f} req/s)",
                    )
                )
            for label, query in QUERIES[:3]:
                result = bench.wrk(wrk_bin, f"{server.url}/v3/search?{query}", args.seconds, connections=16)
                errors = f", {result.errors} errors" if result.errors else ""
                rows.append(
                    (
                        f"search {label}, 16 concurrent (wrk): rate, p99",
                        f"{result.rps:.0f} req/s, p99 {result.p99:.1f} ms{errors}",
                    )
                )
            # Every request a page not asked before (16 words x 2,000 offsets): nothing is reused, what the
            # database and the process cost per search (the rows above mostly answer from a kept page).
            varied = [f"q={w}&skip={(n * 7919) % 2000}&take=20" for n, w in enumerate(bench.WORDS * 25)]
            times = []
            for query in varied[:400]:
                ms, response = timed_get(client, f"{server.url}/v3/search?{query}")
                assert response.status_code == 200
                times.append(ms)
            rows.append(
                (
                    f"search, a different page each time ({len(times)} pages, nothing reused), one at a time:"
                    " p50 / p99",
                    f"{statistics.median(times):.1f} / {pct(times, 0.99):.1f} ms",
                )
            )
            result = bench.wrk(wrk_bin, server.url, args.seconds, connections=16, script=VARIED)
            rows.append(
                (
                    "search, a different page each request (nothing reused), 16 concurrent (wrk): rate, p99",
                    f"{result.rps:.0f} req/s, p99 {result.p99:.1f} ms",
                )
            )
            rows.append(("worker RSS after the searches", rss_mb(server)))

            host, port = server.url.removeprefix("http://").rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=120)
            run = uuid.uuid4().hex[:6]
            latencies, visible, failures, at_once = [], [], 0, 0
            deadline = time.monotonic() + 120
            for n in range(args.pushes):
                if time.monotonic() > deadline:
                    break
                package_id = f"Scale.New{run}.N{n}"
                ms, status = push_one(conn, key, bench.nupkg(package_id, "1.0.0", payload=1024))
                latencies.append(ms)
                failures += status != 201
                # Search right after the push, on whichever worker answers: until it shows (bounded).
                began = time.perf_counter()
                for _ in range(100):
                    found = client.get(f"{server.url}/v3/search?q=packageid:{package_id.lower()}").json()
                    if found["totalHits"]:
                        break
                    time.sleep(0.01)
                visible.append((time.perf_counter() - began) * 1000)
                at_once += bool(found["totalHits"]) and _ == 0
            rows.append(
                (
                    f"push of a new id ({len(latencies)} pushes{f', {failures} failed' if failures else ''}):"
                    " p50 / p99",
                    f"{statistics.median(latencies):.1f} / {pct(latencies, 0.99):.1f} ms",
                )
            )
            rows.append(
                (
                    "search right after a push, either worker: time until it shows, p50 / max",
                    f"{statistics.median(visible):.1f} / {max(visible):.1f} ms (shown by the first query "
                    f"after {at_once} of {len(visible)} pushes)",
                )
            )

            latencies, failures = [], 0
            deadline = time.monotonic() + 120
            for n in range(args.pushes):
                if time.monotonic() > deadline:
                    break
                ms, status = push_one(conn, key, bench.nupkg(BIG_ID, f"1.{run_int(run)}.{n}", payload=1024))
                latencies.append(ms)
                failures += status != 201
            rows.append(
                (
                    f"push to an id with {BIG_VERSIONS:,} versions ({len(latencies)} pushes"
                    f"{f', {failures} failed' if failures else ''}): p50 / p99",
                    f"{statistics.median(latencies):.1f} / {pct(latencies, 0.99):.1f} ms",
                )
            )
            conn.close()
            rows.append(("worker RSS at the end", rss_mb(server)))
        server.stop()
        if not args.no_crash_start:
            rows += crash_start(server, db_url or f"sqlite:///{(work / 'nugat.db').resolve()}", ids)
        database = "PostgreSQL" if args.postgres else "SQLite"
        print(
            f"\nnugat at scale: {args.versions:,} versions ({ids:,} ids + one of {BIG_VERSIONS:,}), "
            f"{database}, nugat serve --workers 2\n{facts}; after: load average {os.getloadavg()[0]:.2f}\n"
        )
        print("| measure | result |")
        print("|---|---|")
        for measure, value in rows:
            print(f"| {measure} | {value} |")
    return 0


def crash_start(server: bench.Nugat, db_url: str, ids: int) -> list[tuple[str, str]]:
    """A start after a machine crash (the marker of unsynced documents left by another boot): the time to
    /health, restores of ids the background has not reached yet (each rebuilt on its read), and the time
    until the background has rebuilt every id."""
    from sqlalchemy import create_engine, text

    (server.data_dir / "storage" / ".unsynced").write_text("a-boot-before-the-crash\n")
    began = time.perf_counter()
    server.start(timeout=3600)
    started = time.perf_counter() - began
    words = bench.WORDS
    reads = []
    with httpx.Client(timeout=60) as client:
        # The background goes in id order: the last ids are the furthest from it.
        for i in range(ids - 1, max(ids - 101, -1), -1):
            id_lower = f"gen.{words[i % 16]}.p{i}"
            for path in (
                f"flatcontainer/{id_lower}/index.json",
                f"registration-semver2/{id_lower}/index.json",
            ):
                ms, response = timed_get(client, f"{server.url}/v3/{path}")
                assert response.status_code == 200, (path, response.status_code)
                reads.append(ms)
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    stale = (
        "SELECT count(*) FROM package_registrations WHERE built_revision < revision"
        " OR built_epoch < (SELECT epoch FROM document_epoch)"
    )
    with engine.connect() as c:
        while c.execute(text(stale)).scalar_one() and time.perf_counter() - began < 3600:
            c.rollback()
            time.sleep(0.5)
    rebuilt = time.perf_counter() - began
    engine.dispose()
    server.stop()
    return [
        ("start after a machine crash, to /health", f"{started:.1f} s"),
        (
            f"restore reads of ids not rebuilt yet, right after ({len(reads)} index reads): first; p50 / p99"
            " / max",
            f"{reads[0]:.1f}; {statistics.median(reads):.1f} / {pct(reads, 0.99):.1f} / {max(reads):.1f} ms",
        ),
        ("every document rebuilt in the background, from the start", f"{rebuilt:.1f} s"),
    ]


def run_int(run: str) -> int:
    return int(run, 16) % 1000 + 1


if __name__ == "__main__":
    sys.exit(main())
