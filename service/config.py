"""Configuration from environment variables (documented as a table in README.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"configuration error: {name} must be a whole number, not {raw!r}") from None


def from_env() -> dict[str, Any]:
    """Every setting the service reads, with its default."""
    return {
        "RULESETS_DIR": os.environ.get("RULESETS_DIR", str(ROOT / "rulesets")),
        "INSTANCE_PATH": os.environ.get("INSTANCE_PATH", ""),
        "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
        "DECISION_HMAC_KEY": os.environ.get("DECISION_HMAC_KEY", ""),
        "DECISION_LOG_SQLITE_SYNC": os.environ.get("DECISION_LOG_SQLITE_SYNC", "NORMAL"),
        "AUDITOR_TOKEN_HASHES": os.environ.get("AUDITOR_TOKEN_HASHES", ""),
        "MAX_CONTENT_LENGTH": _int("MAX_BODY_BYTES", 1_048_576),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO").upper(),
        "BATCH_LIMIT": _int("BATCH_LIMIT", 1000),
    }
