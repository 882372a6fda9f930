"""Treatment decision-support rules service for hair loss.

`create_app()` wires configuration, the ruleset registry, the decision log and the blueprints - nothing else.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask

from . import config
from .decisions import open_log
from .registry import Registry


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    settings = {**config.from_env(), **(overrides or {})}
    instance_path = os.path.abspath(settings["INSTANCE_PATH"]) if settings["INSTANCE_PATH"] else None
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path)
    app.config.update(settings)
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    registry = Registry.from_folder(app.config["RULESETS_DIR"])
    app.extensions["registry"] = registry

    from .cli import rulesets
    from .decisions.cli import decisions
    from .http import (
        admin,
        api,
        audit,
        auditor_session,
        cds_hooks,
        decision_pages,
        docs,
        errors,
        health,
        lifecycle_pages,  # noqa: F401  (nested in the decision pages when imported)
        metrics,
        openapi,
        pages,
    )
    from .lifecycle import open_lifecycle

    errors.register(app)
    auditor_session.init_app(app)
    metrics.init_app(app)
    for bp in (health.bp, api.bp, openapi.bp, docs.bp, pages.bp, audit.bp, decision_pages.bp, admin.bp):
        app.register_blueprint(bp)
    app.cli.add_command(rulesets)
    app.cli.add_command(decisions)
    # After the rest of the configuration is checked, so that an error there never leaves a connection
    # behind; before CDS Hooks, whose replay cache lives in the same database.
    app.extensions["decision_log"] = open_log(app.config, app.instance_path, registry)
    app.extensions["lifecycle"] = open_lifecycle(
        app.config, app.instance_path, registry, app.extensions["decision_log"]
    )
    admin.init_app(app)
    cds_hooks.init_app(app)
    return app
