"""OpenAPI paths of the auditors' decision-log endpoints (service/http/audit/api.py)."""

from __future__ import annotations

from typing import Any

from ..openapi import SpecContext
from .query import PARAMETERS

AUTH = [{"auditorToken": []}]
PARAMETER_TEXT = {
    "ruleset": "Only decisions of this ruleset id.",
    "option": "Only decisions naming this option (as a candidate, exclusion or referral; see `role`).",
    "role": "With `option`: only where it is a `candidate`, `excluded` or `referral`.",
    "channel": "Only decisions from this channel (`api`, `batch`, `web`, `cds-hooks`).",
    "since": "Evaluated at or after this RFC 3339 time or date (UTC).",
    "until": "Evaluated before this RFC 3339 time or date (UTC).",
    "patient_hash": "The keyed hash of a CDS Hooks patientId (`flask --app service decisions hash-id`).",
    "user_hash": "The keyed hash of a CDS Hooks userId.",
    "hook_instance_hash": "The keyed hash of a CDS Hooks hookInstance.",
    "limit": "Page size (newest first).",
    "cursor": "The `next_cursor` of the previous page; only valid with the same filters.",
    "format": "`json` (default) or `csv` (all matching records; also chosen by `Accept: text/csv`).",
}

RECORD: dict[str, Any] = {
    "type": "object",
    "description": "A decision as recorded: what was asked, what was answered, under which ruleset revision.",
    "properties": {
        "decision_id": {"type": "string", "format": "uuid"},
        "evaluated_at": {"type": "string", "format": "date-time"},
        "channel": {"type": "string"},
        "ruleset": {"type": "object"},
        "profile": {"type": "object"},
        "decision": {"type": "object", "description": "The decision exactly as it was answered."},
        "cards": {"type": "array", "items": {"type": "object"}},
        "feedback": {"type": "array", "items": {"type": "object"}},
        "chain": {
            "type": "object",
            "properties": {"seq": {"type": "integer"}, "prev_hash": {"type": "string"}, "hash": {"type": "string"}},
        },
    },
}


def _unauthorized() -> dict[str, Any]:
    return {
        "description": "No auditor token, or not one of AUDITOR_TOKEN_HASHES.",
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def paths(ctx: SpecContext) -> None:
    spec = ctx.spec
    spec.components.security_scheme(
        "auditorToken",
        {"type": "http", "scheme": "bearer", "description": "An auditor token whose SHA-256 is configured."},
    )
    spec.components.schema("DecisionRecord", RECORD)
    query = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": PARAMETER_TEXT.get(name, ""),
            "schema": {"type": "string"},
        }
        for name in PARAMETERS
    ]
    decision_id = ctx.path_parameter("decision_id", "The `decision_id` of the decision.", {"type": "string"})
    spec.path(
        "/v1/evaluations",
        operations={
            "get": {
                "tags": ["audit"],
                "operationId": "searchDecisions",
                "summary": "Search the decision log (auditors only), newest first, with cursor pagination or CSV",
                "security": AUTH,
                "parameters": query,
                "responses": {
                    "200": {
                        "description": "A page of record summaries (JSON) or every matching record (CSV).",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "items": {"type": "array", "items": {"type": "object"}},
                                        "limit": {"type": "integer"},
                                        "next_cursor": {"type": ["string", "null"]},
                                        "next": {"type": "string"},
                                    },
                                }
                            },
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "401": _unauthorized(),
                    **ctx.problems(400),
                },
            }
        },
    )
    spec.path(
        "/v1/evaluations/{decision_id}",
        operations={
            "get": {
                "tags": ["audit"],
                "operationId": "getDecision",
                "summary": "One recorded decision in full, with its cards, feedback and chain links (auditors only)",
                "security": AUTH,
                "parameters": [decision_id],
                "responses": {
                    "200": ctx.json_response("DecisionRecord", "The record."),
                    "401": _unauthorized(),
                    **ctx.problems(400, 404),  # 400: a decision_id that is not a UUID
                },
            }
        },
    )
    spec.path(
        "/v1/evaluations/{decision_id}/replay",
        operations={
            "post": {
                "tags": ["audit"],
                "operationId": "replayDecision",
                "summary": "Re-evaluate a recorded decision with its stored ruleset revision and the current one",
                "security": AUTH,
                "parameters": [decision_id],
                "responses": {
                    "200": ctx.json_response(
                        {
                            "type": "object",
                            "properties": {
                                "stored_revision": {"type": "object"},
                                "current_revision": {"type": "object"},
                            },
                        },
                        "Each re-evaluation says whether it is identical to the recorded answer, and how not.",
                    ),
                    "401": _unauthorized(),
                    **ctx.problems(400, 404),
                },
            }
        },
    )
