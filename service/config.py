"""Configuration from environment variables (documented as a table in README.md).

Everything is read once at start-up and checked here, into one frozen `Settings`, so a typo in a
deployment fails at once with a message naming the variable, not later inside a request. No other module
reads `os.environ`: `create_app()` builds the settings and the modules receive them (through
`service.http.app_context.settings()`, or as arguments). gunicorn.conf.py reads only its own GUNICORN_*
variables, through `gunicorn_from_env` below.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

ROOT = Path(__file__).resolve().parent.parent
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
CDS_HOOKS_AUTH_MODES = ("enabled", "disabled")
RULESET_SIGNING_MODES = ("off", "required")
DIGEST = re.compile(r"^[0-9a-f]{64}$")


def _int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"configuration error: {name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"configuration error: {name} must be at least {minimum}, not {value}")
    return value


def _log_level() -> str:
    level = os.environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if level not in LOG_LEVELS:
        raise SystemExit(f"configuration error: LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    return level


def from_env() -> dict[str, Any]:
    """Every setting the application reads, with its default."""
    return {
        "RULESETS_DIR": os.environ.get("RULESETS_DIR", str(ROOT / "rulesets")),
        "INSTANCE_PATH": os.environ.get("INSTANCE_PATH", ""),
        "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
        "DECISION_HMAC_KEY": os.environ.get("DECISION_HMAC_KEY", ""),
        "DECISION_LOG_SQLITE_SYNC": os.environ.get("DECISION_LOG_SQLITE_SYNC", "NORMAL"),
        "AUDITOR_TOKEN_HASHES": os.environ.get("AUDITOR_TOKEN_HASHES", ""),
        "SECRET_KEY": os.environ.get("SECRET_KEY", ""),
        "MAX_CONTENT_LENGTH": _int("MAX_BODY_BYTES", 1_048_576),
        "LOG_LEVEL": _log_level(),
        "BATCH_LIMIT": _int("BATCH_LIMIT", 1000),
        **cds_hooks_from_env(),
        **decision_log_from_env(),
        **lifecycle_from_env(),
    }


def decision_log_from_env() -> dict[str, Any]:
    """How long the decision log waits for its database, and the disk room it needs (README "Configuration")."""
    return {
        "DECISION_LOG_TIMEOUT_MS": _int("DECISION_LOG_TIMEOUT_MS", 2000),
        "DECISION_LOG_CONNECT_TIMEOUT_MS": _int("DECISION_LOG_CONNECT_TIMEOUT_MS", 2000),
        "DECISION_LOG_QUERY_TIMEOUT_MS": _int("DECISION_LOG_QUERY_TIMEOUT_MS", 20000),
        "DECISION_LOG_MIN_FREE_MB": _int("DECISION_LOG_MIN_FREE_MB", 64, minimum=0),
    }


def lifecycle_from_env() -> dict[str, Any]:
    """Ruleset lifecycle settings (issue 14): admin tokens, sign-off policy, how often workers poll the store."""
    return {
        "ADMIN_TOKEN_HASHES": os.environ.get("ADMIN_TOKEN_HASHES", ""),
        "RULESET_SIGNING": os.environ.get("RULESET_SIGNING", "off").strip().lower() or "off",
        "RULESET_REVIEWER_KEYS": os.environ.get("RULESET_REVIEWER_KEYS", ""),
        "RULESET_SIGNATURES_REQUIRED": _int("RULESET_SIGNATURES_REQUIRED", 1),
        "LIFECYCLE_POLL_SECONDS": _int("LIFECYCLE_POLL_SECONDS", 2, minimum=0),
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
        "PROMETHEUS_MULTIPROC_DIR": os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""),
    }


@functools.lru_cache(maxsize=8)
def token_hashes(configured: str, variable: str = "AUDITOR_TOKEN_HASHES") -> frozenset[str]:
    """Parse AUDITOR_TOKEN_HASHES or ADMIN_TOKEN_HASHES (comma-separated lower-case hex SHA-256 digests)."""
    digests = [d.strip().lower() for d in configured.split(",") if d.strip()]
    bad = [d for d in digests if not DIGEST.match(d)]
    if bad:
        kind = "admin" if variable.startswith("ADMIN") else "auditor"
        raise ConfigurationError(
            f"{variable} must list SHA-256 hex digests of {kind} tokens, separated by commas "
            "(make one with `printf %s TOKEN | sha256sum`); "
            f"{len(bad)} entr{'y is' if len(bad) == 1 else 'ies are'} not 64 hex characters"
        )
    return frozenset(digests)


@dataclass(frozen=True)
class Settings:
    """Every setting of the application, typed and checked; built once by `create_app()`.

    Field names are the variables' (README "Configuration"); `max_body_bytes` is Flask's MAX_CONTENT_LENGTH
    and `cds_hooks_fhir_timeout` is in seconds (CDS_HOOKS_FHIR_TIMEOUT_MS / 1000).
    """

    rulesets_dir: str
    instance_path: str
    database_url: str
    decision_hmac_key: str
    decision_log_sqlite_sync: str
    decision_log_timeout_ms: int
    decision_log_connect_timeout_ms: int
    decision_log_query_timeout_ms: int
    decision_log_min_free_mb: int
    auditor_token_hashes: frozenset[str]
    secret_key: str
    max_body_bytes: int
    log_level: str
    batch_limit: int
    public_base_url: str
    cds_hooks_auth: str
    cds_hooks_issuers: str
    cds_hooks_cors_origins: frozenset[str]
    cds_hooks_fhir_timeout: float
    cds_hooks_max_body_bytes: int
    prometheus_multiproc_dir: str
    admin_token_hashes: frozenset[str]
    ruleset_signing: str  # off | required (sign-offs gate production activation)
    ruleset_reviewer_keys: str  # comma-separated PEM public key files or folders
    ruleset_signatures_required: int
    lifecycle_poll_seconds: int  # 0: a process never follows the store on its own (tests, CLI)

    @property
    def cds_hooks_authenticated(self) -> bool:
        return self.cds_hooks_auth == "enabled"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """From the configuration mapping (from_env's keys, with a caller's overrides); stops on a bad value."""
        mode = str(config["CDS_HOOKS_AUTH"]).strip().lower()
        if mode not in CDS_HOOKS_AUTH_MODES:
            raise SystemExit(f"configuration error: CDS_HOOKS_AUTH must be enabled or disabled, not {mode!r}")
        origins = str(config["CDS_HOOKS_CORS_ORIGINS"]).split(",")
        signing = str(config["RULESET_SIGNING"] or "off").strip().lower()
        if signing not in RULESET_SIGNING_MODES:
            raise ConfigurationError(
                f"RULESET_SIGNING must be one of {', '.join(RULESET_SIGNING_MODES)}, not {signing!r}"
            )
        reviewer_keys = str(config["RULESET_REVIEWER_KEYS"] or "")
        if signing == "required" and not reviewer_keys.strip():
            raise ConfigurationError("RULESET_SIGNING=required needs RULESET_REVIEWER_KEYS (trusted public keys)")
        return cls(
            rulesets_dir=str(config["RULESETS_DIR"]),
            instance_path=str(config["INSTANCE_PATH"] or ""),
            database_url=str(config["DATABASE_URL"] or ""),
            decision_hmac_key=str(config["DECISION_HMAC_KEY"] or ""),
            decision_log_sqlite_sync=str(config["DECISION_LOG_SQLITE_SYNC"]),
            decision_log_timeout_ms=int(config["DECISION_LOG_TIMEOUT_MS"]),
            decision_log_connect_timeout_ms=int(config["DECISION_LOG_CONNECT_TIMEOUT_MS"]),
            decision_log_query_timeout_ms=int(config["DECISION_LOG_QUERY_TIMEOUT_MS"]),
            decision_log_min_free_mb=int(config["DECISION_LOG_MIN_FREE_MB"]),
            auditor_token_hashes=token_hashes(str(config["AUDITOR_TOKEN_HASHES"] or "")),
            secret_key=str(config["SECRET_KEY"] or ""),
            max_body_bytes=int(config["MAX_CONTENT_LENGTH"]),
            log_level=str(config["LOG_LEVEL"]),
            batch_limit=int(config["BATCH_LIMIT"]),
            public_base_url=str(config["PUBLIC_BASE_URL"] or "").rstrip("/"),
            cds_hooks_auth=mode,
            cds_hooks_issuers=str(config["CDS_HOOKS_ISSUERS"] or ""),
            cds_hooks_cors_origins=frozenset(o.strip().rstrip("/") for o in origins if o.strip()),
            cds_hooks_fhir_timeout=float(config["CDS_HOOKS_FHIR_TIMEOUT"]),
            cds_hooks_max_body_bytes=int(config["CDS_HOOKS_MAX_BODY_BYTES"]),
            prometheus_multiproc_dir=str(config.get("PROMETHEUS_MULTIPROC_DIR") or ""),
            admin_token_hashes=token_hashes(str(config["ADMIN_TOKEN_HASHES"] or ""), "ADMIN_TOKEN_HASHES"),
            ruleset_signing=signing,
            ruleset_reviewer_keys=reviewer_keys,
            ruleset_signatures_required=int(config["RULESET_SIGNATURES_REQUIRED"]),
            lifecycle_poll_seconds=int(config["LIFECYCLE_POLL_SECONDS"]),
        )


def load(overrides: Mapping[str, Any] | None = None) -> tuple[Settings, dict[str, Any]]:
    """The settings from the environment and a caller's overrides, and the Flask configuration holding them.

    Overrides use the configuration keys (e.g. `{"RULESETS_DIR": ..., "TESTING": True}`); keys that are not
    settings (Flask's own, such as TESTING) go to the Flask configuration only.
    """
    config = {**from_env(), **(overrides or {})}
    settings = Settings.from_config(config)
    return settings, config


def gunicorn_from_env() -> dict[str, Any]:
    """The settings gunicorn.conf.py takes from the environment (the server, not the application)."""
    control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip()
    access_log = os.environ.get("GUNICORN_ACCESS_LOG", "-").strip()
    return {
        "bind": [b.strip() for b in os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",") if b.strip()],
        "workers": _int("GUNICORN_WORKERS", _int("WEB_CONCURRENCY", os.cpu_count() or 1)),
        "timeout": _int("GUNICORN_TIMEOUT", 30),
        "loglevel": _log_level().lower(),
        "accesslog": None if access_log.lower() in ("", "off", "none") else access_log,
        "control_socket": None if control_socket.lower() in ("", "default") else control_socket,
    }
