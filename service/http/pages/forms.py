"""A submitted form or a query string, read strictly into a raw profile for `make_decision`.

HTML forms and URLs carry only strings, so this module does the one thing the profile validator cannot:
turn strings into the typed values of `Ruleset.inputs`, refusing anything that is not exactly one of them.
Whether a typed value is allowed (enum codes, integer ranges, required fields) is then decided by the
ruleset's own validation (service.ruleset.profile), so the form and the JSON API give the same verdicts.

The parameters are the vocabulary ids (`sex=male&age=34&conditions=a&conditions=b&pregnant=false`):

- an empty value (`pattern=`) or no parameter means "not recorded";
- booleans are `true` or `false`; integers are whole numbers written in digits (`34`, not `34.0`);
- a set field repeats its parameter once per value; given once with an empty value (`conditions=`) it
  means "recorded: none of these", which differs from leaving it out ("not recorded");
- a single-valued field given twice is an error, and so is any parameter that is not a vocabulary id:
  a misspelt safety fact (`pregant=true`) must not be dropped silently and turn into "not recorded".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict

from ...ruleset.errors import suggest
from ...ruleset.model import InputField, Ruleset
from ...ruleset.profile import FieldProblem, describe_allowed, validate_profile

WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
MAX_DIGITS = 18  # far beyond any range, far below the digits int() refuses to convert
ECHO_LIMIT = 40  # characters of a rejected value repeated back in a message


@dataclass
class Submitted:
    """What was sent: the raw profile built from it, the strings as entered, and what is wrong with them."""

    profile: dict[str, Any] = field(default_factory=dict)
    entered: dict[str, list[str]] = field(default_factory=dict)
    problems: list[FieldProblem] = field(default_factory=list)


def _echo(value: str) -> str:
    return value if len(value) <= ECHO_LIMIT else value[:ECHO_LIMIT] + "…"


def _scalar(f: InputField, text: str) -> tuple[Any, str | None]:
    """(typed value, problem) for one non-empty string of a single-valued field."""
    if f.type == "boolean":
        if text in ("true", "false"):
            return text == "true", None
        return None, f"“{_echo(text)}” is not an answer here: expected true or false"
    if f.type == "integer":
        digits = text.strip()
        if not WHOLE_NUMBER.fullmatch(digits):
            return None, f"“{_echo(text)}” is not a whole number: expected {describe_allowed(f)}"
        if len(digits.lstrip("+-")) > MAX_DIGITS:
            return None, f"“{_echo(text)}” is outside the allowed range: expected {describe_allowed(f)}"
        return int(digits), None
    return text, None  # enum codes are checked by the ruleset's validation


def read_params(ruleset: Ruleset, params: MultiDict[str, str]) -> Submitted:
    """Read form fields or query parameters named by the vocabulary ids."""
    out = Submitted()
    for key in params:
        if key not in ruleset.inputs:
            out.problems.append(
                FieldProblem(
                    key,
                    f"unknown field `{_echo(key)}`{suggest(key, ruleset.inputs)}",
                    tuple(ruleset.inputs),
                )
            )
    for fid, f in ruleset.inputs.items():
        values = params.getlist(fid)
        if not values:
            continue
        out.entered[fid] = values
        if f.type == "set":
            if values == [""]:
                out.profile[fid] = []
            elif "" in values:
                out.problems.append(
                    FieldProblem(fid, "“None of these” cannot be ticked together with a value", f.codes)
                )
            else:
                out.profile[fid] = values
            continue
        if len(values) > 1:
            out.problems.append(FieldProblem(fid, f"given {len(values)} times: give it once", f.codes))
            continue
        if values[0] == "":
            continue
        value, problem = _scalar(f, values[0])
        if problem:
            out.problems.append(FieldProblem(fid, problem, f.codes))
        else:
            out.profile[fid] = value
    return out


def check_values(ruleset: Ruleset, submitted: Submitted, *, require: bool) -> list[FieldProblem]:
    """Every problem at once: reading problems first, then the ruleset's verdict on the values read.

    With `require=False` (a form prefilled from a link) missing required fields are not problems yet.
    """
    flagged = {p.field for p in submitted.problems}
    problems = list(submitted.problems)
    for p in validate_profile(ruleset, submitted.profile).errors:
        if p.field in flagged or (not require and p.field not in submitted.profile):
            continue
        problems.append(p)
    return problems


def query_items(ruleset: Ruleset, profile: dict[str, Any]) -> list[tuple[str, str]]:
    """The parameters that reproduce a profile, in the ruleset's field order (the inverse of `read_params`)."""
    items: list[tuple[str, str]] = []
    for fid, f in ruleset.inputs.items():
        if fid not in profile:
            continue
        value = profile[fid]
        if f.type == "set":
            items.extend((fid, v) for v in value or [""])
        elif f.type == "boolean":
            items.append((fid, "true" if value else "false"))
        else:
            items.append((fid, str(value)))
    return items


def query_string(ruleset: Ruleset, profile: dict[str, Any]) -> str:
    return urlencode(query_items(ruleset, profile))


LISTED_CHOICES = 8  # beyond this many values, "choose one from the list" says more than the list itself


def required_message(f: InputField) -> str:
    """What a clinician must do about a required field left empty, naming the choices by their labels."""
    if f.type == "integer":
        return f"Required: a whole number from {f.minimum} to {f.maximum} {f.unit}."
    if f.type == "boolean":
        return "Required: answer yes or no."
    labels = [v.label for v in f.values]
    if f.type == "set":
        return "Required: tick the values that apply, or “None of these”."
    if len(labels) <= LISTED_CHOICES:
        return f"Required: choose one of {', '.join(labels)}."
    return f"Required: choose one of the {len(labels)} values in the list."


def problems_by_field(
    ruleset: Ruleset, submitted: Submitted, problems: Iterable[FieldProblem]
) -> tuple[dict[str, list[str]], list[str]]:
    """Messages next to their field, and the rest (unknown parameters) for the top of the form.

    A required field that was simply left empty gets a message in the clinician's words; every other
    problem keeps the validator's message, which names the offending value and what is allowed.
    """
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    read_problems = {p.field for p in submitted.problems}
    for p in problems:
        f = ruleset.inputs.get(p.field)
        if f is None:
            general.append(p.message)
            continue
        missing = f.required and p.field not in submitted.profile and p.field not in read_problems
        by_field.setdefault(p.field, []).append(required_message(f) if missing else p.message)
    return by_field, general
