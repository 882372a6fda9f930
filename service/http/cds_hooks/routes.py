"""CDS Hooks 2.0.1 endpoints: discovery, service calls and feedback (service/cds does the work).

This module only translates HTTP. Every call is authenticated first (bare 401 on failure, whatever the
path); every other error is an OperationOutcome. A call's decision goes through `service.answering` like any
other channel's and is recorded, with its cards, before the cards are returned.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flask import Blueprint, Flask, Response, g, json, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ...answering import NoDefaultRuleset, UnknownRuleset, commit, prepare
from ...cds import hook_bodies, prefetch
from ...cds.auth import AuthFailed
from ...cds.cards import CardMaker
from ...cds.extract import extract, selected_orders
from ...cds.outcome import Issue, OutcomeError, outcome_for, outcome_response
from ...cds.services import Service
from ...cds.setup import channel_from_settings
from ...cds.store import ReplayStoreError
from ...decisions import LogError
from ...engine import TooManyCompletions
from ...errors import ServiceError
from .. import app_context, openapi
from ..body import read_json
from ..errors import log_unexpected
from ..ops import metrics
from ..pages.links import base_url, form_url, ruleset_url, topic_system

log = logging.getLogger(__name__)
bp = Blueprint("cds_hooks", __name__)
CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type"
# CDS Hooks bodies are JSON; FHIR clients send them as application/fhir+json too.
CDS_JSON_TYPES = ("application/json", "application/fhir+json")


def init_app(app: Flask) -> None:
    database = app_context.decision_log(app).engine
    app.extensions[app_context.CDS_CHANNEL] = channel_from_settings(app_context.settings(app), database)
    app.register_blueprint(bp)


def _services() -> dict[str, Service]:
    return app_context.cds_channel().catalog.services(app_context.registry())


# ---- authentication, CORS, errors ---------------------------------------------------------------


PREFIX = "/cds-services"


def _ours() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


@bp.before_app_request
def _preflight_authenticate_route() -> Response | None:
    """Every request under /cds-services, routed or not: preflight, then the JWT, then routing errors.

    App-wide so that unknown paths and wrong methods there are authenticated first and answered with an
    OperationOutcome like everything else of this channel (routing errors never reach a blueprint).
    """
    if not _ours():
        return None
    channel = app_context.cds_channel()
    if request.method == "OPTIONS":
        resp = Response(status=204)
        if channel.allows_origin(request.headers.get("Origin")):
            resp.headers["Access-Control-Allow-Methods"] = CORS_METHODS
            resp.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
            resp.headers["Access-Control-Max-Age"] = "600"
        return resp
    request.max_content_length = channel.max_body
    if channel.verifier is not None:
        try:
            # `aud` is PUBLIC_BASE_URL + path, never the Host header (config.py requires PUBLIC_BASE_URL here).
            audience = app_context.settings().public_base_url + request.path
            g.cds_caller = channel.verifier.verify(request.headers.get("Authorization"), audience)
        except AuthFailed as exc:
            log.info("CDS Hooks call refused (401): %r", str(exc))  # repr: token fields are untrusted text
            _drain(channel.max_body)
            return Response(status=401, headers={"WWW-Authenticate": "Bearer"})
        except ReplayStoreError as exc:
            log.error("CDS Hooks: %s; answering 503", exc)
            return outcome_for(exc)
    error = request.routing_exception
    if isinstance(error, MethodNotAllowed):
        allowed = sorted(m for m in error.valid_methods or () if m not in ("HEAD", "OPTIONS"))
        resp = outcome_response(405, [Issue(f"use {' or '.join(allowed)} here", code="not-supported")])
        resp.headers["Allow"] = ", ".join((*allowed, "OPTIONS"))
        return resp
    if error is not None:
        paths = "/cds-services, /cds-services/{id} or /cds-services/{id}/feedback"
        return outcome_response(404, [Issue(f"not a CDS Hooks path: {paths}", code="not-found")])
    return None


def _drain(limit: int) -> None:
    """Read and drop the body of a call refused before reading it (up to the channel's limit).

    Answering with the body unread makes gunicorn close the connection while the client (nginx) still
    uploads: the reset reaches nginx as an upstream error, and the EHR sees 502 instead of 401 for any body
    larger than nginx's buffer. A body over the limit is not read (the close is then the point).
    """
    length = request.content_length
    if length is not None and length > limit:
        return
    try:
        while request.stream.read(65536):
            pass
    except (HTTPException, OSError):  # over the limit while streaming, malformed, or the client went away
        pass


@bp.after_app_request
def _cors(resp: Response) -> Response:
    if not _ours():
        return resp
    allowed = app_context.cds_channel().allows_origin(request.headers.get("Origin"))
    if allowed:
        resp.headers["Access-Control-Allow-Origin"] = allowed
    resp.vary.add("Origin")
    return resp


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Response:
    if exc.status >= 500:
        log.error("CDS Hooks: %s (%s); answering %d", exc.title, exc.log_text, exc.status)
    return outcome_for(exc)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    code = {413: "too-costly", 404: "not-found", 405: "not-supported"}.get(exc.code or 500, "processing")
    return outcome_response(exc.code or 500, [Issue(exc.description or exc.name, code=code)])


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    log_unexpected(log, "CDS Hooks: unhandled", exc)
    return outcome_response(500, [Issue("Internal error; it was logged without patient data.", code="exception")])


def _cds_json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")


def _service(service_id: str) -> Service:
    services = _services()
    if service_id not in services:
        known = ", ".join(sorted(services)) or "none"
        raise OutcomeError(404, [Issue(f"no CDS service `{service_id}` (offered: {known})", code="not-found")])
    return services[service_id]


# ---- endpoints -------------------------------------------------------------------------------------


@bp.get("/cds-services", strict_slashes=False)
def discovery() -> Response:
    return _cds_json({"services": [s.discovery() for s in _services().values()]})


@bp.post("/cds-services/<service_id>", strict_slashes=False)
def call(service_id: str) -> Response:
    service = _service(service_id)
    body = hook_bodies.hook_request(read_json(CDS_JSON_TYPES), service.hook)
    rs, context = service.ruleset, body["context"]
    data, _keys = prefetch.gather(service.mapping, body, app_context.cds_channel().fhir_timeout)
    extraction = extract(service.mapping, rs, data, dt.datetime.now(dt.UTC).date())
    maker = CardMaker(
        rs,
        extraction,
        form_url(rs, extraction.profile),
        ruleset_url(rs.id),
        topic_system(),
        population=tuple(f for f in [service.mapping.patient.sex_field] if f),
        service_id=service.id,
        patient_id=context["patientId"],
        orderable=service.mapping.orderable(),
        smart_link=f"{base_url()}/smart/{rs.id}/launch" if app_context.settings().smart_client_id else "",
    )
    if service.hook == "patient-view" and not extraction.relevant:
        # No problem or medication of the topic in the chart: nothing to say (no alert fatigue), no decision.
        _log_call(service, body, [], decided=False)
        return _cds_json({"cards": []})
    missing = service.missing_numbers(extraction.profile)
    if missing:
        cards = maker.cannot_decide(missing)
        _log_call(service, body, cards, decided=False)
        return _cds_json({"cards": cards})
    registry = app_context.registry()
    try:
        prepared = prepare(registry, rs.id, extraction.profile, partial=True, partly_known=extraction.partly_known)
    except TooManyCompletions:
        cards = maker.cannot_decide([f for f in rs.inputs if rs.inputs[f].required and f not in extraction.profile])
        _log_call(service, body, cards, decided=False)
        return _cds_json({"cards": cards})
    except (UnknownRuleset, NoDefaultRuleset):
        raise OutcomeError(
            503, [Issue("the ruleset behind this service was just unloaded; retry", code="transient")]
        ) from None
    if service.hook == "patient-view":
        cards = maker.patient_view(prepared.decision)
    else:
        cards = maker.order_select(prepared.decision, selected_orders(service.mapping, context, data))
    identifiers = {"patientId": context["patientId"], "userId": context["userId"], "hookInstance": body["hookInstance"]}
    # A failed recording raises DecisionNotRecorded: the 503 OperationOutcome of _service_error, no cards.
    commit(
        prepared,
        app_context.recorder(),
        channel="cds-hooks",
        identifiers=identifiers,
        cards=maker.for_the_log(cards),
    )
    metrics.observe_decision(prepared.decision, "cds-hooks")
    _log_call(service, body, cards, decided=True)
    return _cds_json({"cards": cards})


@bp.post("/cds-services/<service_id>/feedback", strict_slashes=False)
def feedback(service_id: str) -> Response:
    _service(service_id)
    items = hook_bodies.feedback(read_json(CDS_JSON_TYPES))
    recorder = app_context.recorder()
    if recorder is None:
        raise OutcomeError(503, [Issue("feedback cannot be stored: no decision log is configured", code="transient")])
    try:
        result = recorder.record_feedback(service_id, items)
    except LogError as exc:
        log_unexpected(log, "CDS Hooks: feedback could not be stored:", exc)
        raise OutcomeError(503, [Issue("the feedback could not be stored; retry", code="transient")]) from None
    log.info("CDS Hooks feedback: service %s, %d stored, %d repeated", service_id, result.stored, result.repeated)
    return _cds_json({})


def _log_call(service: Service, body: dict[str, Any], cards: list[dict[str, Any]], decided: bool) -> None:
    caller = g.get("cds_caller")
    log.info(
        "CDS Hooks call: service %s, ruleset %s %s, issuer %s, hookInstance %s, decided %s, cards %s",
        service.id,
        service.ruleset.id,
        service.ruleset.version,
        caller.iss if caller else "-",
        body["hookInstance"],
        decided,
        ",".join(f"{c['indicator']}:{c['uuid']}" for c in cards) or "none",
    )


# ---- OpenAPI ---------------------------------------------------------------------------------------

# The CDS Hooks 2.0.1 request bodies as service/cds/hook_bodies.py reads them, so a client (or a fuzzer)
# can build a valid call from the document alone. FHIR resources inside stay open objects.
_REFERENCE = {"type": "string", "minLength": 1, "description": "A FHIR reference such as `Practitioner/123`."}
_FHIR_ID = {"type": "string", "pattern": r"^[A-Za-z0-9\-.]{1,64}$", "description": "A FHIR id."}
_USER_TYPES = sorted({t for types in hook_bodies.USER_TYPES.values() for t in types})
_USER = {
    **_REFERENCE,
    "pattern": rf"^({'|'.join(_USER_TYPES)})/[A-Za-z0-9\-.]{{1,64}}$",
    "description": "The user: a Practitioner or PractitionerRole reference (patient-view also Patient, RelatedPerson).",
}
_TEXT = {"type": "string", "minLength": 1}
_FHIR_OBJECT = {"type": "object", "description": "A FHIR resource or Bundle (as the EHR sends it)."}
HOOK_REQUEST: dict[str, Any] = {
    "type": "object",
    "description": "A CDS Hooks 2.0.1 call: `context` by hook (patient-view or order-select).",
    "required": ["hook", "hookInstance", "context"],
    "dependentRequired": {"fhirAuthorization": ["fhirServer"]},
    "properties": {
        "hook": {"type": "string", "enum": ["patient-view", "order-select"], "description": "The service's hook."},
        "hookInstance": {"type": "string", "minLength": 1, "description": "A UUID the EHR makes per call."},
        "fhirServer": {"type": "string", "format": "uri", "description": "Required with fhirAuthorization."},
        "fhirAuthorization": {
            "type": "object",
            "required": ["access_token", "token_type", "expires_in", "scope", "subject"],
            "properties": {
                "access_token": _TEXT,
                "token_type": {"type": "string", "enum": ["Bearer"]},
                "expires_in": {"type": "integer", "minimum": 0},
                "scope": _TEXT,
                "subject": _TEXT,
            },
        },
        "context": {
            "type": "object",
            "required": ["userId", "patientId"],
            "properties": {
                "userId": _USER,
                "patientId": _FHIR_ID,
                "encounterId": _FHIR_ID,
                "selections": {
                    "type": "array",
                    "items": _REFERENCE,
                    "minItems": 1,
                    "description": "order-select only: the selected entries of draftOrders.",
                },
                "draftOrders": {**_FHIR_OBJECT, "description": "order-select only: a Bundle of the draft orders."},
            },
        },
        "prefetch": {
            "type": "object",
            "additionalProperties": {"oneOf": [_FHIR_OBJECT, {"type": "null"}]},
            "description": "The prefetch templates of discovery, filled in (null: not available).",
        },
    },
}
FEEDBACK: dict[str, Any] = {
    "type": "object",
    "required": ["feedback"],
    "properties": {
        "feedback": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["card", "outcome", "outcomeTimestamp"],
                "if": {"properties": {"outcome": {"const": "accepted"}}, "required": ["outcome"]},
                "then": {"required": ["acceptedSuggestions"]},
                "properties": {
                    "card": {"type": "string", "description": "The `uuid` of a card this service returned."},
                    "outcome": {"type": "string", "enum": ["accepted", "overridden"]},
                    "outcomeTimestamp": {"type": "string", "format": "date-time"},
                    "acceptedSuggestions": {
                        "type": "array",
                        "items": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
                        "description": "Required when the outcome is `accepted`.",
                    },
                    "overrideReason": {
                        "type": "object",
                        "properties": {
                            "reason": {
                                "type": "object",
                                "properties": {"code": {"type": "string"}, "system": {"type": "string"}},
                            },
                            "userComment": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}


@openapi.document(bp)
def _paths(ctx: openapi.SpecContext) -> None:
    outcome = {
        "description": "An OperationOutcome naming the problem.",
        "content": {"application/fhir+json": {"schema": {"type": "object", "required": ["resourceType", "issue"]}}},
    }
    unauthorized = {"description": "The JWT is missing or was refused (no detail is given)."}
    obj = {"type": "object"}
    hook_call = {"$ref": "#/components/schemas/CdsHookRequest"}
    feedback_body = {"$ref": "#/components/schemas/CdsFeedback"}
    ctx.spec.components.schema("CdsHookRequest", HOOK_REQUEST)
    ctx.spec.components.schema("CdsFeedback", FEEDBACK)
    service_param = ctx.path_parameter("service_id", "A service id from discovery.")
    security = [{"cdsHooksJwt": []}]
    ctx.spec.components.security_scheme(
        "cdsHooksJwt",
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT signed ES384/RS384 by a trusted EHR, aud = URL called",
        },
    )
    ctx.spec.path(
        "/cds-services",
        operations={
            "get": {
                "tags": ["cds-hooks"],
                "summary": "CDS Hooks discovery",
                "operationId": "cdsDiscovery",
                "security": security,
                "responses": {"200": ctx.json_response(obj, "`{services: [...]}`"), "401": unauthorized},
            }
        },
    )
    ctx.spec.path(
        "/cds-services/{service_id}",
        operations={
            "post": {
                "tags": ["cds-hooks"],
                "summary": "Call a CDS service (hook request in, cards out)",
                "operationId": "cdsCall",
                "security": security,
                "parameters": [service_param],
                "requestBody": {"required": True, "content": {t: {"schema": hook_call} for t in CDS_JSON_TYPES}},
                "responses": {
                    "200": ctx.json_response(obj, "`{cards: [...]}`"),
                    "400": outcome,
                    "401": unauthorized,
                    "404": outcome,
                    "412": outcome,
                    "415": outcome,
                    "503": outcome,
                },
            }
        },
    )
    ctx.spec.path(
        "/cds-services/{service_id}/feedback",
        operations={
            "post": {
                "tags": ["cds-hooks"],
                "summary": "Report what the clinician did with cards",
                "operationId": "cdsFeedback",
                "security": security,
                "parameters": [service_param],
                "requestBody": {
                    "required": True,
                    "content": {t: {"schema": feedback_body} for t in CDS_JSON_TYPES},
                },
                "responses": {
                    "200": ctx.json_response(obj, "Stored (repeated reports are stored once)."),
                    "400": outcome,
                    "401": unauthorized,
                    "404": outcome,
                    "503": outcome,
                },
            }
        },
    )
