"""Connecting to the decision log's database: SQLite in the instance folder, or PostgreSQL.

Appends to the hash chain must be serialised across gunicorn worker processes and replicas. On SQLite
that is the database's own write lock, taken at the start of the transaction with `BEGIN IMMEDIATE`: the
pysqlite driver's own transaction handling is switched off (it would issue a deferred BEGIN only before
the first INSERT) and SQLAlchemy's "begin" event emits the BEGIN instead, as the SQLAlchemy SQLite
documentation prescribes for Python < 3.12. Readers use a plain deferred BEGIN, so in WAL mode they never
wait for a writer. On PostgreSQL the chain-head row is locked with SELECT ... FOR UPDATE (see log.py).

`hide_parameters` keeps bound values - profiles, hashed identifiers - out of exception messages, which
end up in logs.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from .errors import ConfigurationError

SQLITE_FILE = "decisions.sqlite3"
BUSY_TIMEOUT_S = 30.0
WRITE = {"sqlite_begin": "IMMEDIATE"}


def normalise_url(url: str) -> str:
    """Accept the URL forms operators paste (postgres://, postgresql://) and pin the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith(("postgresql+psycopg://", "sqlite:///")):
        return url
    scheme = url.split(":", 1)[0] or "(empty)"
    raise ConfigurationError(
        f"DATABASE_URL scheme `{scheme}` is not supported: use postgresql://user@host:port/database "
        "(psycopg 3) or sqlite:////absolute/path.sqlite3, or leave it unset for SQLite in the instance folder"
    )


def default_url(instance_path: str | Path) -> str:
    folder = Path(instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / SQLITE_FILE).resolve()}"


def connect(url: str) -> Engine:
    """An engine for the decision log; `engine.execution_options(**WRITE)` gives the appending one."""
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, hide_parameters=True, connect_args={"timeout": BUSY_TIMEOUT_S})
        _sqlite_transactions(engine)
    else:
        engine = create_engine(url, hide_parameters=True, pool_pre_ping=True)
    _reset_pool_after_fork(engine)
    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_transactions(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event below emits BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the response is sent, even if the machine loses power.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_begin") == "IMMEDIATE"
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _reset_pool_after_fork(engine: Engine) -> None:
    """gunicorn --preload forks workers after create_app: a child must never reuse the parent's connections."""
    ref = weakref.ref(engine)

    def in_child() -> None:
        e = ref()
        if e is not None:
            e.dispose(close=False)

    os.register_at_fork(after_in_child=in_child)
