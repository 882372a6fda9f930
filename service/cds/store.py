"""The table this channel owns: JWT ids already seen, shared by every worker process.

A replayed JWT must fail even when it reaches another gunicorn worker than the first use, so the replay
cache lives in the service's database - the decision log's (DATABASE_URL; default SQLite in the instance
folder) - not in process memory. The table is created by the decision log's Alembic migrations
(service/decisions/migrations/versions/0002_cds_hooks_seen_jwt.py) from the model in decisions/models.py.
"""

from __future__ import annotations

import hashlib
import threading
import time

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..decisions.models import SeenJwt
from ..errors import ServiceError

seen_jwt = SeenJwt.__table__


class ReplayStoreError(ServiceError, RuntimeError):
    """The seen-jti table cannot be read or written: no token can be accepted until it can."""

    status = 503
    title = "Service Unavailable"
    public_detail = "the service cannot check tokens right now; retry"
    outcome_code = "transient"


class ReplayCache:
    """Answers "is this the first use of this JWT?" atomically, across processes sharing the database."""

    PURGE_EVERY_S = 60.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._last_purge = 0.0
        self._lock = threading.Lock()

    def first_use(self, issuer: str, jti: str, keep_until: float) -> bool:
        """Record the id until `keep_until` (epoch seconds); False if it was already recorded."""
        key = hashlib.sha256(f"{issuer}\n{jti}".encode()).hexdigest()
        try:
            self._purge_expired()
            with self.engine.begin() as conn:
                conn.execute(insert(seen_jwt).values(key=key, expires_at=int(keep_until) + 1))
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise ReplayStoreError(f"the seen-jti table is unavailable ({type(exc).__name__})") from None
        return True

    def _purge_expired(self) -> None:
        now = time.time()
        with self._lock:
            if now - self._last_purge < self.PURGE_EVERY_S:
                return
            self._last_purge = now
        with self.engine.begin() as conn:
            conn.execute(delete(seen_jwt).where(seen_jwt.c.expires_at < int(now)))
