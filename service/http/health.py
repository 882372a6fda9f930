"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    registry = current_app.extensions["registry"]
    loaded = [a.ruleset.summary for a in registry.all()]
    ready = bool(loaded)
    body = {"status": "ready" if ready else "not ready", "rulesets": loaded}
    if registry.failures:
        body["failures"] = [{"path": f.path, "problems": f.problems} for f in registry.failures.values()]
    return jsonify(body), 200 if ready else 503
