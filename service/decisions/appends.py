"""The append path: statements compiled once, run on a database connection each thread keeps.

An append runs for every answered request, so its cost is the service's cost. Through SQLAlchemy's
engine and pool, the scaffolding of one transaction - pool checkout and return, connection and
transaction objects, events, statement execution contexts - costs more than the database's own work.
So each thread takes one connection from the engine's pool (SQLAlchemy still creates and configures it:
WAL, busy timeout, foreign keys) and keeps it, and runs the append's few statements on the driver's
cursor. The SQL is still compiled by SQLAlchemy from the models, and values pass through the columns'
own bind processors, so rows are exactly what SQLAlchemy would write.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect, Engine, Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

from .errors import RecordError
from .models import Card, ChainHead, Decision, Feedback, Revision


class Statement:
    def __init__(self, statement: Executable, dialect: Dialect, table: Table | None = None) -> None:
        self.sql = str(statement.compile(dialect=dialect))
        processors = {c.key: c.type.bind_processor(dialect) for c in table.columns} if table is not None else {}
        self._processors: dict[str, Callable[[Any], Any]] = {k: p for k, p in processors.items() if p}

    def params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(values)
        for key, process in self._processors.items():
            if key in out:
                out[key] = process(out[key])
        return out


class Appends:
    """The chain-head lock and move, and the inserts of revisions, decisions, cards and feedback."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        # :name placeholders, which the sqlite3 driver takes with a dict (psycopg's are %(name)s already)
        dialect = sqlite.dialect(paramstyle="named") if self.sqlite else engine.dialect
        self.head = Statement(
            select(ChainHead.seq, ChainHead.hash).where(ChainHead.name == bindparam("chain")).with_for_update(),
            dialect,
        )
        self.move_head = Statement(
            update(ChainHead)
            .where(ChainHead.name == bindparam("chain"))
            .values(seq=bindparam("head_seq"), hash=bindparam("head_hash")),
            dialect,
        )
        on_conflict = sqlite.insert if self.sqlite else postgresql.insert
        self.revision = Statement(
            on_conflict(Revision).on_conflict_do_nothing(index_elements=["sha256"]), dialect, Revision.__table__
        )
        self.decision = Statement(insert(Decision), dialect, Decision.__table__)
        self.cards = Statement(insert(Card), dialect, Card.__table__)
        self.feedback = Statement(insert(Feedback), dialect, Feedback.__table__)
        self._local = threading.local()
        self._held: list[Any] = []
        self._held_lock = threading.Lock()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """A write transaction on this thread's connection (SQLite: BEGIN IMMEDIATE, the write lock).

        On any failure the transaction is rolled back and the connection discarded, so a broken one
        (database restarted, file replaced) is never reused.
        """
        proxy = self._connection()
        dbapi = proxy.dbapi_connection
        try:
            if self.sqlite:
                dbapi.execute("BEGIN IMMEDIATE")
            yield dbapi
            dbapi.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                dbapi.rollback()
            self._discard(proxy)
            raise

    def _connection(self) -> Any:
        held = getattr(self._local, "held", None)
        if held is None or held[0] != os.getpid():  # a forked worker must not share its parent's connection
            proxy = self.engine.raw_connection()
            with self._held_lock:
                self._held.append(proxy)
            self._local.held = held = (os.getpid(), proxy)
        return held[1]

    def _discard(self, proxy: Any) -> None:
        self._local.held = None
        with self._held_lock:
            if proxy in self._held:
                self._held.remove(proxy)
        with contextlib.suppress(Exception):
            proxy.invalidate()

    def close(self) -> None:
        """Close the connections threads hold (at shutdown; another thread must not be appending)."""
        with self._held_lock:
            held, self._held = self._held, []
        for proxy in held:
            with contextlib.suppress(Exception):
                proxy.invalidate()
        self._local = threading.local()

    @staticmethod
    def run(dbapi: Any, statement: Statement, values: Mapping[str, Any]) -> Sequence[Any] | None:
        """Execute in the connection's current transaction; the first row, if the statement returns rows."""
        cursor = dbapi.cursor()
        try:
            cursor.execute(statement.sql, statement.params(values))
            return cursor.fetchone() if cursor.description else None
        finally:
            cursor.close()

    @staticmethod
    def run_many(dbapi: Any, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> None:
        cursor = dbapi.cursor()
        try:
            cursor.executemany(statement.sql, [statement.params(r) for r in rows])
        finally:
            cursor.close()

    def lock_head(self, dbapi: Any, chain: str) -> tuple[int, str]:
        """The next seq and the hash to link to, with the chain head locked until commit."""
        head = self.run(dbapi, self.head, {"chain": chain})
        if head is None:
            raise RecordError(f"the `{chain}` chain head is missing: run `flask --app service decisions verify`")
        seq, digest = head
        return seq + 1, digest

    def move(self, dbapi: Any, chain: str, seq: int, digest: str) -> None:
        self.run(dbapi, self.move_head, {"chain": chain, "head_seq": seq, "head_hash": digest})
