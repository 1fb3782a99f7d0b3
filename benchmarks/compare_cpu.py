"""Server CPU per request and per push: this tree against a baseline commit, interleaved on one machine.

    .venv/bin/python benchmarks/compare_cpu.py --baseline 21e165f            # about 3 minutes
    .venv/bin/python benchmarks/compare_cpu.py --baseline HEAD~3 --rounds 5 --seconds 3

"Within 5% of today's figures" cannot be judged from req/s on a shared 2-core machine: other tenants move
req/s by 10-30% between runs minutes apart. The CPU time the server process spends per request (user +
system, from /proc) moves far less with other load, and a change to the hot path shows in it directly. Both
trees run with this virtualenv's packages (the baseline's ``src`` first on ``PYTHONPATH``), each on its
own data folder (SQLite + folder, one worker), started together and measured alternately, the order of the
two swapped every round; the table shows each tree's median over the rounds and their ratio. wrk is the
read client (one thread, 32 connections); pushes are sequential, one keep-alive connection.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from machine import measure, process_cpu_seconds
from run import READ_ID, ROOT, children, ensure_tools, free_port, nupkg, push_run, wait_for, wrk

CLI = "import sys; from nugat.cli import main; sys.exit(main())"


class Tree:
    """One nugat source tree served from its own data folder."""

    def __init__(self, name: str, src: Path, work: Path) -> None:
        self.name = name
        self.data = work / name
        self.data.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("NUGAT_")}
        self.env = clean | {
            "PYTHONPATH": str(src),
            "NUGAT_DATA_DIR": str(self.data),
            "NUGAT_PUSH_LIMIT_PER_HOUR": "1000000000",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-c", CLI, *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    @contextlib.contextmanager
    def serving(self) -> Iterator[Tree]:
        log = (self.data / "serve.log").open("w")
        argv = [sys.executable, "-c", CLI, "serve", "--port", str(self.port), "--workers", "1"]
        self.proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(f"{self.url}/health", self.proc)
            yield self
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            log.close()

    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid, *children(self.proc.pid)]

    def key(self) -> str:
        self.cli(
            "user", "create", "bench", "--email", "bench@example.test", "--password-stdin",
            stdin="bench-password-1234\n",
        )  # fmt: skip
        created = self.cli(
            "key", "create", "--user", "bench", "--name", "bench", "--scope", "push", "--glob", "*", "--json"
        )
        return str(json.loads(created)["key"])


def read_cpu_us(tree: Tree, wrk_bin: str, path: str, seconds: int) -> float:
    before = process_cpu_seconds(tree.pids())
    result = wrk(wrk_bin, tree.url + path, seconds)
    spent = process_cpu_seconds(tree.pids()) - before
    return spent * 1e6 / max(1.0, result.rps * seconds)


def push_cpu_ms(tree: Tree, key: str, bodies: list[bytes]) -> float:
    before = process_cpu_seconds(tree.pids())
    result = push_run(tree.url, key, bodies, 1)
    assert result.errors == 0, f"{tree.name}: {result.errors} pushes failed"
    return (process_cpu_seconds(tree.pids()) - before) * 1000 / len(bodies)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True, help="the commit to compare with (the last release)")
    parser.add_argument("--current", help="measure this commit instead of this tree (a second checkout)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--pushes", type=int, default=100, help="sequential small pushes per round")
    args = parser.parse_args()
    wrk_bin, _ = ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="nugat-cpu-"))
    checkout = work / "baseline-src"
    git = ["git", "-C", str(ROOT), "worktree"]
    subprocess.run([*git, "add", "--detach", "-q", str(checkout), args.baseline], check=True)
    current = ROOT
    if args.current:
        current = work / "current-src"
        subprocess.run([*git, "add", "--detach", "-q", str(current), args.current], check=True)
    low = READ_ID.lower()
    reads = {
        "flat-container index.json": f"/v3/flatcontainer/{low}/index.json",
        ".nupkg download (16 KB)": f"/v3/flatcontainer/{low}/1.0.0/{low}.1.0.0.nupkg",
        "registration index (10 versions)": f"/v3/registration/{low}/index.json",
    }
    cpu: dict[tuple[str, str], list[float]] = {}
    try:
        trees = [Tree("baseline", checkout / "src", work), Tree("current", current / "src", work)]
        with contextlib.ExitStack() as stack:
            keys = {}
            for tree in trees:
                stack.enter_context(tree.serving())
                keys[tree.name] = tree.key()
                seed = [nupkg(READ_ID, f"1.{v}.0") for v in range(10)]
                assert push_run(tree.url, keys[tree.name], seed, 1).errors == 0
            machine = measure(work)
            for round_ in range(args.rounds):
                for tree in trees if round_ % 2 == 0 else trees[::-1]:
                    for measure_name, path in reads.items():
                        us = read_cpu_us(tree, wrk_bin, path, args.seconds)
                        cpu.setdefault((measure_name, tree.name), []).append(us)
                    ids = [f"Cpu.R{round_}.P{i % 10}" for i in range(args.pushes)]
                    bodies = [nupkg(ids[i], f"1.{i // 10}.0", 2 << 10) for i in range(args.pushes)]
                    ms = push_cpu_ms(tree, keys[tree.name], bodies)
                    cpu.setdefault(("sequential small push", tree.name), []).append(ms * 1000)
    finally:
        for tree_dir in {checkout, current} - {ROOT}:
            subprocess.run([*git, "remove", "--force", str(tree_dir)], check=False)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nserver CPU per request, {args.baseline} vs {args.current or 'this tree'}, on {machine.line()}")
    setup = f"wrk -t1 -c32 -d{args.seconds}s; {args.pushes} pushes"
    print(f"median of {args.rounds} alternating rounds; {setup}\n")
    print("| measure | baseline µs | current µs | current / baseline | rounds (baseline; current) |")
    print("|---|---:|---:|---:|---|")
    for measure_name in [*reads, "sequential small push"]:
        base, now = cpu[(measure_name, "baseline")], cpu[(measure_name, "current")]
        spread = f"{min(base):.0f}-{max(base):.0f}; {min(now):.0f}-{max(now):.0f}"
        b, c = statistics.median(base), statistics.median(now)
        print(f"| {measure_name} | {b:,.1f} | {c:,.1f} | {c / b:.3f} | {spread} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
