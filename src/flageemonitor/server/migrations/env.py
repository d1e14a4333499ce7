"""Alembic environment: the connection is handed in by `flageemonitor.server.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from flageemonitor.server.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
if connection.dialect.name == "postgresql":
    # several servers starting at once against one database: one migrates, the others wait
    connection.execute(text("SELECT pg_advisory_xact_lock(720519)"))
with context.begin_transaction():
    context.run_migrations()
