"""What the decision log raises. Channels map LogError to 503: an answer that cannot be recorded is not given."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigurationError, ServiceError
from ..ruleset.profile import FieldProblem

__all__ = ["ConfigurationError", "InvalidFeedback", "LogError", "RecordError"]


class LogError(ServiceError, RuntimeError):
    """The decision log's database cannot be reached, read or written."""

    status = 503
    title = "Decision log unavailable"
    public_detail = (
        "The decision log could not be written or read, so no answer is given. Retry later; "
        "if it persists, check the database (GET /readyz)."
    )
    retry_after = 5
    outcome_code = "transient"


class RecordError(LogError):
    """A decision or feedback could not be stored durably; whatever depended on it must not be answered."""


class InvalidFeedback(ServiceError, ValueError):
    """CDS Hooks feedback that cannot be stored as sent; `errors` name each field and what it accepts."""

    status = 400
    title = "Invalid feedback"
    public_detail = "See `errors` for each field."

    def __init__(self, errors: list[FieldProblem]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors

    @property
    def field_problems(self) -> Sequence[FieldProblem]:
        return self.errors


class ConflictingFeedback(InvalidFeedback):
    """A report for a card, outcome and outcomeTimestamp already stored with other content (e.g. an added
    overrideReason). The log is append-only and one report per moment: it is refused, never dropped."""

    status = 409
    title = "Conflicting feedback"
    outcome_code = "conflict"
    public_detail = "Feedback with this card, outcome and outcomeTimestamp was already stored with other content."
