"""The decision log and feedback store: every answer, recorded before it is given, in a hash chain.

`open_log` is what create_app calls: SQLite in the instance folder unless DATABASE_URL names PostgreSQL,
migrated to the newest schema, with the revisions of every active ruleset stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..registry import Registry
from .database import Timeouts, default_url
from .errors import ConfigurationError, InvalidFeedback, LogError, RecordError
from .identifiers import load_key
from .log import MIN_FREE_MB, DecisionLog, FeedbackResult

__all__ = [
    "ConfigurationError",
    "DecisionLog",
    "FeedbackResult",
    "InvalidFeedback",
    "LogError",
    "RecordError",
    "open_log",
]


def open_log(config: Mapping[str, Any], instance_path: str | Path, registry: Registry) -> DecisionLog:
    """The application's decision log; raises ConfigurationError or LogError if it cannot be used."""
    url = config["DATABASE_URL"] or default_url(instance_path)
    key = load_key(config["DECISION_HMAC_KEY"], instance_path)
    timeouts = Timeouts(
        operation_ms=config.get("DECISION_LOG_TIMEOUT_MS", Timeouts.operation_ms),
        connect_ms=config.get("DECISION_LOG_CONNECT_TIMEOUT_MS", Timeouts.connect_ms),
        query_ms=config.get("DECISION_LOG_QUERY_TIMEOUT_MS", Timeouts.query_ms),
    )
    log = DecisionLog.open(
        url,
        key,
        registry.revisions.get,
        config["DECISION_LOG_SQLITE_SYNC"],
        timeouts,
        config.get("DECISION_LOG_MIN_FREE_MB", MIN_FREE_MB),
    )
    log.store_revisions(registry.revisions.values())
    log.close()  # no connection outlives start-up: gunicorn --preload forks the workers after this
    return log
