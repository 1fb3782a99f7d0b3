"""private orgs: an organization may make its packages private (readable only by its members' keys and
sessions)

Revision ID: private_orgs
Revises: scale
"""

import sqlalchemy as sa
from alembic import op

revision = "private_orgs"
down_revision = "scale"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("private_packages", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("private_packages")
