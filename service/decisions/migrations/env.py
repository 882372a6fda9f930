"""Alembic environment: runs on the connection handed over by service.decisions.migrate (never a URL here).

To write a new migration against a scratch database:
    .venv/bin/alembic -c /dev/null -x url=sqlite:////tmp/x.sqlite3 ...   (or use migrate.alembic_config)
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
