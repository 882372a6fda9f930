"""Errors as RFC 9457 problem details: every failure a client can cause gets a clear 4xx, never a 500."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from ..decisions import InvalidFeedback, LogError

PROBLEM = "application/problem+json"
log = logging.getLogger(__name__)


def problem(status: int, title: str, detail: str = "", **extra: Any) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return Response(json.dumps(body), status=status, mimetype=PROBLEM)


def field_errors(problems: Any) -> list[dict[str, Any]]:
    """FieldProblems (profile, feedback) as problem+json `errors`: field, message and the allowed values."""
    out = []
    for p in problems:
        item: dict[str, Any] = {"field": p.field, "message": p.message}
        if p.allowed:
            item["allowed"] = list(p.allowed)
        out.append(item)
    return out


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return problem(exc.code or 500, exc.name, exc.description or "")

    @app.errorhandler(LogError)
    def log_unavailable(exc: LogError) -> Response:
        # An answer that cannot be recorded is not given. The reason names no patient data (see decisions.log).
        log.error("decision log unavailable: %s", exc)
        response = problem(
            503,
            "Decision log unavailable",
            "The decision log could not be written or read, so no answer is given. Retry later; "
            "if it persists, check the database (GET /readyz).",
        )
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(InvalidFeedback)
    def invalid_feedback(exc: InvalidFeedback) -> Response:
        return problem(400, "Invalid feedback", "See `errors` for each field.", errors=field_errors(exc.errors))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem(500, "Internal Server Error", "The error was logged; no patient data is included in logs.")
