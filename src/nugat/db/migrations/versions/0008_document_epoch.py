"""document epoch: every id's documents are declared stale by moving one counter (``DocumentEpoch``), not
by rewriting every id's row (which took seconds at 100,000 ids, before a start after a crash could serve)

Revision ID: document_epoch
Revises: search_changes
"""

import sqlalchemy as sa
from alembic import op

revision = "document_epoch"
down_revision = "search_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "document_epoch",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(table, [{"id": 1, "epoch": 0}])
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "package_registrations", sa.Column("built_epoch", sa.Integer(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    op.drop_column("package_registrations", "built_epoch")
    op.drop_table("document_epoch")
