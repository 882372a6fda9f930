"""What the running app holds, by name: the one place that knows the keys of `app.extensions`.

`create_app()` stores the settings, the ruleset registry, the decision log and the CDS Hooks channel once; handlers and
CLI commands ask for them here instead of indexing `current_app.extensions` themselves, so a key cannot be
misspelt in one module and a test can swap a part (e.g. a failing decision log) in one place.
Each accessor takes an explicit app for code that runs outside a request (building the OpenAPI document).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

if TYPE_CHECKING:
    from ..cds.setup import Channel
    from ..config import Settings
    from ..decisions import DecisionLog
    from ..registry import Registry

SETTINGS = "settings"
REGISTRY = "registry"
DECISION_LOG = "decision_log"
CDS_CHANNEL = "cds_hooks"


def _extensions(app: Flask | None) -> dict[str, Any]:
    return (app or current_app).extensions


def settings(app: Flask | None = None) -> Settings:
    """The settings, parsed and checked once at start (service/config.py)."""
    return _extensions(app)[SETTINGS]


def registry(app: Flask | None = None) -> Registry:
    """The active rulesets (service/registry.py)."""
    return _extensions(app)[REGISTRY]


def decision_log(app: Flask | None = None) -> DecisionLog:
    """The decision log, for the pages and endpoints that read it."""
    return _extensions(app)[DECISION_LOG]


def recorder(app: Flask | None = None) -> DecisionLog | None:
    """The decision log as the answer paths use it: None (nothing recorded) only in an app built without one."""
    return _extensions(app).get(DECISION_LOG)


def cds_channel(app: Flask | None = None) -> Channel:
    """The CDS Hooks channel's state: verifier, allowed origins, services (service/cds/setup.py)."""
    return _extensions(app)[CDS_CHANNEL]
