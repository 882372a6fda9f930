"""Liveness and readiness probes."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from ...decisions import LogError
from .. import app_context
from ..docschemas import HealthSchema, ReadinessSchema
from ..openapi import SpecContext, document

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    registry = app_context.registry()
    loaded = [a.ruleset.summary for a in registry.all()]
    database = _database()
    ready = bool(loaded) and database["reachable"] and database["can_record"]
    body = {"status": "ready" if ready else "not ready", "rulesets": loaded, "database": database}
    if registry.failures:
        body["failures"] = [{"path": f.path, "problems": f.problems} for f in registry.failures.values()]
    return jsonify(body), 200 if ready else 503


@document(bp)
def _paths(ctx: SpecContext) -> None:
    ctx.spec.components.schema("Health", schema=HealthSchema)
    ctx.spec.components.schema("Readiness", schema=ReadinessSchema)
    ctx.spec.path(
        "/healthz",
        operations={
            "get": {
                "tags": ["service"],
                "operationId": "healthz",
                "summary": "Liveness: the process answers",
                "responses": {"200": ctx.json_response("Health", "Alive.")},
            }
        },
    )
    ctx.spec.path(
        "/readyz",
        operations={
            "get": {
                "tags": ["service"],
                "operationId": "readyz",
                "summary": "Readiness: rulesets loaded, and the decision log reachable and able to record",
                "responses": {
                    "200": ctx.json_response("Readiness", "Ready to answer evaluations."),
                    "503": ctx.json_response("Readiness", "Not ready; `failures` says why."),
                },
            }
        },
    )


def _database() -> dict[str, Any]:
    """Whether the decision log answers and could record now: without that no decision may be given."""
    decision_log = app_context.recorder()
    if decision_log is None:
        return {"reachable": False, "can_record": False, "problem": "the decision log is not configured"}
    try:
        decision_log.ping()
    except LogError as exc:
        log.warning("readiness: %s", exc)  # the detail (host, error) stays in the log, not in a public probe
        return {
            "backend": decision_log.backend,
            "reachable": False,
            "can_record": False,
            "problem": "the database does not answer",
        }
    reason = decision_log.cannot_record()  # disk full, locks not granted in time: answers would be 503s
    if reason:
        return {
            "backend": decision_log.backend,
            "reachable": True,
            "can_record": False,
            "problem": f"cannot record: {reason}",
        }
    return {"backend": decision_log.backend, "reachable": True, "can_record": True}
