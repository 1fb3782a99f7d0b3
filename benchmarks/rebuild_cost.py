"""What ``nugat rebuild`` costs on PostgreSQL (issue 16: <= 60 s at 1M versions), run after run on one feed.

    nice -n 19 .venv/bin/python benchmarks/rebuild_cost.py --versions 100000 --runs 3
    .venv/bin/python benchmarks/rebuild_cost.py --versions 100000 --keep /tmp/feed100k --runs 2 --profile
    .venv/bin/python benchmarks/rebuild_cost.py --keep /tmp/feed100k --runs 3 --compare ../main/src

Generates the versions straight into a new database once, as ``scale.py`` does (with ``--keep FOLDER``: once
for every invocation naming that folder; its database is then left behind), then runs ``nugat rebuild``
``--runs`` times: first into an empty tree (the documents moved aside: what ``scale.py`` measures), then
over the stored documents (``--compare SRC``: each run made by this nugat, then by the one in SRC: before and
after a change, in turn). For each: wall time, the CPU of nugat's processes (user and system) and of the
database's backends serving it, with the machine facts (``machine.py``). ``--profile``: the first process
runs under a CPU-time cProfile (the other processes do not), and the heaviest functions are printed. Trees
moved aside are removed at the end (removing files right before creating others would cost the creations
more on this machine's ext4).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine
import run as bench
import scale

SRC = Path(__file__).resolve().parents[1] / "src"
DSN = os.environ.get("NUGAT_BENCH_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")


@contextlib.contextmanager
def feed(versions: int, keep: Path | None) -> Iterator[tuple[Path, str]]:
    """A data folder and the URL of a database holding ``versions`` versions (kept under ``keep``)."""
    import psycopg

    work = keep or Path(tempfile.mkdtemp(prefix="nugat-rebuild-"))
    marker = work / "database-url"
    if marker.exists():
        yield work, marker.read_text().strip()
        return
    work.mkdir(parents=True, exist_ok=True)
    name = f"nugat_rebuild_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        env = bench.base_env(work, NUGAT_DATABASE_URL=url)
        bench.generate_search_data(env, versions, database_url=url)
        bench.make_key(bench.Nugat(work, 1, env))
        scale.add_big_id(url, work, "bench")
        if keep:
            marker.write_text(url)
        yield work, url
    finally:
        if not keep:
            with psycopg.connect(DSN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            shutil.rmtree(work, True)


class BackendCpu(threading.Thread):
    """Samples the CPU of the database's backends serving one database (they end with their connections)."""

    def __init__(self, database: str) -> None:
        super().__init__(daemon=True)
        self.database = database
        self.seen: dict[int, int] = {}  # pid: utime + stime, in ticks
        self.start_ticks: dict[int, int] = {}
        self.stopping = threading.Event()

    def sample(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                cmdline = Path(f"{entry.path}/cmdline").read_bytes()
                if not cmdline.startswith(b"postgres: ") or f" {self.database} ".encode() not in cmdline:
                    continue
                fields = Path(f"{entry.path}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            self.seen[int(entry.name)] = int(fields[11]) + int(fields[12])

    def run(self) -> None:
        self.sample()
        self.start_ticks = dict(self.seen)
        while not self.stopping.wait(0.1):
            self.sample()

    def seconds(self) -> float:
        self.stopping.set()
        self.join()
        self.sample()
        used = sum(t - self.start_ticks.get(pid, 0) for pid, t in self.seen.items())
        return used / os.sysconf("SC_CLK_TCK")


def rebuild(work: Path, url: str, *, src: Path, processes: int, profile: Path | None) -> str:
    env = bench.base_env(work, NUGAT_DATABASE_URL=url) | {"PYTHONPATH": str(src)}
    argv = [*bench.NUGAT, "rebuild"]
    if profile:
        # Not ``-m cProfile -m nugat.cli``: the other processes must find ``nugat.cli``'s functions there.
        # CPU time, not wall time: the machine is shared, and waits for the database are not its cost.
        code = (
            "import cProfile, sys, time, nugat.cli\n"
            "p = cProfile.Profile(time.process_time)\n"
            "p.runcall(nugat.cli.main, sys.argv[1:])\n"
            f"p.dump_stats({str(profile)!r})"
        )
        argv = [sys.executable, "-c", code, "rebuild"]
    if processes:
        argv += ["--processes", str(processes)]
    backends = BackendCpu(url.rsplit("/", 1)[1])
    backends.start()
    began = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    database = backends.seconds()
    if proc.returncode:
        raise SystemExit(f"nugat rebuild exited with {proc.returncode}")
    return (
        f"{wall:.1f} s wall; nugat CPU {usage.ru_utime + usage.ru_stime:.1f} s (user {usage.ru_utime:.1f}, "
        f"system {usage.ru_stime:.1f}); database CPU {database:.1f} s; load {os.getloadavg()[0]:.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="a folder keeping the feed between invocations")
    parser.add_argument(
        "--processes", type=int, default=0, help="nugat rebuild --processes (default: its own)"
    )
    parser.add_argument("--stored-only", action="store_true", help="every run over the stored documents")
    parser.add_argument("--profile", action="store_true", help="the first process under cProfile")
    parser.add_argument("--src", type=Path, default=SRC, help="the src folder of the nugat to run")
    parser.add_argument(
        "--compare", type=Path, help="another checkout's src folder: each run is made with both, in turn"
    )
    args = parser.parse_args()
    with feed(args.versions, args.keep) as (work, url):
        print(f"{args.versions:,} versions, PostgreSQL; {machine.measure(work).line()}")
        for n in range(args.runs):
            empty = not args.stored_only and n == 0
            for src in [args.src, args.compare] if args.compare else [args.src]:
                if empty and (work / "storage" / "v3").exists():
                    # Moved aside, removed at the end: on ext4 without a journal, creating inodes right
                    # after many were removed scans past each of them (not what a first rebuild meets).
                    (work / "storage" / "v3").rename(work / f"removed-{uuid.uuid4().hex}")
                profile = work / f"rebuild-{n}.prof" if args.profile else None
                result = rebuild(work, url, src=src, processes=args.processes, profile=profile)
                where = "into an empty tree" if empty else "over the stored documents"
                print(f"run {n + 1} ({where}, {src}): {result}", flush=True)
                if profile:
                    pstats.Stats(str(profile)).sort_stats("tottime").print_stats(30)
        for removed in work.glob("removed-*"):
            shutil.rmtree(removed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
