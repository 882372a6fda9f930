"""Treatment decision-support rules service for hair loss.

`create_app()` wires the settings (service/config.py), the ruleset registry, the decision log, the ruleset
lifecycle and the blueprints - nothing else.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask

from . import config
from .decisions import open_log
from .http import app_context
from .registry import Registry


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    settings, flask_config = config.load(overrides)  # a bad value stops here, naming the variable
    instance_path = os.path.abspath(settings.instance_path) if settings.instance_path else None
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path)
    app.config.update(flask_config)
    app.extensions[app_context.SETTINGS] = settings
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    registry = Registry.from_folder(settings.rulesets_dir)
    app.extensions[app_context.REGISTRY] = registry

    from . import lifecycle_cli  # noqa: F401  (adds publish, activate, rollback, sign, diff, ... to `rulesets`)
    from .cli import rulesets
    from .decisions.cli import decisions
    from .http import body, errors, headers, openapi
    from .http.access import limits, roles
    from .http.admin import routes as admin
    from .http.api import routes as api
    from .http.audit import api as audit
    from .http.audit import lifecycle_pages  # noqa: F401  (nests itself in the decision pages)
    from .http.audit import pages as decision_pages
    from .http.audit import session as auditor_session
    from .http.cds_hooks import routes as cds_hooks
    from .http.ops import docs, health, metrics
    from .http.pages import routes as pages
    from .http.pages import sign_in as clinician_sign_in
    from .http.pages import smart as smart_launch
    from .lifecycle import open_lifecycle

    errors.register(app)
    body.init_app(app)  # a request body the server cannot parse is a 400, not a 500
    headers.init_app(app)  # no-store and nosniff on patient data, HSTS, no redirect to a chosen Host
    roles.init_app(app)
    auditor_session.init_app(app)
    metrics.init_app(app)
    for bp in (health.bp, api.bp, openapi.bp, docs.bp, pages.bp, audit.bp, decision_pages.bp, admin.bp, admin.readers):
        app.register_blueprint(bp)
    clinician_sign_in.init_app(app)
    smart_launch.init_app(app)
    app.cli.add_command(rulesets)
    app.cli.add_command(decisions)
    # After the rest of the configuration is checked, so that an error there never leaves a connection
    # behind; before CDS Hooks, whose replay cache lives in the same database.
    app.extensions[app_context.DECISION_LOG] = open_log(app.config, app.instance_path, registry)
    app.extensions[app_context.LIFECYCLE] = open_lifecycle(
        settings, app.instance_path, registry, app.extensions[app_context.DECISION_LOG]
    )
    cds_hooks.init_app(app)
    limits.init_app(app)  # last: it wraps the registered endpoints
    return app
