"""Connecting to the decision log's database: SQLite in the instance folder, or PostgreSQL.

Appends to the hash chain must be serialised across gunicorn worker processes and replicas. On SQLite
that is the database's own write lock, taken at the start of the transaction with `BEGIN IMMEDIATE`. The
pysqlite driver's own transaction handling is switched off (it would issue a deferred BEGIN only before
the first INSERT) and the BEGIN is emitted explicitly instead, as the SQLAlchemy SQLite documentation
prescribes for Python < 3.12: by appends.py for appends, by SQLAlchemy's "begin" event otherwise
(IMMEDIATE for the WRITE execution options, deferred for readers, who in WAL mode never wait for a
writer). On PostgreSQL the chain-head row is locked with SELECT ... FOR UPDATE (see appends.py).

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
SYNC_MODES = ("NORMAL", "FULL")
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


def connect(url: str, sqlite_sync: str = "NORMAL") -> Engine:
    """An engine for the decision log; `engine.execution_options(**WRITE)` gives the appending one."""
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        sync = sqlite_sync.upper()
        if sync not in SYNC_MODES:
            raise ConfigurationError(
                f"DECISION_LOG_SQLITE_SYNC must be one of {', '.join(SYNC_MODES)}, not {sqlite_sync!r}"
            )
        engine = create_engine(url, hide_parameters=True, connect_args={"timeout": BUSY_TIMEOUT_S})
        _sqlite_transactions(engine, sync)
    else:
        engine = create_engine(url, hide_parameters=True, pool_pre_ping=True)
    _reset_pool_after_fork(engine)
    return engine


def _sqlite_transactions(engine: Engine, sync: str) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event below emits BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL (the default, with WAL): a commit is in the WAL before the response is sent, so a killed
        # worker or a crashed service loses nothing; only a power cut or kernel crash can lose the last
        # commits. FULL fsyncs every commit too - milliseconds on a busy disk, on every request.
        cursor.execute(f"PRAGMA synchronous={sync}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Checkpoints (copying the WAL into the database, with fsyncs) run inside whichever commit crosses
        # the threshold. Every 10,000 pages (~40 MB of WAL) instead of 1,000 spares ~90% of their fsyncs.
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_begin") == "IMMEDIATE"
        conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _reset_pool_after_fork(engine: Engine) -> None:
    """gunicorn --preload forks workers after create_app: a child must never reuse the parent's connections."""
    ref = weakref.ref(engine)

    def in_child() -> None:
        e = ref()
        if e is not None:
            e.dispose(close=False)

    os.register_at_fork(after_in_child=in_child)
