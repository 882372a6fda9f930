"""The CDS Hooks channel's state for one app, built once from configuration at start-up.

Configuration mistakes stop the service with a message naming the setting (like service/config.py), so a
deployment never runs with authentication silently weaker than configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine

from ..config import Settings
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


def channel_from_settings(settings: Settings, database: Engine) -> Channel:
    """The channel's state; `database` is the decision log's, which also holds the replay cache."""
    verifier = None
    if not settings.cds_hooks_authenticated:
        log.warning(
            "CDS_HOOKS_AUTH=disabled: CDS Hooks calls are NOT authenticated. Use this for local trials only, "
            "never with patient data."
        )
    else:
        issuers = []
        if not settings.cds_hooks_issuers:
            log.warning("CDS_HOOKS_ISSUERS is not set: no EHR is trusted, every CDS Hooks call is refused with 401")
        else:
            try:
                issuers = load_issuers(settings.cds_hooks_issuers)
            except ConfigError as exc:
                raise SystemExit(f"configuration error: {exc}") from None
        verifier = Verifier(issuers, ReplayCache(database))  # one database for the service, shared by its workers
        log.info("CDS Hooks: %d trusted issuer(s)", len(issuers))
    return Channel(
        verifier,
        settings.cds_hooks_cors_origins,
        settings.cds_hooks_fhir_timeout,
        settings.cds_hooks_max_body_bytes,
    )
