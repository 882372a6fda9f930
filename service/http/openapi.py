"""The OpenAPI 3.1 document (GET /openapi.json), assembled from what each blueprint contributes.

Every blueprint documents its own paths, next to its routes, with a function decorated by
`openapi.document(bp)`:

    from . import openapi

    bp = Blueprint("audit", __name__)

    @openapi.document(bp)
    def _paths(ctx: openapi.SpecContext) -> None:
        ctx.spec.path(
            "/v1/evaluations/{decision_id}",
            operations={"get": {
                "tags": ["audit"], "summary": "One recorded decision",
                "parameters": [ctx.path_parameter("decision_id", "The decision's id.")],
                "responses": {"200": ctx.json_response("Decision", "The recorded decision."), **ctx.problems(404)},
            }},
        )

The function runs each time the document is (re)built, with the active rulesets at hand (`ctx.rulesets`),
so schemas derived from ruleset inputs stay current after a reload. Marshmallow schemas may be registered
with `ctx.spec.components.schema(name, schema=...)` or used directly in a `schema` (MarshmallowPlugin).
Shared components: schemas `Problem`, `FieldError`, `Decision` (service/http/docschemas.py) and the problem
responses returned by `ctx.problems(400, 404, 413, 415, 422, 503)`. A contribution applies to every app that
registers the blueprint; tests/http/test_openapi.py fails when a Flask route is missing from the document.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app

from ..ruleset.model import Ruleset
from . import app_context, docschemas
from .errors import PROBLEM

API_VERSION = "1.0.0"
CONTRIBUTIONS = "openapi_contributions"
CACHE = "openapi_cache"

PROBLEM_RESPONSES = {
    400: ("BadRequest", "Malformed JSON (syntax, duplicate keys, NaN) or an empty body."),
    401: ("Unauthorized", "No valid credential (when access is configured); see `WWW-Authenticate`."),
    403: ("Forbidden", "A valid credential without the role this operation needs."),
    404: ("NotFound", "Unknown ruleset or resource."),
    413: ("ContentTooLarge", "The body is larger than MAX_BODY_BYTES."),
    415: ("UnsupportedMediaType", "The body is not sent as application/json."),
    422: ("UnprocessableContent", "Well-formed JSON with invalid fields: every problem is listed in `errors`."),
    429: ("TooManyRequests", "Over a rate limit (evaluations, failed token checks); see `Retry-After`."),
    503: ("ServiceUnavailable", "The decision could not be recorded, so it is not returned; retry later."),
}

DESCRIPTION = """\
Decision support for hair-loss treatment: a patient profile in, candidate treatment options (with
rationale, caveats, evidence and references), excluded options with their reasons, and referrals out.
The rules are declarative, verified ruleset files; each profile schema below is generated from the
inputs of a loaded ruleset. The service suggests options for a clinician to consider; it does not make
treatment decisions.

Errors are RFC 9457 problem details (`application/problem+json`); validation problems list every field
with the values it accepts.
"""

# Listed first so the viewer shows them in this order; contributions may add their own with ctx.spec.tag().
TAGS = (
    ("evaluations", "Evaluate patient profiles against a ruleset."),
    ("rulesets", "The active rulesets: their vocabulary, rules and exact source."),
    ("service", "Health, metrics and this documentation."),
)

PathsFn = Callable[["SpecContext"], None]


@dataclass
class SpecContext:
    """What a contribution needs: the spec being built and the rulesets it describes."""

    spec: APISpec
    app: Flask
    rulesets: list[Ruleset]
    default: Ruleset | None

    def problems(self, *statuses: int) -> dict[str, Any]:
        return {str(s): {"$ref": f"#/components/responses/{PROBLEM_RESPONSES[s][0]}"} for s in statuses}

    @staticmethod
    def json_response(schema: str | dict[str, Any] | type, description: str) -> dict[str, Any]:
        ref = {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else schema
        return {"description": description, "content": {"application/json": {"schema": ref}}}

    @staticmethod
    def path_parameter(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": description,
            "schema": schema or {"type": "string"},
        }


def document(target: Blueprint | Flask) -> Callable[[PathsFn], PathsFn]:
    """Decorator: add the function's paths to the OpenAPI document of every app using `target`."""

    def register(fn: PathsFn) -> PathsFn:
        if isinstance(target, Blueprint):
            target.record_once(lambda state: contributions(state.app).append(fn))
        else:
            contributions(target).append(fn)
        return fn

    return register


def contributions(app: Flask) -> list[PathsFn]:
    return app.extensions.setdefault(CONTRIBUTIONS, [])


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: `/v1/rulesets/<ruleset_id>` -> `/v1/rulesets/{ruleset_id}`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def build(app: Flask) -> dict[str, Any]:
    """The whole document for the app's current rulesets and blueprints."""
    registry = app_context.registry(app)
    actives = registry.all()
    default = registry.default()
    spec = APISpec(
        title="Hair-loss treatment decision support",
        version=API_VERSION,
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={"description": DESCRIPTION},
    )
    for name, description in TAGS:
        spec.tag({"name": name, "description": description})
    spec.components.schema("FieldError", schema=docschemas.FieldErrorSchema)
    spec.components.schema("Problem", schema=docschemas.ProblemSchema)
    for name, description in PROBLEM_RESPONSES.values():
        content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        spec.components.response(name, {"description": description, "content": content})
    ctx = SpecContext(spec, app, [a.ruleset for a in actives], default.ruleset if default else None)
    for fn in contributions(app):
        fn(ctx)
    return _with_rate_limits(spec.to_dict())


def _with_rate_limits(doc: dict[str, Any]) -> dict[str, Any]:
    """Every operation that checks a credential may answer 429 (service/http/access/limits.py): say so.

    CDS Hooks answers errors as OperationOutcome, so its 429 has the content of its other errors.
    """
    for path, operations in doc.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "security" not in operation:
                continue
            responses = operation.setdefault("responses", {})
            if path.startswith("/cds-services"):
                like = responses.get("400", {})
                described = {"description": PROBLEM_RESPONSES[429][1]}
                responses.setdefault(
                    "429", {**described, **({"content": like["content"]} if "content" in like else {})}
                )
            else:
                responses.setdefault("429", {"$ref": "#/components/responses/TooManyRequests"})
    return doc


_build_lock = threading.Lock()


def cached_document(app: Flask) -> bytes:
    """The document as JSON bytes, rebuilt only when the set of active ruleset revisions changes."""
    registry = app_context.registry(app)
    default = registry.default()
    key = (
        tuple((a.ruleset.id, a.ruleset.sha256) for a in registry.all()),
        default.ruleset.id if default else None,
        app_context.settings(app).batch_limit,
    )
    cached = app.extensions.get(CACHE)
    if cached is None or cached[0] != key:
        with _build_lock:
            body = json.dumps(build(app), ensure_ascii=False, indent=1).encode("utf-8")
        cached = (key, body)
        app.extensions[CACHE] = cached
    return cached[1]


bp = Blueprint("openapi", __name__)


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return Response(cached_document(current_app._get_current_object()), mimetype="application/json")


@document(bp)
def _paths(ctx: SpecContext) -> None:
    ctx.spec.path(
        "/openapi.json",
        operations={
            "get": {
                "tags": ["service"],
                "summary": "This OpenAPI 3.1 document",
                "description": "Generated from the marshmallow schemas, themselves built from the loaded rulesets.",
                "operationId": "getOpenAPI",
                "responses": {"200": {"description": "The document.", "content": {"application/json": {}}}},
            }
        },
    )
