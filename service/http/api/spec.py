"""OpenAPI paths of the JSON API (service/http/api/routes.py), with one profile schema per loaded ruleset."""

from __future__ import annotations

import json
from typing import Any

from ...ruleset.model import Ruleset
from .. import app_context, docschemas
from ..openapi import SpecContext
from .schemas import batch_request_schema, component_name, evaluation_request_schema, profile_schema


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _examples(rulesets: list[Ruleset], default: Ruleset | None, batch: bool) -> dict[str, Any]:
    """Request examples taken from each ruleset's own test cases, so "Try it out" works as is."""
    out: dict[str, Any] = {}
    for rs in rulesets:
        if not rs.tests:
            continue
        profiles = [json.loads(json.dumps(t.profile, default=list)) for t in rs.tests[:3]]
        value: dict[str, Any] = {"ruleset": rs.id}
        if batch:
            value["profiles"] = profiles
        else:
            value.update(profile=profiles[0], explain=False)
        out[rs.id] = {"summary": f"{rs.title}: {rs.tests[0].name}", "value": value}
        if default is not None and rs.id == default.id:
            out[f"{rs.id} (default)"] = {
                "summary": "The same, relying on the default ruleset",
                "value": {k: v for k, v in value.items() if k != "ruleset"},
            }
    return out


def _request_body(ctx: SpecContext, kind: str, description: str, batch: bool) -> dict[str, Any]:
    variants = [_ref(component_name(kind, rs)) for rs in ctx.rulesets]
    schema: dict[str, Any] = {"oneOf": variants} if variants else {"type": "object"}
    content: dict[str, Any] = {"schema": schema}
    examples = _examples(ctx.rulesets, ctx.default, batch)
    if examples:
        content["examples"] = examples
    return {"required": True, "description": description, "content": {"application/json": content}}


def _schemas(ctx: SpecContext) -> None:
    spec = ctx.spec
    spec.components.schema("RulesetList", schema=docschemas.RulesetListSchema)
    spec.components.schema("RulesetDetail", schema=docschemas.RulesetDetailSchema)
    spec.components.schema("Decision", schema=docschemas.DecisionSchema)
    spec.components.schema("BatchItemError", schema=docschemas.BatchItemErrorSchema)
    spec.components.schema(
        "BatchResponse",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["decisions"],
            "properties": {
                "decisions": {
                    "type": "array",
                    "description": "One entry per profile, in order: a decision, or an error for that profile.",
                    "items": {"oneOf": [_ref("Decision"), _ref("BatchItemError")]},
                }
            },
        },
    )
    limit = app_context.settings(ctx.app).batch_limit
    for rs in ctx.rulesets:
        default = ctx.default is not None and ctx.default.id == rs.id
        spec.components.schema(component_name("Profile", rs), schema=profile_schema(rs))
        spec.components.schema(component_name("EvaluationRequest", rs), schema=evaluation_request_schema(rs, default))
        spec.components.schema(component_name("BatchRequest", rs), schema=batch_request_schema(rs, default, limit))


# A credential with the integration role; none while access is open (no access settings at all).
INTEGRATION: list[dict[str, list[str]]] = [{"integrationToken": []}, {}]


def paths(ctx: SpecContext) -> None:
    _schemas(ctx)
    spec = ctx.spec
    spec.components.security_scheme(
        "integrationToken",
        {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A credential with the integration role: a static token whose SHA-256 is in "
                "INTEGRATION_TOKEN_HASHES, or an OIDC access token (JWT) of OIDC_ISSUER whose roles map to it. "
                "Not needed while access is open (none of INTEGRATION_TOKEN_HASHES, CLINICIAN_TOKEN_HASHES, "
                "OIDC_ISSUER set)."
            ),
        },
    )
    ids = [rs.id for rs in ctx.rulesets]
    limit = app_context.settings(ctx.app).batch_limit
    ruleset_param = ctx.path_parameter(
        "ruleset_id", "A ruleset id from GET /v1/rulesets.", {"type": "string", **({"enum": ids} if ids else {})}
    )
    spec.path(
        "/v1/rulesets",
        operations={
            "get": {
                "tags": ["rulesets"],
                "operationId": "listRulesets",
                "summary": "The active rulesets",
                "responses": {"200": ctx.json_response("RulesetList", "Id, version, title, status, sha256 of each.")},
            }
        },
    )
    spec.path(
        "/v1/rulesets/{ruleset_id}",
        operations={
            "get": {
                "tags": ["rulesets"],
                "operationId": "getRuleset",
                "summary": "One ruleset: metadata, inputs (the profile vocabulary), options, rules and invariants",
                "parameters": [ruleset_param],
                "responses": {
                    "200": ctx.json_response("RulesetDetail", "The ruleset as JSON; the ETag is its sha256."),
                    "304": {"description": "Not modified (If-None-Match matched the sha256)."},
                    **ctx.problems(404),
                },
            }
        },
    )
    spec.path(
        "/v1/rulesets/{ruleset_id}/source",
        operations={
            "get": {
                "tags": ["rulesets"],
                "operationId": "getRulesetSource",
                "summary": "The exact ruleset file that was loaded",
                "parameters": [ruleset_param],
                "responses": {
                    "200": {
                        "description": "The YAML file, byte for byte; its SHA-256 is the ruleset's sha256.",
                        "content": {"text/yaml": {"schema": {"type": "string"}}},
                    },
                    "304": {"description": "Not modified (If-None-Match matched the sha256)."},
                    **ctx.problems(404),
                },
            }
        },
    )
    spec.path(
        "/v1/evaluations",
        operations={
            "post": {
                "tags": ["evaluations"],
                "operationId": "evaluate",
                "security": INTEGRATION,
                "summary": "Evaluate one patient profile",
                "description": (
                    "Validates the profile against the ruleset's inputs (nothing is coerced), evaluates it, records "
                    "the decision in the decision log and returns it. `ruleset` may be omitted when exactly one "
                    "production ruleset is loaded."
                ),
                "requestBody": _request_body(ctx, "EvaluationRequest", "The ruleset, profile and `explain`.", False),
                "responses": {
                    "200": ctx.json_response("Decision", "The decision (recorded before it is returned)."),
                    **ctx.problems(400, 401, 403, 404, 413, 415, 422, 503),
                },
            }
        },
    )
    spec.path(
        "/v1/evaluations:batch",
        operations={
            "post": {
                "tags": ["evaluations"],
                "operationId": "evaluateBatch",
                "security": INTEGRATION,
                "summary": "Evaluate many profiles (population audits)",
                "description": (
                    f"Up to {limit} profiles (BATCH_LIMIT). Each profile is its own decision "
                    "with its own decision_id; an invalid profile gives an error entry at its position instead of "
                    "failing the batch."
                ),
                "requestBody": _request_body(ctx, "BatchRequest", "The ruleset, the profiles and `explain`.", True),
                "responses": {
                    "200": ctx.json_response("BatchResponse", "One entry per profile, in order."),
                    **ctx.problems(400, 401, 403, 404, 413, 415, 422, 503),
                },
            }
        },
    )
