"""The JSON API's translation of validation problems into problem+json `errors` entries.

Profiles are validated by the ruleset's own validator (service/ruleset/validator.py), once; this module
words its problems for the API. Request envelopes are checked by the schemas of schemas.py.

Each entry says where (`field` in dotted form and `pointer` as a JSON Pointer), what is wrong, and what the
field accepts (`allowed`, or `minimum`/`maximum`/`unit`), so an integration can show it next to its field.
Unknown fields are named with a "did you mean" and the list of accepted ones.
"""

from __future__ import annotations

import json
from typing import Any

from marshmallow import Schema, ValidationError

from ...ruleset.model import InputField, Ruleset
from ...ruleset.validator import (
    MAX_PROBLEMS,
    FieldProblem,
    ProblemCode,
    ProfileCheck,
    describe_allowed,
    profile_validator,
)
from .schemas import ENVELOPES, did_you_mean, given


def _pointer(path: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _dotted(path: list[str | int]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def field_error(path: list[str | int], message: str, f: InputField | None = None, **extra: Any) -> dict[str, Any]:
    """One entry of a problem's `errors` list: where, what, and what is allowed there."""
    err: dict[str, Any] = {"field": _dotted(path), "pointer": _pointer(path), "message": message}
    if f is not None:
        if f.type in ("enum", "ordered_enum", "set"):
            err["allowed"] = list(f.codes)
        elif f.type == "boolean":
            err["allowed"] = [True, False]
        else:
            err["minimum"], err["maximum"], err["unit"] = f.minimum, f.maximum, f.unit
    err.update(extra)
    return err


def _flatten(messages: Any, path: list[str | int]) -> list[tuple[list[str | int], str]]:
    if isinstance(messages, dict):
        return [pair for key, sub in messages.items() for pair in _flatten(sub, [*path, key])]
    if isinstance(messages, list):
        return [(path, m) for m in messages if isinstance(m, str)] + [
            pair for m in messages if isinstance(m, dict) for pair in _flatten(m, path)
        ]
    return [(path, str(messages))]


def _shown(value: Any) -> str:
    return json.dumps(value if len(value) <= 40 else value[:40] + "...")


def _hint(p: FieldProblem) -> str:
    return f" (did you mean `{p.suggestion}`?)" if p.suggestion else ""


def api_message(p: FieldProblem, f: InputField) -> str:
    """The JSON API's words for a problem the ruleset's validator found (they name what was sent in JSON)."""
    name, expected, value = f"`{f.id}`", "expected " + describe_allowed(f), p.value
    code = p.code
    if code is ProblemCode.REQUIRED:
        return f"{name} is required: {expected}"
    if code is ProblemCode.WRONG_TYPE:
        if f.type == "boolean":
            return f"{name} must be JSON true or false, not {given(value)}"
        if f.type == "set":
            return f"{name} must be a list: {expected}"
        kind = "a whole number" if f.type == "integer" else "text"
        return f"{name} must be {kind}, not {given(value)}: {expected}"
    if code is ProblemCode.NOT_ALLOWED:
        return f"{name} has the value {_shown(value)}, which is not allowed{_hint(p)}: {expected}"
    if code is ProblemCode.OUT_OF_RANGE:
        return f"{name} is {value}, outside the allowed range: {expected}"
    if code is ProblemCode.DUPLICATE:
        return f"{name} lists a value twice: {expected}"
    if code is ProblemCode.ITEM_WRONG_TYPE:
        if value is None:
            return f"{name} items may not be null: {expected}"
        return f"{name} items must be text, not {given(value)}: {expected}"
    if code is ProblemCode.ITEM_NOT_ALLOWED:
        return f"{name} item has the value {_shown(value)}, which is not allowed{_hint(p)}: {expected}"
    return p.message


def problem_errors(ruleset: Ruleset, problems: list[FieldProblem], prefix: list[str | int]) -> list[dict[str, Any]]:
    """The validator's problems as `errors` entries under `prefix` (e.g. ["profile"]): the inputs' problems
    in the ruleset's order, then unknown fields."""
    inputs = list(ruleset.inputs)
    known, unknown = [], []
    for p in problems:
        f = ruleset.inputs.get(p.field)
        if p.code is ProblemCode.NOT_AN_OBJECT:
            msg = "the profile must be a JSON object of input ids to values"
            known.append(field_error(prefix, msg, allowed=inputs))
        elif f is None or p.code is ProblemCode.UNKNOWN_FIELD:
            text = f"unknown field `{p.field}`{_hint(p)}: the profile accepts {', '.join(inputs)}"
            unknown.append(field_error([*prefix, *(p.path or (p.field,))], text, allowed=inputs))
        else:
            known.append(field_error([*prefix, *p.path], api_message(p, f), f))
    return known + unknown


def check_profile(
    ruleset: Ruleset, data: Any, prefix: list[str | int], describe: int = MAX_PROBLEMS
) -> tuple[ProfileCheck, list[dict[str, Any]]]:
    """Validate a raw profile once (the ruleset's validator); its problems as `errors` entries ([] if valid).

    At most `describe` problems are described (the rest counted in `check.omitted`)."""
    check = profile_validator(ruleset).check(data, describe=describe)
    return check, problem_errors(ruleset, check.problems, prefix) if check.problems else []


def profile_errors(ruleset: Ruleset, data: Any, prefix: list[str | int]) -> list[dict[str, Any]]:
    """Every problem of a raw profile, as `errors` entries under `prefix` (e.g. ["profile"]); [] if valid."""
    return check_profile(ruleset, data, prefix)[1]


def envelope_errors(schema: type[Schema], data: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Load a request envelope; unknown top-level fields are errors that list the accepted ones."""
    names = list(schema._declared_fields)
    if not isinstance(data, dict):
        return {}, [field_error([], f"the request body must be a JSON object with {', '.join(names)}", allowed=names)]
    try:
        return ENVELOPES[schema].load(data), []
    except ValidationError as exc:
        out = []
        for path, message in _flatten(exc.messages, []):
            key = str(path[0]) if path else ""
            if key not in names:
                message = f"unknown field `{key}`{did_you_mean(key, names)}: the request accepts {', '.join(names)}"
                out.append(field_error(path, message, allowed=names))
            else:
                out.append(field_error(path, message))
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        return valid, out
