"""Treatment decision-support rules service for hair loss.

`create_app()` wires configuration, the ruleset registry and the blueprints - nothing else.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from . import config
from .registry import Registry


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(config.from_env())
    app.config.update(overrides or {})
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    app.extensions["registry"] = Registry.from_folder(app.config["RULESETS_DIR"])

    from .cli import rulesets
    from .http import api, cds_hooks, docs, errors, health, metrics, openapi, pages

    errors.register(app)
    metrics.init_app(app)
    for bp in (health.bp, api.bp, openapi.bp, docs.bp, pages.bp):
        app.register_blueprint(bp)
    cds_hooks.init_app(app)
    app.cli.add_command(rulesets)
    return app
