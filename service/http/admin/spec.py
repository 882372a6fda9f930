"""OpenAPI paths of the ruleset lifecycle endpoints (service/http/admin/routes.py)."""

from __future__ import annotations

from typing import Any

from ..errors import PROBLEM
from ..openapi import SpecContext

ADMIN = [{"adminToken": []}]
READERS = [{"auditorToken": []}, {"adminToken": []}]
OBJECT: dict[str, Any] = {"type": "object"}
RULESET_ID = {"name": "ruleset_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _body(description: str, properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {"required": True, "description": description, "content": {"application/json": {"schema": schema}}}


def _ok(ctx: SpecContext, description: str) -> dict[str, Any]:
    return ctx.json_response(OBJECT, description)


def _refused_or_invalid(ctx: SpecContext) -> dict[str, Any]:
    """A 422 is the stored revision's gate report (JSON) or a problem+json listing invalid fields."""
    refused = _ok(ctx, "Stored, but refused by the gate (`gate.problems`, application/json); or invalid fields.")
    problem = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {**refused, "content": {**refused["content"], **problem}}


def paths(ctx: SpecContext) -> None:
    spec = ctx.spec
    spec.tag({"name": "lifecycle", "description": "Publish, stage, activate, roll back and shadow ruleset revisions."})
    spec.components.security_scheme(
        "adminToken", {"type": "http", "scheme": "bearer", "description": "An admin token whose SHA-256 is configured."}
    )
    text = {"type": "string"}
    by = {"type": "string", "description": "Who does it, recorded with the action (with the token's digest prefix)."}
    ref = {"type": ["string", "null"], "description": "The revision's sha256 (or version)."}
    spec.path(
        "/v1/admin/rulesets",
        operations={
            "post": {
                "tags": ["lifecycle"],
                "operationId": "publishRuleset",
                "summary": "Publish a ruleset file set: the activation gate runs, the revision is stored as a draft",
                "security": ADMIN,
                "requestBody": _body(
                    "The file set.",
                    {
                        "file_name": text,
                        "ruleset": text,
                        "tests": text,
                        "fhir": text,
                        "signatures": {"type": "array", "items": text},
                        "by": by,
                    },
                    ["ruleset"],
                ),
                "responses": {
                    "201": _ok(ctx, "Published (new) and passed the gate."),
                    "200": _ok(ctx, "Already published; passed the gate."),
                    "401": {"description": "No valid credential."},
                    "403": {"description": "A valid credential without the admin role."},
                    **ctx.problems(400, 415),
                    "422": _refused_or_invalid(ctx),
                },
            }
        },
    )
    for name, summary, props in (
        ("activate", "Move a revision to a stage (production by default)", {"sha256": ref, "stage": text, "by": by}),
        ("rollback", "Make the previous production revision production again", {"by": by}),
        ("shadow", "Let a testing revision shadow production (null: stop)", {"sha256": ref, "by": by}),
    ):
        operation: dict[str, Any] = {
            "tags": ["lifecycle"],
            "operationId": f"{name}Ruleset",
            "summary": summary,
            "security": ADMIN,
            "parameters": [RULESET_ID],
            "responses": {
                "200": _ok(ctx, "Done."),
                "401": {"description": "No valid credential."},
                "403": {"description": "A valid credential without the admin role."},
                **ctx.problems(404, 422),
                "409": {"description": "Not possible now (e.g. nothing to roll back to)."},
            },
        }
        if name != "rollback":
            operation["requestBody"] = _body("The revision.", props)
        spec.path(f"/v1/admin/rulesets/{{ruleset_id}}/{name}", operations={"post": operation})
    for name, summary in (
        ("status", "Revisions, stages, sign-offs, what each worker serves or refused and why, actions"),
        ("shadow", "Divergences of the shadow revision from production, by kind, with decision ids"),
    ):
        spec.path(
            f"/v1/rulesets/{{ruleset_id}}/{name}",
            operations={
                "get": {
                    "tags": ["lifecycle"],
                    "operationId": f"ruleset{name.capitalize()}",
                    "summary": summary,
                    "security": READERS,
                    "parameters": [RULESET_ID],
                    "responses": {
                        "200": _ok(ctx, summary + "."),
                        "401": {"description": "No valid credential."},
                        "403": {"description": "A valid credential with neither the auditor nor the admin role."},
                        **ctx.problems(404),
                    },
                }
            },
        )
