"""scale: each id's confusable skeleton in an indexed column (look-alike checks by index lookup)

Revision ID: scale
Revises: trusted_pub
"""

import sqlalchemy as sa
from alembic import op

from nugat.confusables import skeleton

revision = "scale"
down_revision = "trusted_pub"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("package_registrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skeleton", sa.String(length=400), nullable=True))
    # Backfill in batches of ids, keyed by primary key (bounded memory whatever the feed's size).
    regs = sa.table(
        "package_registrations",
        sa.column("id", sa.Integer),
        sa.column("package_id", sa.String),
        sa.column("skeleton", sa.String),
    )
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(regs.c.id, regs.c.package_id).where(regs.c.id > last).order_by(regs.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        bind.execute(
            regs.update().where(regs.c.id == sa.bindparam("rid")).values(skeleton=sa.bindparam("sk")),
            [{"rid": r.id, "sk": skeleton(r.package_id)} for r in rows],
        )
        last = rows[-1].id
    with op.batch_alter_table("package_registrations", schema=None) as batch_op:
        batch_op.alter_column("skeleton", existing_type=sa.String(length=400), nullable=False)
        batch_op.create_index(batch_op.f("ix_package_registrations_skeleton"), ["skeleton"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("package_registrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_package_registrations_skeleton"))
        batch_op.drop_column("skeleton")
