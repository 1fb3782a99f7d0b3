"""Alembic environment: runs on the connection handed over by ``Database.upgrade``."""

from alembic import context

from nugat.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached through the alembic command line
    raise SystemExit("run migrations with `nugat db upgrade`")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
