"""The decision log and feedback store: every answer, recorded before it is given, in a hash chain.

`open_log` is what create_app calls: SQLite in the instance folder unless DATABASE_URL names PostgreSQL,
migrated to the newest schema, with the revisions of every active ruleset stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..registry import Registry
from .database import default_url
from .errors import ConfigurationError, InvalidFeedback, LogError, RecordError
from .identifiers import load_key
from .log import DecisionLog, FeedbackResult

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
    log = DecisionLog.open(url, key, registry.revisions.get)
    log.store_revisions(registry.revisions.values())
    return log
