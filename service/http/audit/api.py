"""The decision log for auditors: one record, its replay, filtered lists and a CSV export.

Every route here requires an auditor token (auditors.py). The POST /v1/evaluations that answers
clients lives in another blueprint on the same path; this one only reads.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from ...decisions import DecisionLog, queries
from ...decisions.replay import replay as replay_decision
from .. import app_context, openapi
from ..errors import problem
from . import auditors
from . import spec as audit_spec
from .query import BadQuery, ParamProblem, parse

bp = Blueprint("audit", __name__, url_prefix="/v1/evaluations")
openapi.document(bp)(audit_spec.paths)
bp.before_request(auditors.require_auditor)


def _decision_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadQuery([ParamProblem("decision_id", "a decision id is a UUID, as returned in `decision_id`")]) from None


def _not_found(decision_id: str) -> Response:
    return problem(404, "Not Found", f"no decision `{decision_id}` in the decision log")


@bp.get("")
def search() -> ResponseReturnValue:
    wants_csv = request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"
    query = parse(request.args, app_context.decision_log(), wants_csv)
    if query.format == "csv":
        return Response(
            _csv(app_context.decision_log(), query.filters),
            mimetype="text/csv",
            headers={"Content-Disposition": 'attachment; filename="decisions.csv"'},
        )
    page = queries.search(app_context.decision_log(), query.filters, limit=query.limit, cursor=query.cursor)
    body = {"items": page.items, "limit": query.limit, "next_cursor": page.next_cursor}
    if page.next_cursor:
        args = {k: v for k, v in request.args.items() if k != "cursor"}
        body["next"] = url_for("audit.search", **args, cursor=page.next_cursor)
    return jsonify(body)


def _csv(log: DecisionLog, filters: queries.Filters) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(queries.CSV_HEADER)
    for n, row in enumerate(queries.iterate(log, filters), 1):
        writer.writerow(queries.csv_row(row))
        if n % 200 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@bp.get("/<decision_id>")
def record(decision_id: str) -> ResponseReturnValue:
    decision_id = _decision_id(decision_id)
    found = queries.get(app_context.decision_log(), decision_id)
    return jsonify(found) if found is not None else _not_found(decision_id)


@bp.post("/<decision_id>/replay")
def replay(decision_id: str) -> ResponseReturnValue:
    decision_id = _decision_id(decision_id)
    report = replay_decision(app_context.decision_log(), app_context.registry(), decision_id)
    return jsonify(report) if report is not None else _not_found(decision_id)
