"""SQLite connections: a reader keeps a small page cache (a worker holds up to 15 of them, and the
operating system caches the pages anyway); a writer keeps SQLite's default."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from nugat.db import READER_CACHE_KIB, Database


def test_a_reader_keeps_a_small_page_cache_a_writer_the_default(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        db.upgrade()
        with db.reading() as s:
            assert s.execute(text("PRAGMA cache_size")).scalar_one() == -READER_CACHE_KIB
        with db.transaction() as c:
            assert c.execute(text("PRAGMA cache_size")).scalar_one() == -2000
        assert READER_CACHE_KIB < 2000
    finally:
        db.dispose()
