"""scale: each id's confusable skeleton in an indexed column (look-alike checks by index lookup); search
entries on the database's text index (pg_trgm GIN on PostgreSQL, an FTS5 trigram table on SQLite)

Revision ID: scale
Revises: key_life
"""

import sqlalchemy as sa
from alembic import op

from nugat.confusables import skeleton
from nugat.services.search_index import index_all

revision = "scale"
down_revision = "key_life"
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

    op.create_table(
        "search_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("in_release", sa.Boolean(), nullable=False),
        sa.Column("in_prerelease", sa.Boolean(), nullable=False),
        sa.Column("in_semver2", sa.Boolean(), nullable=False),
        sa.Column("in_all", sa.Boolean(), nullable=False),
        sa.Column("package_id", sa.String(length=100), nullable=False),
        sa.Column("id_lower", sa.String(length=100), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("authors", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("owners", sa.Text(), nullable=False),
        sa.Column("package_types", sa.Text(), nullable=False),
        sa.Column("downloads", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["registration_id"], ["package_registrations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["version_id"], ["package_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_search_entries_registration_id", "search_entries", ["registration_id"])
    op.create_index("ix_search_entries_version_id", "search_entries", ["version_id"])
    op.create_index("ix_search_entries_id_lower", "search_entries", ["id_lower"])
    op.create_index("ix_search_entries_rank", "search_entries", [sa.text("downloads DESC"), "id_lower"])
    if bind.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_search_entries_text ON search_entries USING gin (search_text gin_trgm_ops)"
        )
        op.execute(
            "CREATE INDEX ix_search_entries_id_trgm ON search_entries USING gin (id_lower gin_trgm_ops)"
        )
    else:
        # The trigram tokenizer finds any substring of three characters or more, as LIKE '%word%' does.
        op.execute("CREATE VIRTUAL TABLE search_fts USING fts5(search_text, tokenize = 'trigram')")
        op.execute(
            "CREATE TRIGGER search_entries_add AFTER INSERT ON search_entries BEGIN "
            "INSERT INTO search_fts (rowid, search_text) VALUES (new.id, new.search_text); END"
        )
        op.execute(
            "CREATE TRIGGER search_entries_drop AFTER DELETE ON search_entries BEGIN "
            "DELETE FROM search_fts WHERE rowid = old.id; END"
        )
        op.execute(
            "CREATE TRIGGER search_entries_change AFTER UPDATE OF search_text ON search_entries BEGIN "
            "UPDATE search_fts SET search_text = new.search_text WHERE rowid = old.id; END"
        )
    index_all(bind)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for trigger in ("search_entries_add", "search_entries_drop", "search_entries_change"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table("search_entries")
    with op.batch_alter_table("package_registrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_package_registrations_skeleton"))
        batch_op.drop_column("skeleton")
