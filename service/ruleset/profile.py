"""Strict validation of a patient profile against a ruleset's inputs.

Nothing is coerced: "30" is not an age and "true" is not a boolean (durable_rules would happily compare
"abc" >= 18 as true). Every problem names the field and what it accepts, so the API, the form and the
CLI can all show the same message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import suggest
from .model import InputField, Ruleset


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str
    allowed: tuple[Any, ...] = ()


@dataclass
class ProfileCheck:
    profile: dict[str, Any] = field(default_factory=dict)
    errors: list[FieldProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def describe_allowed(f: InputField) -> str:
    """Plain words for what a field accepts, used in every error message."""
    if f.type in ("enum", "ordered_enum"):
        return "one of " + ", ".join(f.codes)
    if f.type == "set":
        return "a list of distinct values from " + ", ".join(f.codes)
    if f.type == "boolean":
        return "true or false"
    return f"a whole number from {f.minimum} to {f.maximum} ({f.unit})"


def validate_profile(ruleset: Ruleset, data: Any, partial: bool = False) -> ProfileCheck:
    """Check a profile; on success `profile` holds the typed values of the known fields only.

    With `partial`, required fields may be missing (the engine then decides over every completion).
    """
    check = ProfileCheck()
    if not isinstance(data, dict):
        check.errors.append(FieldProblem("", "the profile must be a JSON object of field ids to values"))
        return check
    for key in data:
        if key not in ruleset.inputs:
            check.errors.append(
                FieldProblem(str(key), f"unknown field `{key}`{suggest(key, ruleset.inputs)}", tuple(ruleset.inputs))
            )
    for fid, f in ruleset.inputs.items():
        value = data.get(fid)
        if value is None:
            if f.required and not partial:
                check.errors.append(FieldProblem(fid, f"`{fid}` is required: {describe_allowed(f)}", f.codes))
            continue
        problem = _check(f, value)
        if problem:
            check.errors.append(FieldProblem(fid, f"`{fid}` {problem}: expected {describe_allowed(f)}", f.codes))
        else:
            check.profile[fid] = tuple(sorted(value, key=f.codes.index)) if f.type == "set" else value
    if check.errors:
        check.profile = {}
    return check


def _check(f: InputField, value: Any) -> str | None:
    if f.type in ("enum", "ordered_enum"):
        if not isinstance(value, str):
            return f"must be text, not {type(value).__name__}"
        if value not in f.codes:
            return f"has the value `{value}`, which is not allowed{suggest(value, f.codes)}"
        return None
    if f.type == "boolean":
        return None if isinstance(value, bool) else f"must be true or false, not {value!r}"
    if f.type == "integer":
        if type(value) is not int:
            return f"must be a whole number, not {value!r}"
        assert f.minimum is not None and f.maximum is not None
        if not f.minimum <= value <= f.maximum:
            return f"is {value}, outside the allowed range"
        return None
    if not isinstance(value, list):
        return f"must be a list, not {type(value).__name__}"
    bad = [v for v in value if not isinstance(v, str) or v not in f.codes]
    if bad:
        return f"contains `{bad[0]}`, which is not allowed{suggest(bad[0], f.codes)}"
    if len(set(value)) != len(value):
        return "lists a value twice"
    return None
