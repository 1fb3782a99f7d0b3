"""The migrations: HEAD names Alembic's head, and upgrading creates exactly the models' tables."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from nugat.db import HEAD, MIGRATIONS, Database
from nugat.db.models import Base


def database_at(path: Path, revision: str) -> Database:
    """A SQLite database at ``path``, migrated up to ``revision`` only (rows are then written as an older
    nugat would have, before ``Database.upgrade`` runs the later revisions)."""
    db = Database(f"sqlite:///{path}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return db


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
    db = database_at(tmp_path / "x.db", "trusted_pub")
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


def test_key_life_migration_fills_existing_keys(tmp_path: Path) -> None:
    """0003 (key_life) on a database with keys: lifetimes from their dates, a user's second "ci" renamed,
    and an org key whose creator already left the org revoked (as leaving now does)."""
    db = database_at(tmp_path / "old.db", "trusted_pub")
    with db.engine.begin() as conn:
        for account_id, name, kind in ((1, "bob", "user"), (2, "Contoso", "org"), (3, "carol", "user")):
            conn.execute(
                text(
                    "INSERT INTO accounts (id, name, name_lower, kind, is_admin, created_at) "
                    "VALUES (:id, :name, :lower, :kind, 0, '2026-01-01 00:00:00')"
                ),
                {"id": account_id, "name": name, "lower": name.lower(), "kind": kind},
            )
        conn.execute(text("INSERT INTO memberships (org_id, member_id, role) VALUES (2, 3, 'admin')"))
        for key_id, name, user_id, owner_id in (
            ("a" * 16, "ci", 1, 1),
            ("b" * 16, "CI", 1, 1),
            ("c" * 16, "ci", 3, 2),
            ("d" * 16, "left", 1, 2),
        ):
            conn.execute(
                text(
                    "INSERT INTO api_keys (key_id, name, user_id, owner_id, secret_hash, scopes, globs,"
                    " packages, created_at, expires_at) VALUES (:key_id, :name, :user_id, :owner_id, x'00',"
                    " '[\"push\"]', '[\"*\"]', '[]', '2026-01-01 00:00:00', '2026-03-02 00:00:00')"
                ),
                {"key_id": key_id, "name": name, "user_id": user_id, "owner_id": owner_id},
            )
    db.upgrade()
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT key_id, name, name_lower, lifetime_days, revoked_reason FROM api_keys ORDER BY key_id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("a" * 16, "ci", "ci", 60, None),
        ("b" * 16, "CI (2)", "ci (2)", 60, None),
        ("c" * 16, "ci", "ci", 60, None),
        ("d" * 16, "left", "left", 60, "bob is no longer a member of Contoso"),
    ]
    db.dispose()


def test_the_document_epoch_revision_leaves_every_built_id_current(tmp_path: Path) -> None:
    """0008 (document_epoch) on a feed with ids: one epoch row at 0, every id built under it (its
    documents stay current: the upgrade rebuilds nothing), and one moved epoch makes every id stale."""
    from nugat.services.materialize import _IS_STALE, _NEXT_EPOCH

    db = database_at(tmp_path / "x.db", "search_changes")
    with db.engine.begin() as conn:
        for n, (package_id, built) in enumerate([("A.Lib", 3), ("B.Lib", 2)]):
            conn.execute(
                text(
                    "INSERT INTO package_registrations (id, package_id, id_lower, revision, built_revision,"
                    " total_downloads, created_at, skeleton) VALUES (:n, :p, :l, 3, :b, 0, '2026-01-01', :l)"
                ),
                {"n": n + 1, "p": package_id, "l": package_id.lower(), "b": built},
            )
    db.upgrade()
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT id, epoch FROM document_epoch")).all() == [(1, 0)]
        stale = [conn.execute(_IS_STALE, {"id_lower": i}).scalar() for i in ("a.lib", "b.lib")]
        assert [bool(x) for x in stale] == [False, True]  # B.Lib was behind its revision already
        conn.execute(_NEXT_EPOCH)
        assert all(conn.execute(_IS_STALE, {"id_lower": i}).scalar() for i in ("a.lib", "b.lib"))
    db.dispose()


def _account(conn: Connection, account_id: int | None, name: str, kind: str = "user") -> int:
    """Insert an account (``account_id`` None: the database picks its id); return its id."""
    columns, values = ("id, ", ":id, ") if account_id is not None else ("", "")
    return int(
        conn.execute(
            text(
                f"INSERT INTO accounts ({columns}name, name_lower, kind, is_admin, created_at) "  # noqa: S608
                f"VALUES ({values}:name, :lower, :kind, false, '2026-01-01 00:00:00') RETURNING id"
            ),
            {"id": account_id, "name": name, "lower": name.lower(), "kind": kind},
        ).scalar_one()
    )


def _event(conn: Connection, action: str, actor_id: int | None, account_id: int | None, detail: str) -> None:
    conn.execute(
        text(
            "INSERT INTO audit_events (at, action, actor_id, account_id, address, detail) "
            "VALUES ('2026-01-01 00:00:00', :action, :actor, :account, '198.51.100.7', :detail)"
        ),
        {"action": action, "actor": actor_id, "account": account_id, "detail": detail},
    )


def test_the_account_ids_revision_keeps_every_account_and_reference_and_never_reuses_an_audited_id(
    tmp_path: Path,
) -> None:
    """0009 (account_ids) on a SQLite feed with accounts, keys, an org and audit events, some of accounts
    deleted before (ids 4 and 6, the highest, named only by their events): every row and foreign key stays,
    and a new account gets an id no event ever named."""
    db = database_at(tmp_path / "x.db", "document_epoch")
    with db.engine.begin() as conn:
        for account_id, name, kind in ((1, "alice", "user"), (2, "Contoso", "org"), (3, "bob", "user")):
            _account(conn, account_id, name, kind)
        conn.execute(text("INSERT INTO memberships (org_id, member_id, role) VALUES (2, 3, 'admin')"))
        conn.execute(
            text(
                "INSERT INTO api_keys (key_id, name, name_lower, user_id, owner_id, secret_hash, scopes,"
                " globs, packages, created_at, expires_at)"
                " VALUES ('aaaaaaaaaaaaaaaa', 'ci', 'ci', 3, 2, x'00',"
                " '[\"push\"]', '[\"*\"]', '[]', '2026-01-01 00:00:00', '2026-03-02 00:00:00')"
            )
        )
        _event(conn, "key.create", 4, 4, "{}")  # by a user deleted since
        _event(conn, "key.revoke", None, 2, '{"creator_id": 6, "reason": "left"}')  # by another one
        _event(conn, "package.push", 3, 2, "{}")
    db.upgrade()
    with db.engine.begin() as conn:
        accounts = conn.execute(text("SELECT id, name, kind FROM accounts ORDER BY id")).all()
        assert [tuple(r) for r in accounts] == [
            (1, "alice", "user"),
            (2, "Contoso", "org"),
            (3, "bob", "user"),
        ]
        assert (
            "AUTOINCREMENT"
            in conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'accounts'")).scalar_one()
        )
        referencing = {
            (table, fk[3])
            for table in ("api_keys", "memberships", "package_owners", "web_sessions", "trusted_policies")
            for fk in conn.execute(text(f"PRAGMA foreign_key_list({table})")).all()
            if fk[2] == "accounts"
        }
        assert referencing == {
            ("api_keys", "user_id"),
            ("api_keys", "owner_id"),
            ("memberships", "org_id"),
            ("memberships", "member_id"),
            ("package_owners", "account_id"),
            ("web_sessions", "account_id"),
            ("trusted_policies", "creator_id"),
            ("trusted_policies", "owner_id"),
        }
        assert conn.execute(text("SELECT user_id, owner_id FROM api_keys")).all() == [(3, 2)]
        newbie = _account(conn, None, "newbie")
    assert newbie == 7
    with db.engine.begin() as conn:  # the foreign keys still act: deleting bob takes its key and membership
        conn.execute(text("DELETE FROM accounts WHERE id = 3"))
        assert conn.execute(text("SELECT count(*) FROM api_keys")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM memberships")).scalar_one() == 0
        assert _account(conn, None, "carol") == 8  # and bob's id is not handed out again
    db.dispose()


def test_the_account_ids_revision_on_an_empty_database_starts_ids_at_one(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.upgrade()
    with db.engine.begin() as conn:
        first = _account(conn, None, "alice")
        conn.execute(text("DELETE FROM accounts"))
        second = _account(conn, None, "bob")
    assert (first, second) == (1, 2)
    db.dispose()


def test_on_postgresql_the_account_ids_revision_runs_and_ids_are_never_reused() -> None:
    from support.server import postgres_database

    with postgres_database() as url:
        db = Database(url)
        try:
            db.upgrade()
            assert db.is_current()
            with db.engine.begin() as conn:
                _account(conn, None, "alice")
                zed = _account(conn, None, "zed")
                conn.execute(text("DELETE FROM accounts WHERE id = :id"), {"id": zed})
                assert _account(conn, None, "newbie") == zed + 1
        finally:
            db.dispose()
