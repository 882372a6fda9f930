"""FHIR OperationOutcome bodies for the CDS Hooks endpoints' errors (CDS Hooks 3.0 "Returning OperationOutcome").

This is the OperationOutcome renderer of the error taxonomy (service/errors.py): `outcome_for` turns any
ServiceError into the channel's format. EHRs log these rather than show them, so `diagnostics` names the
offending field and what it accepts; it never echoes profile values, tokens or patient identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, json

from ..errors import ServiceError

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class Issue:
    """One problem: `code` is from the FHIR issue-type value set, `expression` the JSON path of the field."""

    diagnostics: str
    code: str = "invalid"
    expression: str = ""
    severity: str = "error"

    def as_fhir(self) -> dict[str, Any]:
        item: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            item["expression"] = [self.expression]
        return item


class OutcomeError(ServiceError):
    """Raised anywhere in the CDS Hooks channel with the issues to answer; the blueprint renders it."""

    def __init__(self, status: int, issues: list[Issue]) -> None:
        super().__init__("; ".join(i.diagnostics for i in issues))
        self.status = status
        self.issues = issues

    @property
    def detail(self) -> str:
        return str(self)


def outcome_body(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.as_fhir() for i in issues]}


def outcome_response(status: int, issues: list[Issue]) -> Response:
    return Response(json.dumps(outcome_body(issues)), status=status, mimetype=FHIR_JSON)


def outcome_issues(exc: ServiceError) -> list[Issue]:
    """The issues of an error: its own, one per field problem, or one from its detail (or title)."""
    if isinstance(exc, OutcomeError):
        return exc.issues
    if exc.field_problems:
        code = "invalid" if exc.outcome_code == "processing" else exc.outcome_code  # e.g. conflict (409)
        return [Issue(p.message, expression=p.field, code=code) for p in exc.field_problems]
    return [Issue(exc.detail or exc.title, code=exc.outcome_code)]


def outcome_for(exc: ServiceError) -> Response:
    resp = outcome_response(exc.status, outcome_issues(exc))
    resp.headers.update(exc.headers)
    return resp


def is_operation_outcome(resource: Any) -> bool:
    return isinstance(resource, dict) and resource.get("resourceType") == "OperationOutcome"
