"""Errors as RFC 9457 problem details: every failure a client can cause gets a clear 4xx, never a 500.

Handlers raise a `service.errors.ServiceError` (`ApiProblem` when the problem is built on the spot, or a
werkzeug HTTPException) and this module turns it into an `application/problem+json` response, so every
blueprint answers errors in one shape: this is the problem+json renderer of the error taxonomy. Field-level problems
go in an `errors` list of `{field, pointer, message, allowed?, minimum?, maximum?}` objects, so an
integration can show each message next to the field it concerns.
"""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from flask import Flask, Response, current_app
from werkzeug.exceptions import HTTPException

from ..errors import ServiceError

PROBLEM = "application/problem+json"
log = logging.getLogger(__name__)


def problem_body(status: int, title: str, detail: str = "", type_: str = "about:blank", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


def problem(status: int, title: str, detail: str = "", **extra: Any) -> Response:
    """A problem+json response; `type_` in `extra` sets the problem type (default about:blank)."""
    return Response(json.dumps(problem_body(status, title, detail, **extra)), status=status, mimetype=PROBLEM)


def problem_document(exc: ServiceError) -> dict[str, Any]:
    """The problem+json body of an error: type, title, status, detail, its field problems and extra members."""
    extra = dict(exc.extra)
    if exc.field_problems and "errors" not in extra:
        extra["errors"] = field_errors(exc.field_problems)
    return problem_body(exc.status, exc.title, exc.detail, exc.problem_type, **extra)


def problem_response(exc: ServiceError) -> Response:
    resp = Response(json.dumps(problem_document(exc)), status=exc.status, mimetype=PROBLEM)
    resp.headers.update(exc.headers)
    return resp


class ApiProblem(ServiceError):
    """A problem built where it is found (its status, type, title and members given on the spot)."""

    outcome_code = "structure"  # on the CDS Hooks channel these come from reading the request body

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str = "",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.public_detail = detail
        self._headers = headers or {}
        self._extra = extra

    @property
    def extra(self) -> dict[str, Any]:
        return self._extra

    @property
    def headers(self) -> dict[str, str]:
        return self._headers

    @property
    def body(self) -> dict[str, Any]:
        return problem_document(self)

    def response(self) -> Response:
        return problem_response(self)


def validation_problem(errors: list[dict[str, Any]], title: str = "Invalid request", omitted: int = 0) -> ApiProblem:
    """422 listing the field problems at once, so one edit fixes the whole request.

    A profile's validator describes its first problems only (MAX_PROBLEMS); `omitted` counts the others,
    which the body reports as `errorsOmitted`, so a hostile body costs little and answers little.
    """
    count = len(errors) + omitted
    summary = "; ".join(e["message"] for e in errors[:5]) + ("; ..." if count > 5 else "")
    detail = f"{count} problem{'s' if count != 1 else ''}: {summary}"
    if omitted:
        detail += f" (the first {len(errors)} are listed)"
        return ApiProblem(422, "validation-error", title, detail, errors=errors, errorsOmitted=omitted)
    return ApiProblem(422, "validation-error", title, detail, errors=errors)


# Details for the HTTP-level errors, in words an integrator can act on.
_DETAILS = {
    404: "There is no such resource; /openapi.json lists every endpoint.",
    405: "This endpoint does not accept that method; the Allow header lists the ones it does.",
}


def _http_problem(exc: HTTPException) -> Response:
    status = exc.code or 500
    detail = _DETAILS.get(status, exc.description or "")
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        detail = f"The request body is larger than the limit of {limit} bytes (MAX_BODY_BYTES)."
    title = "Content Too Large" if status == 413 else exc.name  # RFC 9110's name for 413
    resp = problem(status, title, detail)
    for name, value in exc.get_headers():  # keeps Allow (405) and similar headers werkzeug computed
        if name.lower() != "content-type":
            resp.headers[name] = value
    return resp


def log_unexpected(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """Log an unexpected error as its type and stack, never its message (nor its causes' messages).

    Messages of database, engine and FHIR-reading errors can quote the patient data they choked on
    (`unhashable type`, a value in a KeyError, a SQL parameter), and logs are kept and read more widely.
    """
    stack = "".join(traceback.format_tb(exc.__traceback__))
    logger.error("%s %s\n%s", what, type(exc).__name__, stack)


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
    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> Response:
        if exc.status >= 500:
            # The message names no patient data: the log's errors say so (decisions.log), and a recording
            # failure carries only the type of its cause.
            log.error("%s: %s", exc.title.lower(), exc.log_text)
        return problem_response(exc)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _http_problem(exc)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log_unexpected(log, "unhandled", exc)
        return problem(500, "Internal Server Error", "The error was logged; no patient data is included in logs.")
