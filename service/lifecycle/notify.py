"""PostgreSQL LISTEN/NOTIFY for the lifecycle: a new action wakes every follower at once.

Each lifecycle action sends `NOTIFY ruleset_lifecycle` in its own transaction (store.py), so PostgreSQL
delivers it when the action commits, to every process of every replica that listens. A follower
(manager.py) waits on its listening connection instead of sleeping; a notification ends the wait, and
the follower then does what it does after every wait: read the chain head and sync if it moved. So a
lost notification, a listening connection that broke, or SQLite (no NOTIFY) only means the follower
falls back to polling every LIFECYCLE_POLL_SECONDS; it never misses an action.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger(__name__)
CHANNEL = "ruleset_lifecycle"


class Listener:
    """A dedicated connection LISTENing on CHANNEL (PostgreSQL), or a plain sleep (any other database)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.enabled = engine.dialect.name == "postgresql"
        self._conn: Any = None

    def start(self) -> None:
        """LISTEN now, before the follower's first read of the chain head: nothing between is missed."""
        if not self.enabled:
            return
        try:
            self._connection()
        except Exception as exc:
            log.warning("lifecycle LISTEN not possible now (%s); polling meanwhile", type(exc).__name__)
            self.close()

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds; True if a notification arrived (then sync at once)."""
        if not self.enabled:
            time.sleep(timeout)
            return False
        started = time.monotonic()
        try:
            conn = self._connection()
            notified = any(True for _ in conn.notifies(timeout=timeout, stop_after=1))
            if notified:  # several actions in a burst: one sync covers them all
                for _ in conn.notifies(timeout=0.05):
                    pass
            return notified
        except Exception as exc:  # the database went away: poll until it is back (reconnect next time)
            log.warning("lifecycle LISTEN connection lost (%s); polling meanwhile", type(exc).__name__)
            self.close()
            time.sleep(max(0.0, timeout - (time.monotonic() - started)))
            return False

    def _connection(self) -> Any:
        if self._conn is None:
            raw = self.engine.raw_connection()
            conn = raw.driver_connection
            raw.detach()  # this connection is the listener's for good, never back in the pool
            self._conn = conn  # closed by close() whatever happens next
            conn.rollback()
            conn.autocommit = True
            conn.execute(f"LISTEN {CHANNEL}")
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:
                log.debug("closing the LISTEN connection: %s", exc)
