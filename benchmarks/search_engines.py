"""Search on the database's own index against an embedded engine (tantivy), on the same entries (issue 16).

    .venv/bin/python -m pip install tantivy        # the benchmark's only extra: nugat does not use it
    nice -n 19 .venv/bin/python benchmarks/search_engines.py --versions 100000

Generates N versions into a fresh PostgreSQL database (``run.generate_search_data``: ids of 10 versions,
search entries built as ``nugat rebuild`` builds them), then puts the same entries (one document an id and
view: its search text and download count) into a tantivy index in a temporary folder, and prints for each:
the time to build its index, the index's size, the memory the process gained opening it, and one-at-a-time
latency (p50 / p99 of ``--queries`` each) of the benchmark's queries, a page never asked before each time
(nugat's kept pages are bypassed: each search is given a generation of its own). Also how long a change
takes to become visible: PostgreSQL's entries change in the push's transaction; tantivy needs a commit and
a reload of its searcher, in every process of every host that holds a copy of the index.

nugat's queries are its real ones (``services.search``, substring matching through trigram indexes). The
tantivy queries are term queries on words (its default tokenizer), which find the same packages for these
queries' whole words; substring matching (``json`` in ``newtonsoftjson``) would need an n-gram tokenizer
and a larger index, so tantivy's figures here are a lower bound of what it would cost for the same answers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine
import run as bench
import scale

QUERIES = [
    ("q=json", "json", 0),
    ("q=http", "http", 0),
    ("browse", "", 0),
    ("q=json skip=1000", "json", 1000),
]


def rss_mb() -> float:
    return bench.proc_kib(os.getpid(), "VmRSS") / 1024


def timed(call: Callable[[], Any], count: int) -> tuple[float, float]:
    times = []
    for _ in range(count):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), scale.pct(times, 0.99)


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="searches per query and engine")
    args = parser.parse_args()
    try:
        import tantivy
    except ImportError:
        print("tantivy is not installed: .venv/bin/python -m pip install tantivy", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="nugat-engines-"))
    facts = machine.measure(work).line()
    rows: list[tuple[str, str, str]] = []
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)
        db_url = stack.enter_context(scale.postgres())
        env = bench.base_env(work, NUGAT_DATABASE_URL=db_url)
        os.environ.update(env)
        began = time.perf_counter()
        ids = bench.generate_search_data(env, args.versions, database_url=db_url)
        generated = time.perf_counter() - began

        from sqlalchemy import select

        from nugat.core import Core
        from nugat.db.models import SearchEntry, table
        from nugat.services.search import Query
        from nugat.settings import Settings

        before = rss_mb()
        core = Core(Settings())
        stack.callback(core.close)
        entries = table(SearchEntry)
        with core.db.read_transaction() as c:
            documents = c.execute(
                select(entries.c.id_lower, entries.c.search_text, entries.c.downloads).where(
                    entries.c.in_release
                )
            ).all()
            size = c.exec_driver_sql(
                "SELECT pg_total_relation_size('search_entries')"  # the table and its indexes
            ).scalar_one()

        def nugat_search(q: str, skip: int) -> int:
            total, _ = core.search.search(Query(q=q, skip=skip, take=20), generation=object())
            return total

        nugat_search("json", 0)  # connections made, statements built
        nugat_rss = rss_mb() - before

        builder = tantivy.SchemaBuilder()
        builder.add_text_field("id", stored=True, tokenizer_name="raw")
        builder.add_text_field("text", stored=False)
        builder.add_integer_field("downloads", fast=True, indexed=True)
        schema = builder.build()
        folder = work / "tantivy"
        folder.mkdir()
        began = time.perf_counter()
        index = tantivy.Index(schema, path=str(folder))
        writer = index.writer()
        for id_lower, text, downloads in documents:
            writer.add_document(tantivy.Document(id=id_lower, text=text, downloads=int(downloads)))
        writer.commit()
        writer.wait_merging_threads()
        built = time.perf_counter() - began
        before = rss_mb()
        index.reload()
        searcher = index.searcher()

        def tantivy_search(q: str, skip: int) -> int:
            query = index.parse_query(q, ["text"]) if q else tantivy.Query.all_query()
            found = searcher.search(query, 20, count=True, order_by_field="downloads", offset=skip)
            return int(found.count or 0)

        tantivy_search("json", 0)
        tantivy_rss = rss_mb() - before

        rows.append(("documents", f"{len(documents):,} entries (release view)", f"{len(documents):,}"))
        rows.append(
            (
                "index build",
                f"kept by each commit (generating the {args.versions:,} versions with it: {generated:.0f} s)",
                f"{built:.1f} s (from the entries)",
            )
        )
        rows.append(("index size", f"{size / 1e6:.0f} MB (table and indexes)", f"{folder_mb(folder):.0f} MB"))
        rows.append(("process memory gained opening it", f"{nugat_rss:.0f} MB", f"{tantivy_rss:.0f} MB"))
        for label, q, skip in QUERIES:
            hits = (nugat_search(q, skip), tantivy_search(q, skip))
            p = timed(lambda q=q, skip=skip: nugat_search(q, skip), args.queries)
            t = timed(lambda q=q, skip=skip: tantivy_search(q, skip), args.queries)
            rows.append(
                (
                    f"{label}: p50 / p99 (totalHits)",
                    f"{p[0]:.1f} / {p[1]:.1f} ms ({hits[0]:,})",
                    f"{t[0]:.2f} / {t[1]:.2f} ms ({hits[1]:,})",
                )
            )
        # A change visible: one more document, committed and the searcher reloaded (tantivy); PostgreSQL's
        # entries are written by the push's own transaction, visible to every process at its commit.
        writer = index.writer()
        times = []
        for n in range(20):
            began = time.perf_counter()
            new = tantivy.Document(id=f"new.{uuid.uuid4().hex}.{n}", text="json new", downloads=0)
            writer.add_document(new)
            writer.commit()
            index.reload()
            searcher = index.searcher()
            times.append((time.perf_counter() - began) * 1000)
        rows.append(
            (
                "a change visible to search",
                "at the push's commit, to every process and host",
                f"commit + reload {statistics.median(times):.0f} ms p50, in each process holding a copy",
            )
        )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"\nsearch engines: {args.versions:,} versions ({ids:,} ids), one process, {args.queries} searches a "
        f"query\n{facts}; after: load average {os.getloadavg()[0]:.2f}; CPU {usage.ru_utime:.0f} s\n"
    )
    print("| measure | PostgreSQL (nugat's search) | tantivy (embedded) |")
    print("|---|---|---|")
    for measure, pg, tv in rows:
        print(f"| {measure} | {pg} | {tv} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
