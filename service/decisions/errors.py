"""What the decision log raises. Channels map LogError to 503: an answer that cannot be recorded is not given."""

from __future__ import annotations

from ..ruleset.profile import FieldProblem


class ConfigurationError(ValueError):
    """A decision log setting (DATABASE_URL, DECISION_HMAC_KEY) cannot be used; the message says how to fix it."""


class LogError(RuntimeError):
    """The decision log's database cannot be reached, read or written."""


class RecordError(LogError):
    """A decision or feedback could not be stored durably; whatever depended on it must not be answered."""


class InvalidFeedback(ValueError):
    """CDS Hooks feedback that cannot be stored as sent; `errors` name each field and what it accepts."""

    def __init__(self, errors: list[FieldProblem]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors
