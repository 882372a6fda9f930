"""The one taxonomy of errors a client can see, whichever channel it uses.

Each error that reaches a client derives from `ServiceError` and says, once, what it means: its HTTP
status, its problem type (the URNs listed in README.md, which integrations switch on), a title, a detail
fit to show (never patient data, never a database message), its field problems and whether to retry.
The channels do not decide any of that again; each has one renderer that only chooses the format:

- problem+json for the JSON API and everything else (service/http/errors.py),
- an OperationOutcome for CDS Hooks (service/cds/outcome.py),
- an HTML page for people (service/http/html/common.py).

Plain Python, so the engine and the ruleset layer can raise these without knowing HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PROBLEM_TYPE_PREFIX = "urn:hairloss-rules:problem:"


def problem_type(slug: str) -> str:
    """The problem type URI of a slug; no slug is RFC 9457's `about:blank` (the status says it all)."""
    return PROBLEM_TYPE_PREFIX + slug if slug else "about:blank"


class ServiceError(Exception):
    """An error with everything a renderer needs; subclasses set the class attributes, instances may override.

    `field_problems` are objects with `field`, `message` and optionally `allowed` (ruleset.profile.FieldProblem,
    audit query ParamProblem); `extra` holds further problem members (e.g. `errors` already in problem+json form).
    """

    status: int = 500
    slug: str = ""
    title: str = "Internal Server Error"
    public_detail: str = ""
    retry_after: int | None = None
    outcome_code: str = "processing"  # the FHIR issue type of the OperationOutcome rendering

    @property
    def problem_type(self) -> str:
        return problem_type(self.slug)

    @property
    def detail(self) -> str:
        """Fit to show; a subclass whose message names no patient data may return the message."""
        return self.public_detail

    @property
    def field_problems(self) -> Sequence[Any]:
        return ()

    @property
    def extra(self) -> dict[str, Any]:
        return {}

    @property
    def log_text(self) -> str:
        """What the service's own log says about it; a subclass whose message may quote data says less."""
        return str(self)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class MessageError(ServiceError):
    """A refusal whose message names no patient data, so the message is the detail; the status may vary
    per instance (e.g. 409 or 422 for a lifecycle action, 401 or 502 for a SMART launch)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status

    @property
    def detail(self) -> str:
        return str(self)


class ConfigurationError(ValueError):
    """A setting cannot be used; the message names it and says how to fix it. It stops the start."""
