"""The CDS Hooks channel's state for one app, built once from configuration at start-up.

Configuration mistakes stop the service with a message naming the setting (like service/config.py), so a
deployment never runs with authentication silently weaker than configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flask import Flask

from .auth import ConfigError, Verifier, load_issuers
from .services import Catalog
from .store import ReplayCache

log = logging.getLogger(__name__)


@dataclass
class Channel:
    verifier: Verifier | None  # None: CDS_HOOKS_AUTH=disabled
    origins: frozenset[str]
    fhir_timeout: float
    max_body: int
    catalog: Catalog = field(default_factory=Catalog)

    def allows_origin(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for a request's Origin, or None if it is not allowed."""
        if not origin:
            return None
        if "*" in self.origins:
            return "*"
        return origin if origin in self.origins else None


def channel_from_config(app: Flask) -> Channel:
    cfg = app.config
    mode = cfg["CDS_HOOKS_AUTH"]
    if mode not in ("enabled", "disabled"):
        raise SystemExit(f"configuration error: CDS_HOOKS_AUTH must be enabled or disabled, not {mode!r}")
    origins = frozenset(o.strip().rstrip("/") for o in cfg["CDS_HOOKS_CORS_ORIGINS"].split(",") if o.strip())
    verifier = None
    if mode == "disabled":
        log.warning(
            "CDS_HOOKS_AUTH=disabled: CDS Hooks calls are NOT authenticated. Use this for local trials only, "
            "never with patient data."
        )
    else:
        issuers = []
        if not cfg["CDS_HOOKS_ISSUERS"]:
            log.warning("CDS_HOOKS_ISSUERS is not set: no EHR is trusted, every CDS Hooks call is refused with 401")
        else:
            try:
                issuers = load_issuers(cfg["CDS_HOOKS_ISSUERS"])
            except ConfigError as exc:
                raise SystemExit(f"configuration error: {exc}") from None
        engine = app.extensions["decision_log"].engine  # one database for the service, shared by its workers
        verifier = Verifier(issuers, ReplayCache(engine))
        log.info("CDS Hooks: %d trusted issuer(s)", len(issuers))
    return Channel(verifier, origins, cfg["CDS_HOOKS_FHIR_TIMEOUT"], cfg["CDS_HOOKS_MAX_BODY_BYTES"])
