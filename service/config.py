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
        "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
        "MAX_CONTENT_LENGTH": _int("MAX_BODY_BYTES", 1_048_576),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO").upper(),
        "BATCH_LIMIT": _int("BATCH_LIMIT", 1000),
        **cds_hooks_from_env(),
    }


def cds_hooks_from_env() -> dict[str, Any]:
    """CDS Hooks settings (README "## Configuration"); kept apart so each channel's block merges cleanly."""
    return {
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", "").rstrip("/"),
        "CDS_HOOKS_AUTH": os.environ.get("CDS_HOOKS_AUTH", "enabled").strip().lower(),
        "CDS_HOOKS_ISSUERS": os.environ.get("CDS_HOOKS_ISSUERS", ""),
        "CDS_HOOKS_CORS_ORIGINS": os.environ.get("CDS_HOOKS_CORS_ORIGINS", ""),
        "CDS_HOOKS_FHIR_TIMEOUT": _int("CDS_HOOKS_FHIR_TIMEOUT_MS", 2000) / 1000.0,
        "CDS_HOOKS_MAX_BODY_BYTES": _int("CDS_HOOKS_MAX_BODY_BYTES", 8 * 1_048_576),
    }
