"""The one profile validator: a marshmallow schema built once per ruleset revision from its `inputs`.

Every channel (JSON API and batch, web form, CDS Hooks, CLI, verification, replay) validates with it, once
per request; the engine then receives only the typed profile it returns. Nothing is coerced: "30" is not
an age (30.0 is: JSON Schema's integer 30) and "true" is not a boolean (durable_rules would happily compare
"abc" >= 18 as true).

A problem is data, not only words: the input it concerns, where in the profile (path, JSON Pointer), what
kind of problem (`ProblemCode`), the value sent, the allowed values, minimum/maximum/unit and the nearest
allowed value. `message` words it for people (CLI, form, verification); a channel with its own wording
(the JSON API) builds it from the same data, so the channels only translate.

The schema's marshmallow messages are problem codes; the problem is built from the code, the input and the
value sent. The same schema generates the profile's OpenAPI component (apispec reads its fields).
"""

from __future__ import annotations

import difflib
import json
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from .model import InputField, Ruleset

__all__ = [
    "FieldProblem",
    "ProblemCode",
    "ProfileCheck",
    "ProfileValidator",
    "StrictBoolean",
    "StrictInteger",
    "StrictString",
    "closest",
    "describe_allowed",
    "given",
    "profile_validator",
]


class ProblemCode(StrEnum):
    NOT_AN_OBJECT = "not_an_object"  # the profile itself is not a JSON object
    UNKNOWN_FIELD = "unknown_field"
    REQUIRED = "required"  # missing, or null, for a required input
    WRONG_TYPE = "wrong_type"  # e.g. text for a number; for a set input: not a list
    NOT_ALLOWED = "not_allowed"  # a code that is not one of the input's values
    OUT_OF_RANGE = "out_of_range"
    DUPLICATE = "duplicate"  # a set input lists a value twice
    ITEM_WRONG_TYPE = "item_wrong_type"  # an item of a set input that is not text (or null)
    ITEM_NOT_ALLOWED = "item_not_allowed"


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one field. Only `field` and `message` are needed (feedback, form reading); the
    validator fills in the rest so that each channel can show it in its own format."""

    field: str
    message: str
    allowed: tuple[Any, ...] = ()
    code: ProblemCode | None = None
    path: tuple[str | int, ...] = ()  # inside the profile: ("conditions", 1) is the second item
    value: Any = None  # what was sent (None when nothing was)
    minimum: int | None = None
    maximum: int | None = None
    unit: str | None = None
    suggestion: str | None = None  # the nearest allowed value or field id ("did you mean")

    @property
    def pointer(self) -> str:
        """Where, as a JSON Pointer (RFC 6901) into the profile."""
        return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in self.path)


@dataclass
class ProfileCheck:
    """The typed profile (known fields only; set values as tuples in the ruleset's order) or the problems.

    `problems` holds every problem, down to each wrong item of a set input; `errors` the same with one
    problem per field (the first wrong item of a set), the form the people-facing channels list.
    """

    profile: dict[str, Any] = field(default_factory=dict)
    problems: list[FieldProblem] = field(default_factory=list)
    ruleset_id: str = ""
    ruleset_sha256: str = ""  # the revision whose validator made the check
    partial: bool = False
    data: Any = None  # what was checked, as sent (to check it again should the ruleset change meanwhile)
    omitted: int = 0  # problems found beyond the first MAX_PROBLEMS, counted but not described

    @property
    def ok(self) -> bool:
        return not self.problems and not self.omitted

    @property
    def errors(self) -> list[FieldProblem]:
        out, items = [], set()
        for p in self.problems:
            if p.code in (ProblemCode.ITEM_WRONG_TYPE, ProblemCode.ITEM_NOT_ALLOWED):
                if p.field in items:
                    continue
                items.add(p.field)
            out.append(p)
        return out


def describe_allowed(f: InputField) -> str:
    """Plain words for what a field accepts, used in every error message."""
    if f.type in ("enum", "ordered_enum"):
        return "one of " + ", ".join(f.codes)
    if f.type == "set":
        return "a list of distinct values from " + ", ".join(f.codes)
    if f.type == "boolean":
        return "true or false"
    return f"a whole number from {f.minimum} to {f.maximum} ({f.unit})"


def closest(name: object, choices: Any) -> str | None:
    """The allowed value nearest to `name`, if one is close enough to be a misspelling of it."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return close[0] if close else None


def _hint(near: str | None, choices: Any) -> str:
    """`errors.suggest`'s words from a match already looked up (difflib is the slow part of a problem)."""
    if near is not None:
        return f" (did you mean `{near}`?)"
    options = [str(c) for c in choices]
    if options and len(options) <= 25:
        return " (allowed: " + ", ".join(f"`{o}`" for o in options) + ")"
    return ""


# ---- the schema: strict fields whose messages are problem codes ---------------------------------------


def given(value: Any) -> str:
    """What a client sent, in words (JSON spelling), for error messages."""
    if value is True or value is False:
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "..."
        return f"the text {json.dumps(shown)}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return "a list" if isinstance(value, list) else "an object"


# Their `invalid` message may use {given} (the request envelopes of the JSON API do; the profile's are codes).


class StrictString(fields.String):
    default_error_messages: ClassVar[dict[str, str]] = {"invalid": ProblemCode.WRONG_TYPE.value}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid", given=given(value))
        return value


class StrictBoolean(fields.Boolean):
    """Only JSON true and false: marshmallow's Boolean would turn "true", "yes" and 1 into True."""

    default_error_messages: ClassVar[dict[str, str]] = {"invalid": ProblemCode.WRONG_TYPE.value}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid", given=given(value))


class StrictInteger(fields.Integer):
    """Only JSON integers: not "30", not 30.5, not true.

    An integral number such as 30.0 is the integer 30 in JSON Schema (`type: integer`, the published
    OpenAPI document), and some JSON encoders write every number so: it is accepted as 30, and the
    engine and the decision log see the int.
    """

    default_error_messages: ClassVar[dict[str, str]] = {"invalid": ProblemCode.WRONG_TYPE.value}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if type(value) is int:
            return value
        if type(value) is float and value.is_integer():  # False for inf and nan
            return int(value)
        raise self.make_error("invalid", given=given(value))


class _Unique(validate.Validator):
    """A `set` input lists each value at most once (OpenAPI: uniqueItems)."""

    def __call__(self, value: list[Any]) -> list[Any]:
        if len(set(value)) != len(value):
            raise ValidationError(ProblemCode.DUPLICATE.value)
        return value


_MISSING = {"required": ProblemCode.REQUIRED.value, "null": ProblemCode.REQUIRED.value}


def _meta(f: InputField) -> dict[str, Any]:
    meta: dict[str, Any] = {"title": f.label, "description": f.help}
    if f.values:
        meta["x-value-labels"] = {v.code: v.label for v in f.values}
    if f.unit:
        meta["x-unit"] = f.unit
    if f.group:
        meta["x-group"] = f.group
    if f.type == "set":
        meta["uniqueItems"] = True
    return meta


def input_field(f: InputField) -> fields.Field:
    """The marshmallow field of one ruleset input. An optional fact may be sent as null: "not recorded"."""
    common: dict[str, Any] = {"required": f.required, "allow_none": not f.required, "metadata": _meta(f)}
    if f.type in ("enum", "ordered_enum"):
        choice = validate.OneOf(f.codes, error=ProblemCode.NOT_ALLOWED.value)
        return StrictString(validate=choice, error_messages=_MISSING, **common)
    if f.type == "boolean":
        return StrictBoolean(error_messages=_MISSING, **common)
    if f.type == "integer":
        in_range = validate.Range(f.minimum, f.maximum, error=ProblemCode.OUT_OF_RANGE.value)
        return StrictInteger(validate=in_range, error_messages=_MISSING, **common)
    item = StrictString(
        validate=validate.OneOf(f.codes, error=ProblemCode.ITEM_NOT_ALLOWED.value),
        error_messages={"invalid": ProblemCode.ITEM_WRONG_TYPE.value, "null": ProblemCode.ITEM_WRONG_TYPE.value},
    )
    return fields.List(
        item,
        validate=_Unique(),
        error_messages={**_MISSING, "invalid": ProblemCode.WRONG_TYPE.value},
        **common,
    )


class _Strict(Schema):
    error_messages: ClassVar[dict[str, str]] = {"unknown": ProblemCode.UNKNOWN_FIELD.value}

    class Meta:
        unknown = RAISE
        register = False


# ---- the validator ------------------------------------------------------------------------------------


def _plain_message(code: ProblemCode, f: InputField, value: Any, near: str | None) -> str:
    """The problem in the words the CLI, the form and verification show (the engine's words since 0.1)."""
    fid, expected = f.id, describe_allowed(f)
    if code is ProblemCode.REQUIRED:
        return f"`{fid}` is required: {expected}"
    if code is ProblemCode.WRONG_TYPE:
        if f.type in ("enum", "ordered_enum"):
            what = f"must be text, not {type(value).__name__}"
        elif f.type == "boolean":
            what = f"must be true or false, not {value!r}"
        elif f.type == "integer":
            what = f"must be a whole number, not {value!r}"
        else:
            what = f"must be a list, not {type(value).__name__}"
    elif code is ProblemCode.NOT_ALLOWED:
        what = f"has the value `{value}`, which is not allowed{_hint(near, f.codes)}"
    elif code is ProblemCode.OUT_OF_RANGE:
        what = f"is {value}, outside the allowed range"
    elif code is ProblemCode.DUPLICATE:
        what = "lists a value twice"
    else:  # an item of a set
        what = f"contains `{value}`, which is not allowed{_hint(near, f.codes)}"
    return f"`{fid}` {what}: expected {expected}"


# Problems described per profile; the rest are only counted. A hostile profile (60,000 unknown keys, 40,000
# near-miss set items) would otherwise cost seconds of "did you mean" lookups and a response of megabytes.
MAX_PROBLEMS = 20


class ProfileValidator:
    """Validation of profiles for one ruleset revision; build it once (see `profile_validator`)."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.inputs = ruleset.inputs
        self.schema_class: type[Schema] = _Strict.from_dict(
            {fid: input_field(f) for fid, f in ruleset.inputs.items()}, name=f"Profile.{ruleset.id}"
        )
        doc = f"A patient profile for ruleset `{ruleset.id}` {ruleset.version}: its inputs, by id."
        self.schema_class.__doc__ = doc
        self._schema = self.schema_class()
        self._sets = {fid: f.codes.index for fid, f in ruleset.inputs.items() if f.type == "set"}

    def check(self, data: Any, partial: bool = False, describe: int = MAX_PROBLEMS) -> ProfileCheck:
        """Validate a raw (JSON) profile. With `partial`, required inputs may be missing (the engine then
        decides over every way to fill them in); null still counts as missing. At most `describe` problems
        are described (at least one, so an invalid profile always has one); the others are counted."""
        describe = max(1, min(describe, MAX_PROBLEMS))
        check = ProfileCheck(ruleset_id=self.ruleset.id, ruleset_sha256=self.ruleset.sha256, partial=partial, data=data)
        if not isinstance(data, dict):
            check.problems.append(
                FieldProblem(
                    "",
                    "the profile must be a JSON object of field ids to values",
                    (),
                    ProblemCode.NOT_AN_OBJECT,
                    value=data,
                )
            )
            return check
        sent, cut = self._cut_long_sets(data)
        if partial:
            # Missing required inputs are allowed, and null means missing: leave their nulls out first.
            sent = {k: v for k, v in sent.items() if v is not None or k not in self.inputs}
        # Unknown keys are found here, not by marshmallow, whose error store grows slowly per key (a second
        # for the 66,000 keys of a 1 MB body); the schema checks the inputs only.
        known = {k: v for k, v in sent.items() if k in self.inputs}
        try:
            loaded = self._schema.load(known, partial=partial)
            messages: Any = {}
        except ValidationError as exc:
            messages = exc.messages
        if messages or len(known) < len(sent):
            check.problems, check.omitted = self._problems(messages, sent, describe)
            check.omitted += cut
            return check
        profile = check.profile
        for fid, value in loaded.items():
            if value is None:
                continue
            order = self._sets.get(fid)
            profile[fid] = tuple(sorted(value, key=order)) if order is not None else value
        return check

    def _cut_long_sets(self, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """The profile with each set input's list cut to what can matter, and how many items were cut.

        A list longer than its input's values holds a problem (a duplicate or a value not allowed) for each
        item beyond them, so only the first `values + MAX_PROBLEMS` items are checked and the rest counted.
        """
        cut, sent = 0, data
        for fid in self._sets:
            value = data.get(fid)
            keep = len(self.inputs[fid].codes) + MAX_PROBLEMS
            if isinstance(value, list) and len(value) > keep:
                sent = {**sent, fid: value[:keep]}
                cut += len(value) - keep
        return sent, cut

    def _problems(self, messages: Any, data: dict[str, Any], describe: int) -> tuple[list[FieldProblem], int]:
        """The first `describe` problems, described, and how many more there are."""
        out: list[FieldProblem] = []
        omitted = 0
        # Unknown fields as sent, then the inputs in the ruleset's order: the same order on every channel.
        for key in data:
            if key not in self.inputs:
                if len(out) >= describe:
                    omitted += 1
                    continue
                near = closest(key, self.inputs)
                out.append(
                    FieldProblem(
                        str(key),
                        f"unknown field `{key}`{_hint(near, self.inputs)}",
                        tuple(self.inputs),
                        ProblemCode.UNKNOWN_FIELD,
                        path=(key,),
                        value=data[key],
                        suggestion=near,
                    )
                )
        for fid, f in self.inputs.items():
            found = messages.get(fid) if isinstance(messages, dict) else None
            if found is not None:
                listed = self._field_problems(f, found, data.get(fid), describe - len(out))
                omitted += listed[1]
                out.extend(listed[0])
        return out, omitted

    def _field_problems(self, f: InputField, found: Any, value: Any, room: int) -> tuple[list[FieldProblem], int]:
        if isinstance(found, dict):  # items of a set input, by position
            pairs = [(i, str(codes[0])) for i, codes in sorted(found.items()) if isinstance(i, int) and codes]
        else:
            pairs = [(None, str(found[0]))] if found else []
        room = max(room, 0)
        out = []
        for index, code_text in pairs[:room]:
            code = ProblemCode(code_text)
            sent = value[index] if index is not None else value
            out.append(self.problem(f, code, sent, () if index is None else (index,)))
        return out, len(pairs) - len(out)

    def problem(self, f: InputField, code: ProblemCode, value: Any, at: tuple[int, ...] = ()) -> FieldProblem:
        """A problem with input `f` (e.g. found by the form while reading it), with all the data to show it."""
        integer = f.type == "integer"
        near = None
        if code in (ProblemCode.NOT_ALLOWED, ProblemCode.ITEM_NOT_ALLOWED):
            near = closest(value, f.codes)
        return FieldProblem(
            f.id,
            _plain_message(code, f, value, near),
            f.codes,
            code,
            path=(f.id, *at),
            value=value,
            minimum=f.minimum if integer else None,
            maximum=f.maximum if integer else None,
            unit=f.unit if integer else None,
            suggestion=near,
        )


_cache: dict[str, ProfileValidator] = {}
_cache_lock = threading.Lock()


def profile_validator(ruleset: Ruleset) -> ProfileValidator:
    """The validator of a ruleset revision, built on first use and kept (by sha256) for every later one."""
    found = _cache.get(ruleset.sha256)  # the same text has the same inputs
    if found is not None:
        return found
    built = ProfileValidator(ruleset)
    with _cache_lock:
        if len(_cache) > 64:  # revisions come and go with reloads; keep the cache bounded
            _cache.clear()
        return _cache.setdefault(ruleset.sha256, built)
