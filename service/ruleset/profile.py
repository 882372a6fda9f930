"""Strict validation of a patient profile against a ruleset's inputs (see validator.py, which does it).

`validate_profile` is the short way to ask the ruleset's one validator; the names other modules have
always imported from here (FieldProblem, ProfileCheck, describe_allowed) live on in validator.py.
"""

from __future__ import annotations

from typing import Any

from .model import Ruleset
from .validator import FieldProblem, ProblemCode, ProfileCheck, describe_allowed, profile_validator

__all__ = ["FieldProblem", "ProblemCode", "ProfileCheck", "describe_allowed", "validate_profile"]


def validate_profile(ruleset: Ruleset, data: Any, partial: bool = False) -> ProfileCheck:
    """Check a profile; on success `profile` holds the typed values of the known fields only.

    With `partial`, required fields may be missing (the engine then decides over every completion).
    """
    return profile_validator(ruleset).check(data, partial=partial)
