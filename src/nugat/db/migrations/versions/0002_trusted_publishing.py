"""trusted publishing: policies, used OIDC tokens, minted keys, trusted-only packages

Revision ID: trusted_pub
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "trusted_pub"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trusted_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("bound_owner_id", sa.String(length=64), nullable=True),
        sa.Column("bound_repository_id", sa.String(length=64), nullable=True),
        sa.Column("validate_by", sa.DateTime(), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("globs", sa.JSON(), nullable=False),
        sa.Column("packages", sa.JSON(), nullable=False),
        sa.Column("key_minutes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["creator_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("trusted_policies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trusted_policies_creator_id"), ["creator_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_trusted_policies_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "used_oidc_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("used_oidc_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_used_oidc_tokens_expires_at"), ["expires_at"], unique=False)

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("policy_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("origin", sa.String(length=500), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_keys_policy_id"), ["policy_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_api_keys_policy_id", "trusted_policies", ["policy_id"], ["id"], ondelete="CASCADE"
        )

    with op.batch_alter_table("package_registrations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("trusted_only", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("package_registrations", schema=None) as batch_op:
        batch_op.drop_column("trusted_only")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint("fk_api_keys_policy_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_api_keys_policy_id"))
        batch_op.drop_column("origin")
        batch_op.drop_column("policy_id")
    op.drop_table("used_oidc_tokens")
    op.drop_table("trusted_policies")
