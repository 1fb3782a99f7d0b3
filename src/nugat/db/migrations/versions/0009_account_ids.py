"""account ids: never handed out twice on SQLite (``AUTOINCREMENT``), so a new account never inherits the
audit events (key creations, pushes and their addresses) of a deleted one, which name it only by its id

SQLite gives a table without AUTOINCREMENT the highest id plus one, so deleting the newest account freed its
id for the next one, while ``audit_events.actor_id``/``account_id`` (and ``detail.creator_id``), kept on
purpose after the account goes, still named it. The table is rebuilt with AUTOINCREMENT (every row, and
every foreign key pointing at it, kept: ``Database.upgrade`` checks them) and its ``sqlite_sequence`` is set
past every id an audit event names, so even an account deleted before this migration keeps its id to itself.
PostgreSQL's sequences never go back: nothing to do there.

Revision ID: account_ids
Revises: document_epoch
"""

from alembic import op

revision = "account_ids"
down_revision = "document_epoch"
branch_labels = None
depends_on = None

# Every id an audit event gives to an account: its actor, its owner, the creator of a revoked key.
_HIGHEST_AUDITED = """
SELECT max(m) FROM (
    SELECT max(actor_id) AS m FROM audit_events
    UNION ALL SELECT max(account_id) FROM audit_events
    UNION ALL SELECT max(CAST(json_extract(detail, '$.creator_id') AS INTEGER)) FROM audit_events
        WHERE json_valid(detail) AND json_type(detail, '$.creator_id') = 'integer'
    UNION ALL SELECT max(id) FROM accounts
)
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    with op.batch_alter_table("accounts", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
        pass
    highest = bind.exec_driver_sql(_HIGHEST_AUDITED).scalar() or 0
    # The copy set the sequence to the highest id copied (no row at all: no entry yet).
    bind.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = 'accounts'")
    bind.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES ('accounts', ?)", (int(highest),))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("accounts", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
        pass
