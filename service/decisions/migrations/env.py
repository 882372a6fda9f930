"""Alembic environment: runs on the connection handed over by service.decisions.migrate (never a URL here).

A new migration is a new file in versions/ (copy 0001's layout; names follow models.Base's naming
convention). tests/decisions/test_store.py fails while the migrated schema differs from models.py.
"""

from __future__ import annotations

from alembic import context

from service.decisions.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through service.decisions.migrate.upgrade(connection)")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
