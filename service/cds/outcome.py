"""FHIR OperationOutcome bodies for the CDS Hooks endpoints' errors (CDS Hooks 3.0 "Returning OperationOutcome").

EHRs log these rather than show them, so `diagnostics` names the offending field and what it accepts; it
never echoes profile values, tokens or patient identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, json

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


class OutcomeError(Exception):
    """Raised anywhere in the CDS Hooks channel; the blueprint turns it into an OperationOutcome response."""

    def __init__(self, status: int, issues: list[Issue]) -> None:
        super().__init__("; ".join(i.diagnostics for i in issues))
        self.status = status
        self.issues = issues


def outcome_body(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.as_fhir() for i in issues]}


def outcome_response(status: int, issues: list[Issue]) -> Response:
    return Response(json.dumps(outcome_body(issues)), status=status, mimetype=FHIR_JSON)


def is_operation_outcome(resource: Any) -> bool:
    return isinstance(resource, dict) and resource.get("resourceType") == "OperationOutcome"
