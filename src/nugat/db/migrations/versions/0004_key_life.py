"""keys over their whole life: revoked keys, original lifetime, regeneration, unique names; disabled accounts

Revision ID: key_life
Revises: mail_2fa
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "key_life"
down_revision = "mail_2fa"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_lower", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("lifetime_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("revoked_reason", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("regenerated_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_hash", sa.LargeBinary(length=64), nullable=True))
    _fill_existing_keys()
    op.create_index("uq_api_keys_user_name", "api_keys", ["user_id", "name_lower"], unique=True)


def _fill_existing_keys() -> None:
    """Existing keys: their lifetime from their dates; names made unique per user (a second "ci" becomes
    "ci (2)"); an organization's key whose creator already left it revoked, as leaving now does."""
    bind = op.get_bind()
    keys = sa.table(
        "api_keys",
        sa.column("id", sa.Integer()),
        sa.column("user_id", sa.Integer()),
        sa.column("owner_id", sa.Integer()),
        sa.column("name", sa.String()),
        sa.column("name_lower", sa.String()),
        sa.column("policy_id", sa.Integer()),
        sa.column("created_at", sa.DateTime()),
        sa.column("expires_at", sa.DateTime()),
        sa.column("lifetime_days", sa.Integer()),
        sa.column("revoked_at", sa.DateTime()),
        sa.column("revoked_reason", sa.String()),
    )
    members = sa.table("memberships", sa.column("org_id", sa.Integer()), sa.column("member_id", sa.Integer()))
    accounts = sa.table("accounts", sa.column("id", sa.Integer()), sa.column("name", sa.String()))
    names = dict(bind.execute(sa.select(accounts.c.id, accounts.c.name)).all())
    member_of = {
        (org, member) for org, member in bind.execute(sa.select(members.c.org_id, members.c.member_id))
    }
    rows = bind.execute(
        sa.select(
            keys.c.id,
            keys.c.user_id,
            keys.c.owner_id,
            keys.c.name,
            keys.c.policy_id,
            keys.c.created_at,
            keys.c.expires_at,
        ).order_by(keys.c.id)
    ).all()
    taken: set[tuple[int, str]] = set()
    for row in rows:
        values: dict[str, object] = {}
        days = max(1, min(365, round((row.expires_at - row.created_at).total_seconds() / 86400)))
        values["lifetime_days"] = days
        if row.policy_id is None:
            name, n = row.name, 1
            while (row.user_id, name.lower()) in taken:
                n += 1
                name = f"{row.name[:120]} ({n})"
            taken.add((row.user_id, name.lower()))
            values.update(name=name, name_lower=name.lower())
        if row.owner_id != row.user_id and (row.owner_id, row.user_id) not in member_of:
            who, org = names.get(row.user_id, "?"), names.get(row.owner_id, "?")
            values.update(
                revoked_at=datetime.now(UTC).replace(tzinfo=None),
                revoked_reason=f"{who} is no longer a member of {org}",
            )
        bind.execute(sa.update(keys).where(keys.c.id == row.id).values(**values))


def downgrade() -> None:
    op.drop_index("uq_api_keys_user_name", table_name="api_keys")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("previous_secret_hash")
        batch_op.drop_column("regenerated_at")
        batch_op.drop_column("revoked_reason")
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("lifetime_days")
        batch_op.drop_column("name_lower")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("disabled_at")
