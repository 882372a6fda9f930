"""Configuration from environment variables (documented as a table in README.md).

Everything is read once at start-up and checked here, into one frozen `Settings`, so a typo in a
deployment fails at once with a message naming the variable, not later inside a request. No other module
reads `os.environ`: `create_app()` builds the settings and the modules receive them (through
`service.http.app_context.settings()`, or as arguments). gunicorn.conf.py reads only its own GUNICORN_*
variables, through `gunicorn_from_env` below.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

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
        "SECRET_KEY": os.environ.get("SECRET_KEY", ""),
        "MAX_CONTENT_LENGTH": _int("MAX_BODY_BYTES", 1_048_576),
        "LOG_LEVEL": _log_level(),
        "BATCH_LIMIT": _int("BATCH_LIMIT", 1000),
        **cds_hooks_from_env(),
        **decision_log_from_env(),
        **lifecycle_from_env(),
        **access_from_env(),
        **roles_from_env(),
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
        "TRUSTED_HOSTS": trusted_hosts(os.environ.get("TRUSTED_HOSTS", "")),
    }


def trusted_hosts(raw: Any) -> list[str] | None:
    """TRUSTED_HOSTS: the host names the service answers to (comma-separated; `.example.org` also allows its
    subdomains), or None for any. Flask answers a request for another Host with 400 before any view runs,
    so no redirect, link or JWT `aud` is ever built from a Host header an attacker chose."""
    if raw is None:
        return None
    names = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    hosts = [str(h).strip().lower() for h in names if str(h).strip()]
    bad = [h for h in hosts if not re.fullmatch(r"\.?[a-z0-9]([a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\]", h)]
    if bad:
        raise SystemExit(
            f"configuration error: TRUSTED_HOSTS must list host names without scheme or port "
            f"(such as rules.example.org,.example.org), not {', '.join(map(repr, bad))}"
        )
    return hosts or None


ROLES = ("integration", "clinician", "auditor", "admin")
TOKEN_HASH_SETTINGS = {role: f"{role.upper()}_TOKEN_HASHES" for role in ROLES}


def _digests(name: str) -> str:
    """A role's token digests from the environment, checked by the one parser (token_hashes) at start."""
    try:
        return ",".join(sorted(token_hashes(os.environ.get(name, ""), name)))
    except ConfigurationError as exc:
        raise SystemExit(f"configuration error: {exc}") from None


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or "" (every interface)


def _https_url(name: str) -> str:
    """An https URL (plain http only to this machine, as service/cds/urls.py allows), "" when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return ""
    parts = urlsplit(raw)
    secure = bool(parts.hostname) and not parts.username and not parts.password
    secure = secure and (
        parts.scheme == "https" or (parts.scheme == "http" and _is_loopback_host(parts.hostname or ""))
    )
    if not secure or parts.query or parts.fragment:
        raise SystemExit(
            f"configuration error: {name} must be an https URL (http only to a loopback address) without "
            f"query or fragment, not {raw!r}"
        )
    return raw


def role_map(name: str, raw: str) -> dict[str, str]:
    """`idp-role=our-role,...`; empty means the identity provider's role names are ours."""
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
            "OIDC_ROLE_MAP": role_map("OIDC_ROLE_MAP", os.environ.get("OIDC_ROLE_MAP", "").strip()),
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
    if address.startswith(("unix:", "fd://")):
        return True
    host = address.strip()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return _is_loopback_host(host)


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
        "EHR_FRAME_ORIGINS": os.environ.get("EHR_FRAME_ORIGINS", ""),
        "SMART_CLIENT_ID": os.environ.get("SMART_CLIENT_ID", ""),
        "SMART_ISSUERS": os.environ.get("SMART_ISSUERS", ""),
        "CDS_HOOKS_FHIR_TIMEOUT": _int("CDS_HOOKS_FHIR_TIMEOUT_MS", 2000) / 1000.0,
        "CDS_HOOKS_MAX_BODY_BYTES": _int("CDS_HOOKS_MAX_BODY_BYTES", 8 * 1_048_576),
        "PROMETHEUS_MULTIPROC_DIR": os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""),
    }


FRAME_ORIGIN = re.compile(r"^(https://[a-z0-9.-]+|http://(localhost|127\.0\.0\.1|\[::1\]))(:[0-9]{1,5})?$")


def frame_origins(configured: str) -> tuple[str, ...]:
    """EHR_FRAME_ORIGINS: comma-separated origins (https, or plain http on loopback) whose pages may show
    the clinician form in a frame (an EHR opening a card link or a SMART launch in its window). Empty: no
    framing at all (`frame-ancestors 'none'`). No wildcard and no path: each is one exact origin."""
    out = []
    for item in configured.split(","):
        origin = item.strip().rstrip("/").lower()
        if not origin:
            continue
        if not FRAME_ORIGIN.match(origin):
            raise SystemExit(
                f"configuration error: EHR_FRAME_ORIGINS must list origins like https://ehr.example.org, not {item!r}"
            )
        out.append(origin)
    return tuple(dict.fromkeys(out))


SMART_ISSUER = re.compile(r"^(https://[^\s/?#]+|http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?)(/[^\s?#]*)?$")


def smart_issuers(configured: str, client_id: str) -> tuple[str, ...]:
    """SMART_ISSUERS: comma-separated FHIR base URLs (`iss`) trusted to launch the form (https; plain http
    only on loopback). Needed with SMART_CLIENT_ID; the launch's `iss` must equal one of them exactly."""
    out = []
    for item in configured.split(","):
        iss = item.strip().rstrip("/")
        if not iss:
            continue
        if not SMART_ISSUER.match(iss):
            raise SystemExit(f"configuration error: SMART_ISSUERS must list https FHIR base URLs, not {item!r}")
        out.append(iss)
    if client_id.strip() and not out:
        raise SystemExit("configuration error: SMART_CLIENT_ID needs SMART_ISSUERS (the EHRs that may launch the form)")
    return tuple(dict.fromkeys(out))


@functools.lru_cache(maxsize=32)
def token_hashes(configured: str, name: str = "AUDITOR_TOKEN_HASHES") -> frozenset[str]:
    """Parse a role's token digests (AUDITOR_TOKEN_HASHES etc.: comma-separated hex SHA-256 digests).

    Cached per value, so the token checks may read the setting on every request: an operator revokes a
    token by changing it (app.config), without a restart."""
    digests = [d.strip().lower() for d in configured.split(",") if d.strip()]
    bad = [d for d in digests if not DIGEST.match(d)]
    if bad:
        role = name.removesuffix("_TOKEN_HASHES").lower()
        raise ConfigurationError(
            f"{name} must list SHA-256 hex digests of {role} tokens, separated by commas "
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
    ehr_frame_origins: tuple[str, ...]  # origins allowed to frame the clinician pages (CSP frame-ancestors)
    smart_client_id: str  # SMART App Launch of the form: our client id at the EHRs ("" = no SMART launch)
    smart_issuers: tuple[str, ...]  # the FHIR bases (`iss`) a launch may come from
    cds_hooks_fhir_timeout: float
    cds_hooks_max_body_bytes: int
    prometheus_multiproc_dir: str
    ruleset_signing: str  # off | required (sign-offs gate production activation)
    ruleset_reviewer_keys: str  # comma-separated PEM public key files or folders
    ruleset_signatures_required: int
    lifecycle_poll_seconds: int  # 0: a process never follows the store on its own (tests, CLI)
    # Access (service/http/access): token digests per role, the OIDC provider, rate limits, the proxy.
    integration_token_hashes: frozenset[str]
    clinician_token_hashes: frozenset[str]
    admin_token_hashes: frozenset[str]
    oidc_issuer: str
    oidc_audience: str
    oidc_roles_claim: str
    oidc_role_map: Mapping[str, str]
    oidc_client_id: str
    oidc_client_secret: str = field(repr=False)
    oidc_scopes: str
    oidc_jwks_ttl: float  # seconds (OIDC_JWKS_TTL_S)
    oidc_timeout: float  # seconds (OIDC_TIMEOUT_MS / 1000)
    rate_limit_storage_uri: str
    rate_limit_key_prefix: str
    rate_limit_evaluations: str  # the limits library's notation, or "off"
    rate_limit_sign_in: str
    rate_limit_auth_failures: str
    trusted_proxy_count: int
    trusted_hosts: tuple[str, ...]  # empty: any Host header (TRUSTED_HOSTS)

    @property
    def cds_hooks_authenticated(self) -> bool:
        return self.cds_hooks_auth == "enabled"

    def token_hashes(self, role: str) -> frozenset[str]:
        """The configured token digests of a role (at start; the token checks re-read app.config)."""
        return getattr(self, f"{role}_token_hashes")

    @property
    def access_configured(self) -> bool:
        """Whether a credential is configured for the evaluation channels (else they are open to anyone)."""
        return bool(self.integration_token_hashes or self.clinician_token_hashes or self.oidc_issuer)

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
        public_base_url = str(config["PUBLIC_BASE_URL"] or "").rstrip("/")
        if mode == "enabled" and str(config["CDS_HOOKS_ISSUERS"] or "").strip() and not public_base_url:
            raise SystemExit(
                "configuration error: CDS_HOOKS_AUTH=enabled with CDS_HOOKS_ISSUERS needs PUBLIC_BASE_URL (such as "
                "https://rules.example.org): each EHR's JWT must carry `aud` = the URL it calls, and that URL is "
                "built from PUBLIC_BASE_URL only, never from the request's Host header, which a caller chooses"
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
            public_base_url=public_base_url,
            cds_hooks_auth=mode,
            cds_hooks_issuers=str(config["CDS_HOOKS_ISSUERS"] or ""),
            cds_hooks_cors_origins=frozenset(o.strip().rstrip("/") for o in origins if o.strip()),
            ehr_frame_origins=frame_origins(str(config.get("EHR_FRAME_ORIGINS") or "")),
            smart_client_id=str(config.get("SMART_CLIENT_ID") or "").strip(),
            smart_issuers=smart_issuers(
                str(config.get("SMART_ISSUERS") or ""), str(config.get("SMART_CLIENT_ID") or "")
            ),
            cds_hooks_fhir_timeout=float(config["CDS_HOOKS_FHIR_TIMEOUT"]),
            cds_hooks_max_body_bytes=int(config["CDS_HOOKS_MAX_BODY_BYTES"]),
            prometheus_multiproc_dir=str(config.get("PROMETHEUS_MULTIPROC_DIR") or ""),
            ruleset_signing=signing,
            ruleset_reviewer_keys=reviewer_keys,
            ruleset_signatures_required=int(config["RULESET_SIGNATURES_REQUIRED"]),
            lifecycle_poll_seconds=int(config["LIFECYCLE_POLL_SECONDS"]),
            **_access_settings(config),
        )


def _access_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The access fields of Settings from the configuration mapping (env values are checked by from_env)."""
    mapping = config.get("OIDC_ROLE_MAP") or {}
    if isinstance(mapping, str):
        mapping = role_map("OIDC_ROLE_MAP", mapping)
    hashes = {
        f"{role}_token_hashes": token_hashes(str(config.get(name) or ""), name)
        for role, name in TOKEN_HASH_SETTINGS.items()
        if role != "auditor"
    }
    return {
        **hashes,
        "oidc_issuer": str(config.get("OIDC_ISSUER") or ""),
        "oidc_audience": str(config.get("OIDC_AUDIENCE") or ""),
        "oidc_roles_claim": str(config.get("OIDC_ROLES_CLAIM") or "roles"),
        "oidc_role_map": MappingProxyType(dict(mapping or {r: r for r in ROLES})),
        "oidc_client_id": str(config.get("OIDC_CLIENT_ID") or ""),
        "oidc_client_secret": str(config.get("OIDC_CLIENT_SECRET") or ""),
        "oidc_scopes": str(config.get("OIDC_SCOPES") or "openid profile"),
        "oidc_jwks_ttl": float(config.get("OIDC_JWKS_TTL", 3600)),
        "oidc_timeout": float(config.get("OIDC_TIMEOUT", 3.0)),
        "rate_limit_storage_uri": str(config.get("RATE_LIMIT_STORAGE_URI") or "memory://"),
        "rate_limit_key_prefix": str(config.get("RATE_LIMIT_KEY_PREFIX") or "hairloss-rules"),
        "rate_limit_evaluations": str(config["RATE_LIMIT_EVALUATIONS"]),
        "rate_limit_sign_in": str(config["RATE_LIMIT_SIGN_IN"]),
        "rate_limit_auth_failures": str(config["RATE_LIMIT_AUTH_FAILURES"]),
        "trusted_proxy_count": int(config.get("TRUSTED_PROXY_COUNT") or 0),
        "trusted_hosts": tuple(trusted_hosts(config.get("TRUSTED_HOSTS")) or ()),
    }


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
