"""The JSON API: rulesets and evaluations under /v1.

This module only translates. The request envelope is checked by schemas.py and the profile, once, by its
ruleset's validator (service/ruleset/validator.py), so every problem is answered at once with field-level
messages; the validated profile then goes through `service.answering.make_decision` (channel "api" or "batch"),
stamped and recorded like any other decision.
A decision is returned only after the decision log (when configured) has stored it: if storing fails the
answer is 503, never an unrecorded 200.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from flask import Blueprint, Response, request

from ...answering import (
    InvalidProfile,
    NoDefaultRuleset,
    Prepared,
    UnknownRuleset,
    commit_many,
    make_answer,
    pick_ruleset,
    prepare,
)
from ...engine.answer import Decision, encode
from ...engine.views import compact_json
from ...errors import problem_type
from ...registry import Active
from ...ruleset.errors import suggest
from .. import app_context, openapi
from ..access import roles
from ..body import read_json
from ..errors import ApiProblem, problem_body, validation_problem
from ..ops import metrics
from . import spec as api_spec
from .ruleset_json import ruleset_json
from .schemas import BatchEnvelope, EvaluationEnvelope
from .validation import check_profile, envelope_errors, field_error, problem_errors

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__)
# Bounded work per batch: explanations (tens of kB each) only for small batches, and at most this many
# problems described over all the batch's invalid profiles (the others are counted, `errorsOmitted`).
BATCH_EXPLAIN_LIMIT = 10
BATCH_PROBLEMS = 100
openapi.document(bp)(api_spec.paths)


def json_response(body: Any, status: int = 200) -> Response:
    # Keys keep the engine's order (Flask's jsonify would sort them). ASCII with \u escapes: the same JSON,
    # and the encoder's fast path (decisions carry tens of kilobytes of evidence text).
    return Response(json.dumps(body, separators=(",", ":")), status, mimetype="application/json")


def _unknown_ruleset(ruleset_id: str, known: list[str], in_body: bool) -> ApiProblem:
    hint = suggest(ruleset_id, known) if known else ""
    message = f"there is no active ruleset `{ruleset_id}`{hint}; loaded: {', '.join(known) or 'none'}"
    extra: dict[str, Any] = {"ruleset": ruleset_id, "allowed": known}
    if in_body:
        extra["errors"] = [field_error(["ruleset"], message, allowed=known)]
    return ApiProblem(404, "unknown-ruleset", "Unknown ruleset", message[0].upper() + message[1:] + ".", **extra)


def _active(ruleset_id: str) -> Active:
    active = app_context.registry().get(ruleset_id)
    if active is None:
        raise _unknown_ruleset(ruleset_id, [a.ruleset.id for a in app_context.registry().all()], in_body=False)
    return active


def _pick(envelope: dict[str, Any], errors: list[dict[str, Any]]) -> Active | None:
    """The ruleset a request names (404 if unknown) or the default; None if it cannot be told."""
    if any(e["field"] == "ruleset" for e in errors):
        return None
    try:
        return pick_ruleset(app_context.registry(), envelope.get("ruleset"))
    except UnknownRuleset as exc:
        raise _unknown_ruleset(exc.ruleset_id, exc.known, in_body=True) from None
    except NoDefaultRuleset as exc:
        message = (
            "`ruleset` is required: the default is used only when exactly one production ruleset is loaded; "
            f"loaded: {', '.join(exc.known) or 'none'}"
        )
        errors.append(field_error(["ruleset"], message, allowed=exc.known))
        return None


def _decide(ruleset_id: str | None, profile: Any, explain: bool, channel: str, view: str) -> bytes:
    """The decision, recorded (in full) and counted, as JSON bytes in the requested view: for `full`, the
    very bytes the log stored and hashed; for `default`, the compact view of them, encoded apart."""
    # A failed recording raises DecisionNotRecorded (503), which errors.py renders like any other error.
    decision, body = make_answer(
        app_context.registry(),
        ruleset_id,
        profile,
        channel=channel,
        explain=explain,
        recorder=app_context.recorder(),
    )
    metrics.observe_decision(decision, channel)
    return _in_view(decision, body, view)


def _in_view(decision: Decision, full: bytes, view: str) -> bytes:
    """What a client receives: the recorded bytes when it asks for the full view, else the compact view."""
    if view == "full":
        return full
    return orjson.dumps(compact_json(orjson.loads(full)))  # = encode(in_view(decision, view)), cheaper


def _rejected(exc: InvalidProfile, prefix: list[str | int]) -> list[dict[str, Any]]:
    # The ruleset was reloaded between the check and the decision, and the new revision refuses the profile.
    active = app_context.registry().get(exc.ruleset_id) if exc.ruleset_id else None
    if active is None:
        return [field_error(prefix, e.message, allowed=list(e.allowed)) for e in exc.errors]
    return problem_errors(active.ruleset, exc.problems, prefix)


@bp.get("/v1/rulesets")
def list_rulesets() -> Response:
    return json_response({"rulesets": [a.ruleset.summary for a in app_context.registry().all()]})


@bp.get("/v1/rulesets/<ruleset_id>")
def get_ruleset(ruleset_id: str) -> Response:
    active = _active(ruleset_id)
    resp = json_response(ruleset_json(active))
    resp.set_etag(active.ruleset.sha256)
    resp.headers["Cache-Control"] = "no-cache"
    return resp.make_conditional(request)


@bp.get("/v1/rulesets/<ruleset_id>/source")
def get_ruleset_source(ruleset_id: str) -> Response:
    """The exact bytes that were loaded (their SHA-256 is the ruleset's `sha256`)."""
    rs = _active(ruleset_id).ruleset
    resp = Response(rs.source_text.encode("utf-8"), mimetype="text/yaml")
    resp.headers["Content-Disposition"] = f'inline; filename="{rs.id}.yaml"'
    resp.headers["Cache-Control"] = "no-cache"
    resp.set_etag(rs.sha256)
    return resp.make_conditional(request)


@bp.post("/v1/evaluations")
@roles.require_role("integration")
def evaluate() -> Response:
    data = read_json()
    envelope, errors = envelope_errors(EvaluationEnvelope, data)
    active = _pick(envelope, errors)
    check = None
    if active is not None and isinstance(data, dict) and data.get("profile") is not None:
        check, problems = check_profile(active.ruleset, data["profile"], ["profile"])
        errors += problems
    if errors:
        metrics.observe_invalid("api")
        raise validation_problem(errors, omitted=check.omitted if check is not None else 0)
    assert active is not None and check is not None
    try:
        decision = _decide(envelope.get("ruleset"), check, envelope["explain"], "api", envelope["view"])
    except InvalidProfile as exc:
        raise validation_problem(_rejected(exc, ["profile"])) from None
    except UnknownRuleset as exc:  # unloaded between the check and the decision
        raise _unknown_ruleset(exc.ruleset_id, exc.known, in_body=True) from None
    return Response(decision, 200, mimetype="application/json")


@bp.post("/v1/evaluations:batch")
@roles.require_role("integration")
def evaluate_batch() -> Response:
    data = read_json()
    envelope, errors = envelope_errors(BatchEnvelope, data)
    limit = app_context.settings().batch_limit
    profiles = envelope.get("profiles")
    if isinstance(profiles, list) and not 1 <= len(profiles) <= limit:
        message = f"`profiles` must hold from 1 to {limit} profiles, not {len(profiles)} (BATCH_LIMIT)"
        errors.append(field_error(["profiles"], message, minimum=1, maximum=limit))
    elif isinstance(profiles, list) and envelope.get("explain") and len(profiles) > BATCH_EXPLAIN_LIMIT:
        message = (
            f"`explain` is true only for batches of at most {BATCH_EXPLAIN_LIMIT} profiles, not {len(profiles)}: "
            "an explanation is large; ask for the ones you need in smaller batches or one by one"
        )
        errors.append(field_error(["explain"], message, maximum=BATCH_EXPLAIN_LIMIT))
    active = _pick(envelope, errors)
    if errors:
        metrics.observe_invalid("batch")
        raise validation_problem(errors)
    assert active is not None and isinstance(profiles, list)
    registry, explain, view = app_context.registry(), envelope["explain"], envelope["view"]
    ref = envelope.get("ruleset") or active.ruleset.id  # a testing revision stays the one named
    answers: list[bytes] = []  # each one JSON document, in the view asked for
    decided: list[tuple[Prepared, bytes]] = []
    budget = BATCH_PROBLEMS
    for index, profile in enumerate(profiles):
        check, problems = check_profile(active.ruleset, profile, ["profiles", index], describe=budget)
        if not problems:
            try:
                prepared = prepare(registry, ref, check, explain=explain)
                decided.append((prepared, encode(prepared.decision)))
                answers.append(_in_view(prepared.decision, decided[-1][1], view))
                continue
            except InvalidProfile as exc:
                problems = _rejected(exc, ["profiles", index])
            except UnknownRuleset as exc:  # unloaded between the check and the decision
                raise _unknown_ruleset(exc.ruleset_id, exc.known, in_body=True) from None
        metrics.observe_invalid("batch")
        omitted = check.omitted + max(len(problems) - budget, 0)
        problems, budget = problems[:budget], max(budget - len(problems), 0)
        detail = f"{len(problems) + omitted} problem(s) in profile {index}: " + "; ".join(
            p["message"] for p in problems[:3]
        )
        extra: dict[str, Any] = {"errorsOmitted": omitted} if omitted else {}
        error = problem_body(422, "Invalid profile", detail, problem_type("validation-error"), errors=problems, **extra)
        answers.append(orjson.dumps({"index": index, "error": error}))
    # One append for the whole batch; a failed recording is the 503 of DecisionNotRecorded (errors.py).
    for decision in commit_many(decided, app_context.recorder(), channel="batch"):
        metrics.observe_decision(decision, "batch")
    return Response(b'{"decisions":[' + b",".join(answers) + b"]}", 200, mimetype="application/json")
