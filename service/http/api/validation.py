"""Running the schemas of service/http/api/schemas.py and turning their errors into problem `errors` entries.

Each entry says where (`field` in dotted form and `pointer` as a JSON Pointer), what is wrong, and what the
field accepts (`allowed`, or `minimum`/`maximum`/`unit`), so an integration can show it next to its field.
Unknown fields are named with a "did you mean" and the list of accepted ones.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError

from ...ruleset.model import InputField, Ruleset
from .schemas import ENVELOPES, did_you_mean, profile_instance


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


def profile_errors(ruleset: Ruleset, data: Any, prefix: list[str | int]) -> list[dict[str, Any]]:
    """Every problem of a raw profile, as `errors` entries under `prefix` (e.g. ["profile"]); [] if valid."""
    if not isinstance(data, dict):
        msg = "the profile must be a JSON object of input ids to values"
        return [field_error(prefix, msg, allowed=list(ruleset.inputs))]
    try:
        profile_instance(ruleset).load(data)
    except ValidationError as exc:
        out = []
        for path, message in _flatten(exc.messages, []):
            key = path[0] if path else ""
            f = ruleset.inputs.get(str(key))
            if f is None:
                hint = did_you_mean(key, ruleset.inputs)
                text = f"unknown field `{key}`{hint}: the profile accepts {', '.join(ruleset.inputs)}"
                out.append(field_error([*prefix, *path], text, allowed=list(ruleset.inputs)))
            else:
                out.append(field_error([*prefix, *path], message, f))
        return out
    return []


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
