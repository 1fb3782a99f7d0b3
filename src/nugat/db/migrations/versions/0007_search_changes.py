"""search changes: counts the commits that changed what search finds (``SearchChange``), so that a
search page read before any of them may be reused

Revision ID: search_changes
Revises: private_orgs
"""

import sqlalchemy as sa
from alembic import op

revision = "search_changes"
down_revision = "private_orgs"
branch_labels = None
depends_on = None

SLOTS = 16


def upgrade() -> None:
    table = op.create_table(
        "search_changes",
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("slot"),
    )
    op.bulk_insert(table, [{"slot": slot, "n": 0} for slot in range(SLOTS)])


def downgrade() -> None:
    op.drop_table("search_changes")
