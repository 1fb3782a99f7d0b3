"""What one push costs, in-process (issue 16): SQL statements and transactions, CPU time, fsyncs.

    .venv/bin/python benchmarks/push_cost.py                 # SQLite
    .venv/bin/python benchmarks/push_cost.py --postgres      # PostgreSQL on 127.0.0.1:5432
    .venv/bin/python benchmarks/push_cost.py --postgres --list --profile 25

Pushes through the whole app (Starlette's TestClient, as ``nuget push`` would: PUT /api/v2/package) new
ids, and new versions of an id of 3,000 versions (``scale.add_big_id``). For each kind of push it prints
the median of: statements, transactions (COMMIT/ROLLBACK), connection checkouts, fsync calls, CPU time
of this process (``time.process_time``) and wall time. ``--list`` prints each statement of one push of
each kind with its time; ``--profile N`` prints the top N functions of a cProfile of a few pushes.

``--serve SRC [SRC ...]`` measures instead ``nugat serve --workers 1`` run from each source tree (``src``
folders, e.g. a ``git archive`` of a baseline commit), alternating rounds: the server's CPU per push
(user + system, from /proc: what other load moves least) and the wall p50, sequential pushes from
``http.client`` on one connection.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench
import scale


class Counter:
    """Statements (with their time), commits and rollbacks, pool checkouts and fsyncs seen while on."""

    def __init__(self) -> None:
        self.on = False
        self.statements: list[tuple[str, float]] = []
        self.ends = 0
        self.checkouts = 0
        self.fsyncs = 0
        self.fsync_ms = 0.0
        self._began = 0.0

    def reset(self) -> None:
        self.statements, self.ends, self.checkouts, self.fsyncs, self.fsync_ms = [], 0, 0, 0, 0.0

    def watch(self, engine: Any) -> None:
        def before(*_args: Any) -> None:
            self._began = time.perf_counter()

        def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if self.on:
                self.statements.append((statement, (time.perf_counter() - self._began) * 1000))

        def ended(*_args: Any) -> None:
            if self.on:
                self.ends += 1

        def checkout(*_args: Any) -> None:
            if self.on:
                self.checkouts += 1

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        event.listen(engine, "commit", ended)
        event.listen(engine, "rollback", ended)
        event.listen(engine.pool, "checkout", checkout)

    @contextlib.contextmanager
    def counting_fsyncs(self) -> Iterator[None]:
        real = os.fsync

        def fsync(fd: int) -> None:
            began = time.perf_counter()
            real(fd)
            if self.on:
                self.fsyncs += 1
                self.fsync_ms += (time.perf_counter() - began) * 1000

        with mock.patch("os.fsync", fsync):
            yield


def serve_rounds(args: argparse.Namespace) -> int:
    """Server CPU and wall time per push of each source tree, alternating rounds (see the docstring)."""
    import http.client

    from machine import process_cpu_seconds

    trees = [Path(src).resolve() for src in args.serve]
    results: dict[tuple[str, str], list[float]] = {}
    with contextlib.ExitStack() as stack:
        servers = []
        for n, src in enumerate(trees):
            work = Path(tempfile.mkdtemp(prefix=f"nugat-pushcpu{n}-"))
            stack.callback(shutil.rmtree, work, True)
            db_url = stack.enter_context(scale.postgres()) if args.postgres else None
            env = bench.base_env(work, **({"NUGAT_DATABASE_URL": db_url} if db_url else {}))
            env["PYTHONPATH"] = str(src)
            server = bench.Nugat(work, 1, env)
            server.start()
            stack.callback(server.stop)
            key = bench.make_key(server)
            scale.add_big_id(db_url or f"sqlite:///{(work / 'nugat.db').resolve()}", work, "bench")
            servers.append((str(src), server, key))
        run = uuid.uuid4().hex[:6]
        print(f"{'PostgreSQL' if args.postgres else 'SQLite'}; load {_load()}")
        for round_ in range(args.rounds):
            for src, server, key in servers if round_ % 2 == 0 else servers[::-1]:
                host, port = server.url.removeprefix("http://").rsplit(":", 1)
                conn = http.client.HTTPConnection(host, int(port), timeout=120)
                kinds = {
                    "new id": [
                        bench.nupkg(f"Cpu.{run}.R{round_}.N{n}", "1.0.0", payload=1024)
                        for n in range(args.pushes)
                    ],
                    "3,000-version id": [
                        bench.nupkg(scale.BIG_ID, f"1.{scale.run_int(run)}.{round_ * 1000 + n}", payload=1024)
                        for n in range(args.pushes)
                    ],
                }
                for kind, bodies in kinds.items():
                    before = process_cpu_seconds(server.pids())
                    walls = []
                    for body in bodies:
                        ms, status = scale.push_one(conn, key, body)
                        assert status == 201, status
                        walls.append(ms)
                    cpu = (process_cpu_seconds(server.pids()) - before) * 1000 / len(bodies)
                    results.setdefault((kind, src), []).append(cpu)
                    results.setdefault((kind + " wall p50", src), []).append(statistics.median(walls))
                conn.close()
        print(f"load {_load()}; medians of {args.rounds} rounds of {args.pushes} pushes\n")
        print("| per push | " + " | ".join(src for src, _, _ in servers) + " |")
        print("|---|" + "---:|" * len(servers))
        for kind in ("new id", "3,000-version id"):
            for label, key_ in (
                (f"{kind}: server CPU ms", kind),
                (f"{kind}: wall p50 ms", kind + " wall p50"),
            ):
                row = [statistics.median(results[(key_, src)]) for src, _, _ in servers]
                print(f"| {label} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--pushes", type=int, default=30, help="of each kind")
    parser.add_argument("--list", action="store_true", help="every statement of one push of each kind")
    parser.add_argument("--profile", type=int, default=0, help="top N functions of a cProfile")
    parser.add_argument("--serve", nargs="+", metavar="SRC", help="measure nugat serve from these trees")
    parser.add_argument("--rounds", type=int, default=3, help="with --serve")
    args = parser.parse_args()
    if args.serve:
        return serve_rounds(args)

    work = Path(tempfile.mkdtemp(prefix="nugat-pushcost-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)
        db_url = stack.enter_context(scale.postgres()) if args.postgres else None
        env = bench.base_env(work, **({"NUGAT_DATABASE_URL": db_url} if db_url else {}))
        os.environ.update(env)
        from starlette.testclient import TestClient

        from nugat.app import create_app
        from nugat.settings import Settings

        settings = Settings()
        from nugat.core import Core

        setup = Core(settings)
        setup.db.upgrade()
        setup.accounts.create_user("bench", "bench@example.test", None)
        _, key = setup.accounts.create_key("bench", "bench", ["push"], ["*"], [], None, None)
        setup.close()
        scale.add_big_id(db_url or f"sqlite:///{(work / 'nugat.db').resolve()}", work, "bench")

        app = create_app(settings)
        client = stack.enter_context(TestClient(app))
        core = _core(app)
        counter = Counter()
        counter.watch(core.db.engine)
        if core.db.reader is not core.db.engine:
            counter.watch(core.db.reader)
        stack.enter_context(counter.counting_fsyncs())
        run = uuid.uuid4().hex[:6]
        headers = {"X-NuGet-ApiKey": key}

        def push(body: bytes) -> None:
            response = client.put("/api/v2/package/", content=body, headers=headers)
            assert response.status_code == 201, response.text

        kinds: list[tuple[str, Callable[[int], bytes]]] = [
            ("new id", lambda n: bench.nupkg(f"Cost.{run}.N{n}", "1.0.0", payload=1024)),
            (
                f"new version of an id of {scale.BIG_VERSIONS:,} versions",
                lambda n: bench.nupkg(scale.BIG_ID, f"1.{scale.run_int(run)}.{n}", payload=1024),
            ),
        ]
        print(f"{'PostgreSQL' if args.postgres else 'SQLite'}; load {_load()}")
        for label, body_of in kinds:
            push(body_of(10_000))  # warm
            figures: dict[str, list[float]] = {k: [] for k in FIGURES}
            listed = None
            for n in range(args.pushes):
                body = body_of(n)
                counter.reset()
                counter.on = True
                cpu, wall = time.process_time(), time.perf_counter()
                push(body)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                counter.on = False
                figures["stmts"].append(len(counter.statements))
                figures["tx"].append(counter.ends)
                figures["checkouts"].append(counter.checkouts)
                figures["fsyncs"].append(counter.fsyncs)
                figures["fsync_ms"].append(counter.fsync_ms)
                figures["sql_ms"].append(sum(ms for _, ms in counter.statements))
                figures["cpu"].append(cpu * 1000)
                figures["wall"].append(wall * 1000)
                listed = listed or list(counter.statements)
            med = {k: statistics.median(v) for k, v in figures.items()}
            print(
                f"{label}: {med['stmts']:.0f} statements, {med['tx']:.0f} commits/rollbacks, "
                f"{med['checkouts']:.0f} checkouts, {med['fsyncs']:.0f} fsyncs ({med['fsync_ms']:.1f} ms); "
                f"statements {med['sql_ms']:.1f} ms; CPU {med['cpu']:.1f} ms, wall {med['wall']:.1f} ms "
                f"(medians of {args.pushes})"
            )
            if args.list and listed:
                for statement, ms in listed:
                    print(f"  {ms:6.2f} ms  {' '.join(statement.split())[:150]}")
            if args.profile:
                # The push runs in a worker thread (as under ``nugat serve``): profiled there.
                from nugat.protocol import publish

                profile = cProfile.Profile()
                real = publish._check_and_push

                def profiled(*a: Any, profile: Any = profile, real: Any = real) -> Any:
                    return profile.runcall(real, *a)

                with mock.patch.object(publish, "_check_and_push", profiled):
                    for n in range(10):
                        push(body_of(20_000 + n))
                out = io.StringIO()
                pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.profile)
                print(out.getvalue())
                out = io.StringIO()
                pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.profile)
                print(out.getvalue())
        print(f"load {_load()}")
    return 0


FIGURES = ("stmts", "tx", "checkouts", "fsyncs", "fsync_ms", "sql_ms", "cpu", "wall")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _core(app: Any) -> Any:
    """The Core behind the app's middlewares."""
    seen = app
    for _ in range(20):
        state = getattr(seen, "state", None)
        if state is not None and hasattr(state, "core"):
            return state.core
        seen = getattr(seen, "app", None)
        if seen is None:
            break
    raise RuntimeError("no core found")


if __name__ == "__main__":
    sys.exit(main())
