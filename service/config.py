"""Configuration from environment variables (documented as a table in README.md).

Everything is read once at start-up and checked here, so a typo in a deployment fails at once with a
message naming the variable, not later inside a request.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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
        "SECRET_KEY": os.environ.get("SECRET_KEY", ""),
        "MAX_CONTENT_LENGTH": _int("MAX_BODY_BYTES", 1_048_576),
        "LOG_LEVEL": _log_level(),
        "BATCH_LIMIT": _int("BATCH_LIMIT", 1000),
        **cds_hooks_from_env(),
        **access_from_env(),
        **roles_from_env(),
    }


def _rate(name: str, default: str) -> str:
    """A rate limit in the limits library's notation ("20/minute", "5/second;100/hour"), or "off"."""
    from limits import parse_many

    raw = os.environ.get(name, default).strip() or default
    if raw.lower() == "off":
        return "off"
    try:
        parse_many(raw)
    except ValueError:
        raise SystemExit(
            f"configuration error: {name} must be a rate such as 20/minute or 5/second;100/hour (or off), not {raw!r}"
        ) from None
    return raw


def access_from_env() -> dict[str, Any]:
    """Rate limits and the proxy in front (README "## Security"); kept apart so each block merges cleanly."""
    storage = os.environ.get("RATE_LIMIT_STORAGE_URI", "memory://").strip() or "memory://"
    if not storage.startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
        raise SystemExit(
            f"configuration error: RATE_LIMIT_STORAGE_URI must be memory:// or a redis:// URL, not {storage!r}"
        )
    return {
        "RATE_LIMIT_STORAGE_URI": storage,
        "RATE_LIMIT_KEY_PREFIX": os.environ.get("RATE_LIMIT_KEY_PREFIX", "hairloss-rules").strip() or "hairloss-rules",
        "RATE_LIMIT_EVALUATIONS": _rate("RATE_LIMIT_EVALUATIONS", "100/second;3000/minute"),
        "RATE_LIMIT_SIGN_IN": _rate("RATE_LIMIT_SIGN_IN", "10/minute;50/hour"),
        "RATE_LIMIT_AUTH_FAILURES": _rate("RATE_LIMIT_AUTH_FAILURES", "20/minute;200/hour"),
        "TRUSTED_PROXY_COUNT": _int("TRUSTED_PROXY_COUNT", 0, minimum=0),
    }


ROLES = ("integration", "clinician", "auditor", "admin")
TOKEN_HASH_SETTINGS = {role: f"{role.upper()}_TOKEN_HASHES" for role in ROLES}
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def _digests(name: str) -> str:
    """A comma-separated list of SHA-256 hex digests (of tokens), checked and normalised (lower case)."""
    digests = [d.strip().lower() for d in os.environ.get(name, "").split(",") if d.strip()]
    bad = [d for d in digests if not _DIGEST.match(d)]
    if bad:
        raise SystemExit(
            f"configuration error: {name} must list SHA-256 hex digests of tokens, separated by commas "
            f"(make one with `printf %s TOKEN | sha256sum`); {len(bad)} entr{'y is' if len(bad) == 1 else 'ies are'} "
            "not 64 hex characters"
        )
    return ",".join(digests)


def _https_url(name: str) -> str:
    """An https URL (plain http only to this machine), without a trailing slash; "" when unset."""
    from urllib.parse import urlsplit

    from .cds.urls import secure_enough

    raw = os.environ.get(name, "").strip()
    if not raw:
        return ""
    parts = urlsplit(raw)
    if not secure_enough(raw) or parts.query or parts.fragment:
        raise SystemExit(
            f"configuration error: {name} must be an https URL (http only to a loopback address) without "
            f"query or fragment, not {raw!r}"
        )
    return raw


def _role_map(name: str) -> dict[str, str]:
    """`idp-role=our-role,...`; empty means the identity provider's role names are ours."""
    raw = os.environ.get(name, "").strip()
    mapping: dict[str, str] = {}
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        theirs, sep, ours = (part.strip() for part in entry.partition("="))
        if not sep or not theirs or ours not in ROLES:
            raise SystemExit(
                f"configuration error: {name} must be a comma-separated list of IDP_ROLE=ROLE with ROLE one of "
                f"{', '.join(ROLES)}; {entry!r} is not"
            )
        mapping[theirs] = ours
    return mapping or {role: role for role in ROLES}


def roles_from_env() -> dict[str, Any]:
    """Who may use which channel (README "## Security"): hashed static tokens per role and an OIDC provider.

    With none of INTEGRATION_TOKEN_HASHES, CLINICIAN_TOKEN_HASHES and OIDC_ISSUER set, the evaluation
    channels stay open (a first try on loopback); see service/http/access/roles.py.
    """
    settings: dict[str, Any] = {name: _digests(name) for name in TOKEN_HASH_SETTINGS.values()}
    issuer = _https_url("OIDC_ISSUER")  # kept exactly as given: `iss` is compared exactly
    audience = os.environ.get("OIDC_AUDIENCE", "").strip()
    client_id = os.environ.get("OIDC_CLIENT_ID", "").strip()
    if issuer and not audience:
        raise SystemExit("configuration error: OIDC_AUDIENCE must be set with OIDC_ISSUER (the `aud` of our tokens)")
    claim = os.environ.get("OIDC_ROLES_CLAIM", "roles").strip() or "roles"
    settings.update(
        {
            "OIDC_ISSUER": issuer,
            "OIDC_AUDIENCE": audience,
            "OIDC_ROLES_CLAIM": claim,
            "OIDC_ROLE_MAP": _role_map("OIDC_ROLE_MAP"),
            "OIDC_CLIENT_ID": client_id,
            "OIDC_CLIENT_SECRET": os.environ.get("OIDC_CLIENT_SECRET", "").strip(),
            "OIDC_SCOPES": os.environ.get("OIDC_SCOPES", "openid profile").strip() or "openid profile",
            "OIDC_JWKS_TTL": _int("OIDC_JWKS_TTL_S", 3600),
            "OIDC_TIMEOUT": _int("OIDC_TIMEOUT_MS", 3000) / 1000.0,
        }
    )
    if (settings["OIDC_CLIENT_ID"] or settings["OIDC_CLIENT_SECRET"]) and not issuer:
        raise SystemExit("configuration error: OIDC_CLIENT_ID and OIDC_CLIENT_SECRET need OIDC_ISSUER")
    if "openid" not in settings["OIDC_SCOPES"].split():
        raise SystemExit(f"configuration error: OIDC_SCOPES must include openid, not {settings['OIDC_SCOPES']!r}")
    return settings


def _loopback_bind(address: str) -> bool:
    """Whether a gunicorn bind address is reachable from this machine only (a unix socket counts)."""
    import ipaddress

    if address.startswith(("unix:", "fd://")):
        return True
    host = address.strip()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or "" (every interface)


def access_configured(settings: dict[str, Any]) -> bool:
    """Whether a credential is configured for the evaluation channels (else they are open to anyone)."""
    return bool(settings["INTEGRATION_TOKEN_HASHES"] or settings["CLINICIAN_TOKEN_HASHES"] or settings["OIDC_ISSUER"])


def refuse_open_bind(binds: list[str]) -> None:
    """Stop the start when gunicorn would listen beyond loopback while the evaluation channels are open."""
    exposed = [b for b in binds if not _loopback_bind(b)]
    if exposed and not access_configured(roles_from_env()):
        raise SystemExit(
            f"configuration error: gunicorn would listen on {', '.join(exposed)}, beyond this machine, while no "
            "credential is configured for the evaluation channels, so anyone on the network could evaluate and "
            "fill the decision log. Set INTEGRATION_TOKEN_HASHES and/or CLINICIAN_TOKEN_HASHES, or OIDC_ISSUER "
            "(README: Security), or bind to 127.0.0.1 (GUNICORN_BIND)."
        )


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
