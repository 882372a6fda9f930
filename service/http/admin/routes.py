"""Ruleset lifecycle over HTTP: publish, activate, roll back (admin token) and status (auditor or admin).

Access goes through the roles (service/http/access/roles.py), as on every other channel: the admin
blueprint is guarded by `role_guard("admin")` (a static token whose digest is in ADMIN_TOKEN_HASHES, or an
OIDC bearer JWT mapped to `admin`), the read-only status views by `role_guard("auditor", "admin")`. 401
without a valid credential, 403 for one without the role. The actor recorded with each action is the
token's digest prefix or the JWT's subject (and the `by` name the request gives, if any), so the actions
chain says who did what. This module only translates; the
lifecycle itself is service/lifecycle, whose refusals (LifecycleError) are ServiceErrors rendered as
problem+json by the app's one renderer.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, g, request

from ...lifecycle import STAGES, FileSet
from .. import app_context, openapi
from ..access import roles
from ..api.routes import json_response
from ..api.validation import field_error
from ..body import read_json
from ..errors import validation_problem
from . import spec as admin_spec

bp = Blueprint("admin", __name__)
bp.before_request(roles.role_guard("admin"))  # before the body is read
readers = Blueprint("lifecycle_readers", __name__)
readers.before_request(roles.role_guard("auditor", "admin"))
openapi.document(bp)(admin_spec.paths)
NAME = re.compile(r"^[\w .,'()@-]{1,100}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}\.ya?ml$")


def _admin() -> str:
    """Who the (already checked) admin credential is: the static token's digest prefix, or the JWT subject."""
    principal = g.principal
    return f"admin {principal.digest[:12]}" if principal.digest else f"admin {principal.subject}"


def _actor(admin: str, body: Any) -> str:
    """Who did it: the admin token's digest prefix, with the request's `by` name if it gives one."""
    by = body.get("by") if isinstance(body, dict) else None
    if by is not None and not (isinstance(by, str) and NAME.match(by)):
        raise validation_problem(
            [field_error(["by"], "`by` must be a name of 1 to 100 letters, digits or . , ' ( ) @ -")]
        )
    return f"{by} ({admin})" if by else admin


def _text(body: dict[str, Any], key: str, required: bool, errors: list[dict[str, Any]]) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            errors.append(field_error([key], f"`{key}` is required: the file's text"))
        return None
    if not isinstance(value, str):
        errors.append(field_error([key], f"`{key}` must be the file's text (a string)"))
        return None
    return value


@bp.post("/v1/admin/rulesets")
def publish() -> Response:
    """Publish a file set (ruleset, tests, FHIR mapping, sign-offs): the gate runs, the revision is stored."""
    admin = _admin()
    body = read_json()
    actor = _actor(admin, body)
    if not isinstance(body, dict):
        raise validation_problem([field_error([], "the body must be a JSON object with `ruleset` (the file's text)")])
    errors: list[dict[str, Any]] = []
    source = _text(body, "ruleset", True, errors)
    tests = _text(body, "tests", False, errors)
    fhir = _text(body, "fhir", False, errors)
    file_name = body.get("file_name", "ruleset.yaml")
    if not isinstance(file_name, str) or not FILE_NAME.match(file_name):
        errors.append(field_error(["file_name"], "`file_name` must be a plain file name ending in .yaml"))
    signatures = body.get("signatures", [])
    if not isinstance(signatures, list) or not all(isinstance(s, str) and len(s) < 20_000 for s in signatures):
        errors.append(field_error(["signatures"], "`signatures` must be a list of compact JWS strings"))
    if errors:
        raise validation_problem(errors)
    files = FileSet(file_name, source or "", tests, fhir, tuple(signatures))
    revision, gate, new = app_context.lifecycle().publish(files, actor)
    answer = {**revision.summary(), "gate": gate.as_dict(), "new": new}
    return json_response(answer, 201 if new and gate.ok else 200 if gate.ok else 422)


@bp.post("/v1/admin/rulesets/<ruleset_id>/activate")
def activate(ruleset_id: str) -> Response:
    """Move a revision (`sha256` or `version`) to a stage, production by default."""
    admin = _admin()
    body = read_json()
    actor = _actor(admin, body)
    if not isinstance(body, dict):
        body = {}
    ref = body.get("sha256") or body.get("version")
    stage = body.get("stage", "production")
    errors = []
    if not isinstance(ref, str) or not 0 < len(ref) <= 100:
        errors.append(field_error(["sha256"], "`sha256` (or `version`) names the revision, as GET /v1/rulesets shows"))
    if stage not in STAGES:
        errors.append(field_error(["stage"], f"`stage` must be one of {', '.join(STAGES)}", allowed=list(STAGES)))
    if errors:
        raise validation_problem(errors)
    revision = app_context.lifecycle().activate(ruleset_id, ref, actor, stage)
    return json_response(revision.summary())


@bp.post("/v1/admin/rulesets/<ruleset_id>/rollback")
def rollback(ruleset_id: str) -> Response:
    admin = _admin()
    actor = _actor(admin, read_json() if request.content_length else {})
    return json_response(app_context.lifecycle().rollback(ruleset_id, actor).summary())


@readers.get("/v1/rulesets/<ruleset_id>/status")
def status(ruleset_id: str) -> Response:
    """Which revision is production, what each worker serves and refused (and why), sign-offs, actions."""
    return json_response(app_context.lifecycle().status(ruleset_id))


@bp.post("/v1/admin/rulesets/<ruleset_id>/shadow")
def shadow(ruleset_id: str) -> Response:
    """Let a testing revision (`sha256` or `version`) shadow production; `{"sha256": null}` stops it."""
    admin = _admin()
    body = read_json()
    actor = _actor(admin, body)
    ref = body.get("sha256", body.get("version")) if isinstance(body, dict) else None
    if ref is not None and not (isinstance(ref, str) and 0 < len(ref) <= 100):
        raise validation_problem([field_error(["sha256"], "`sha256` names a testing revision, or is null to stop")])
    sha = app_context.lifecycle().set_shadow(ruleset_id, ref, actor)
    return json_response({"ruleset_id": ruleset_id, "shadow": sha})


@readers.get("/v1/rulesets/<ruleset_id>/shadow")
def shadow_report(ruleset_id: str) -> Response:
    """Divergences of the shadow revision from production, by kind, with decision ids (auditor or admin)."""
    return json_response(app_context.lifecycle().store.divergences(ruleset_id))
