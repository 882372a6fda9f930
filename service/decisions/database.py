"""Connecting to the decision log's database: SQLite in the instance folder, or PostgreSQL.

Appends to the hash chain must be serialised across gunicorn worker processes and replicas. On SQLite
that is the database's own write lock, taken at the start of the transaction with `BEGIN IMMEDIATE`. The
pysqlite driver's own transaction handling is switched off (it would issue a deferred BEGIN only before
the first INSERT) and the BEGIN is emitted explicitly instead, as the SQLAlchemy SQLite documentation
prescribes for Python < 3.12: by appends.py for appends, by SQLAlchemy's "begin" event otherwise
(IMMEDIATE for the WRITE execution options, deferred for readers, who in WAL mode never wait for a
writer). On PostgreSQL the chain-head row is locked with SELECT ... FOR UPDATE (see appends.py).

Every wait is bounded (`Timeouts`), so a stalled database - a table lock held by another connection, an
exclusive SQLite lock - turns into a RecordError (503 with Retry-After) within seconds instead of holding
a worker until gunicorn kills it. SQLite has one knob, the busy timeout (how long to wait for a lock).
PostgreSQL gets `connect_timeout`, `lock_timeout` and `statement_timeout`: appends and the readiness
probe keep the short statement_timeout, reads get a longer one per transaction. `-c` settings in the
URL's own `options` come after ours, so they win (except statement_timeout of reads); `tcp_user_timeout`
bounds the wait on a server that is gone. Not bounded: a server process that is alive but frozen
(its kernel still acknowledges), which would need a client-side cancel.

`hide_parameters` keeps bound values - profiles, hashed identifiers - out of exception messages, which
end up in logs.
"""

from __future__ import annotations

import math
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from .errors import ConfigurationError

SQLITE_FILE = "decisions.sqlite3"
SYNC_MODES = ("NORMAL", "FULL")
WRITE = {"sqlite_begin": "IMMEDIATE"}


@dataclass(frozen=True)
class Timeouts:
    """How long the log waits for the database (milliseconds); README "Configuration" names the settings.

    `operation`: the longest any statement waits for a lock (SQLite busy timeout; PostgreSQL
    lock_timeout), and on PostgreSQL the longest an append or the readiness probe runs one statement. `connect`:
    opening a PostgreSQL connection (libpq counts whole seconds, so it is rounded up). `query`: the
    statement_timeout of reads on PostgreSQL (audit queries, pages, verify), which scan more.
    Defaults keep a stalled evaluation's 503 within 5 s: connect + operation < 5 s.
    """

    operation_ms: int = 2000
    connect_ms: int = 2000
    query_ms: int = 20000

    def __post_init__(self) -> None:
        for name in ("operation_ms", "connect_ms", "query_ms"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigurationError(
                    f"decision log timeout {name} must be a whole number of ms >= 1, not {value!r}"
                )


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


def connect(url: str, sqlite_sync: str = "NORMAL", timeouts: Timeouts | None = None) -> Engine:
    """An engine for the decision log; `engine.execution_options(**WRITE)` gives the appending one."""
    url = normalise_url(url)
    timeouts = timeouts or Timeouts()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        sync = sqlite_sync.upper()
        if sync not in SYNC_MODES:
            raise ConfigurationError(
                f"DECISION_LOG_SQLITE_SYNC must be one of {', '.join(SYNC_MODES)}, not {sqlite_sync!r}"
            )
        busy = timeouts.operation_ms / 1000
        engine = create_engine(url, hide_parameters=True, connect_args={"timeout": busy})
        _sqlite_transactions(engine, sync)
    else:
        engine = create_engine(url, hide_parameters=True, pool_pre_ping=True, connect_args=_pg_args(parsed, timeouts))
        _pg_reads(engine, timeouts)
    _reset_pool_after_fork(engine)
    return engine


def _pg_args(url: Any, timeouts: Timeouts) -> dict[str, Any]:
    """libpq connection parameters: ours first, so that the URL's own `options` can still override them."""
    own = f"-c lock_timeout={timeouts.operation_ms} -c statement_timeout={timeouts.operation_ms}"
    given = url.query.get("options")
    given = " ".join(given) if isinstance(given, tuple) else given
    args: dict[str, Any] = {"options": f"{own} {given}" if given else own}
    if "connect_timeout" not in url.query:
        args["connect_timeout"] = max(2, math.ceil(timeouts.connect_ms / 1000))  # libpq: whole seconds, 2 at least
    if "tcp_user_timeout" not in url.query:
        # A server that vanished (host down, network cut) never ACKs: without this, a request on a pooled
        # connection (or its pre-ping) waits for TCP's retransmissions, minutes. A slow query is ACKed at once.
        args["tcp_user_timeout"] = timeouts.operation_ms
    return args


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


def _pg_reads(engine: Engine, timeouts: Timeouts) -> None:
    """Reads (every transaction not begun with WRITE) may run for `query_ms`; appends keep `operation_ms`."""

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("sqlite_begin") != "IMMEDIATE":
            conn.connection.dbapi_connection.execute(f"SET LOCAL statement_timeout = {int(timeouts.query_ms)}")


def _reset_pool_after_fork(engine: Engine) -> None:
    """gunicorn --preload forks workers after create_app: a child must never reuse the parent's connections."""
    ref = weakref.ref(engine)

    def in_child() -> None:
        e = ref()
        if e is not None:
            e.dispose(close=False)

    os.register_at_fork(after_in_child=in_child)
