"""The migrations: HEAD names Alembic's head, and upgrading creates exactly the models' tables."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from nugat.db import HEAD, MIGRATIONS, Database
from nugat.db.models import Base


def test_head_constant_is_alembics_head() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_heads() == [HEAD]


def test_upgrade_creates_the_models_tables_and_is_idempotent(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    assert not db.is_current()
    db.upgrade()
    assert db.is_current()
    db.upgrade()
    tables = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
    # and search's FTS5 table (with its own tables), which the migration adds on SQLite
    assert {t for t in tables if not t.startswith("search_fts")} == set(Base.metadata.tables)
    assert "search_fts" in tables
    db.dispose()


def test_the_scale_revision_fills_in_the_skeleton_of_every_existing_id(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import text

    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "trusted_pub")
    with db.engine.begin() as conn:
        for n, package_id in enumerate(["Newtonsoft.Json", "C0ntoso-Lib", "Rn.VV"]):
            conn.execute(
                text(
                    "INSERT INTO package_registrations (id, package_id, id_lower, revision, built_revision,"
                    " total_downloads, created_at) VALUES (:n, :p, :l, 0, 0, 0, '2026-01-01')"
                ),
                {"n": n + 1, "p": package_id, "l": package_id.lower()},
            )
    db.upgrade()
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT package_id, skeleton FROM package_registrations ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [
        ("Newtonsoft.Json", "newtonsoftjson"),
        ("C0ntoso-Lib", "contosollb"),
        ("Rn.VV", "mw"),
    ]
    db.dispose()
