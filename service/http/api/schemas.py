"""Marshmallow schemas built from a ruleset's inputs: the API's validation and its OpenAPI document.

The ruleset file is the only place the profile vocabulary is written down, so the schema of a profile is
generated from `Ruleset.inputs` and never written by hand. The schemas are as strict as the engine's own
check (`service.ruleset.profile.validate_profile`), which runs again inside `make_decision`: nothing is
coerced ("30" is not an age, "true" and 1 are not booleans), unknown fields are errors, and every message
names the values the field accepts. tests/http/test_schemas.py checks that both agree on random input.
"""

from __future__ import annotations

import json
import threading
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ...ruleset.errors import suggest
from ...ruleset.model import InputField, Ruleset
from ...ruleset.profile import describe_allowed


def _lit(text: str) -> str:
    """Escape text for marshmallow messages, which are str.format templates."""
    return text.replace("{", "{{").replace("}", "}}")


def did_you_mean(name: object, choices: Any) -> str:
    """Only the "did you mean" part of `suggest`: the messages list the allowed values themselves."""
    hint = suggest(name, choices)
    return hint if hint.startswith(" (did you mean") else ""


def given(value: Any) -> str:
    """What the client sent, in words (JSON spelling), for error messages."""
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


class StrictBoolean(fields.Boolean):
    """Only JSON true and false: marshmallow's Boolean would turn "true", "yes" and 1 into True."""

    default_error_messages: ClassVar[dict[str, str]] = {"invalid": "must be JSON true or false, not {given}"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid", given=given(value))


class StrictInteger(fields.Integer):
    """Only JSON integers: not "30", not 30.0, not true - and the message says what was sent instead."""

    default_error_messages: ClassVar[dict[str, str]] = {"invalid": "must be a whole number, not {given}"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if type(value) is not int:
            raise self.make_error("invalid", given=given(value))
        return value


class StrictString(fields.String):
    default_error_messages: ClassVar[dict[str, str]] = {"invalid": "must be text, not {given}"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid", given=given(value))
        return value


class Choice(validate.OneOf):
    """OneOf whose message names the nearest allowed value (apispec still reads `choices` for `enum`)."""

    def __init__(self, choices: tuple[str, ...], subject: str, expected: str) -> None:
        super().__init__(choices)
        self.subject = subject
        self.expected = expected

    def __call__(self, value: Any) -> Any:
        if value not in self.choices:
            hint = did_you_mean(value, self.choices)
            shown = json.dumps(value if len(value) <= 40 else value[:40] + "...")
            raise ValidationError(f"{self.subject} has the value {shown}, which is not allowed{hint}: {self.expected}")
        return value


class Unique(validate.Validator):
    """A `set` input lists each value at most once (OpenAPI: uniqueItems)."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __call__(self, value: list[Any]) -> list[Any]:
        if len(set(value)) != len(value):
            raise ValidationError(self.message)
        return value


def _meta(f: InputField) -> dict[str, Any]:
    meta: dict[str, Any] = {"title": f.label, "description": f.help}
    if f.values:
        meta["x-value-labels"] = {v.code: v.label for v in f.values}
    if f.unit:
        meta["x-unit"] = f.unit
    if f.group:
        meta["x-group"] = f.group
    return meta


def input_field(f: InputField) -> fields.Field:
    """The marshmallow field for one ruleset input, with messages that say what it accepts."""
    expected = "expected " + describe_allowed(f)
    name = f"`{f.id}`"
    missing = _lit(f"{name} is required: {expected}")
    common: dict[str, Any] = {
        "required": f.required,
        # An optional fact may be sent as null, meaning "not recorded" (as the engine reads it).
        "allow_none": not f.required,
        "metadata": _meta(f) | ({"uniqueItems": True} if f.type == "set" else {}),
    }
    messages = {"required": missing, "null": missing}
    if f.type in ("enum", "ordered_enum"):
        choice = Choice(f.codes, name, expected)
        invalid = _lit(f"{name} must be text, not ") + "{given}" + _lit(f": {expected}")
        return StrictString(validate=choice, error_messages={**messages, "invalid": invalid}, **common)
    if f.type == "boolean":
        invalid = _lit(f"{name} must be JSON true or false, not ") + "{given}"
        return StrictBoolean(error_messages={**messages, "invalid": invalid}, **common)
    if f.type == "integer":
        out_of_range = _lit(f"{name} is ") + "{input}" + _lit(f", outside the allowed range: {expected}")
        invalid = _lit(f"{name} must be a whole number, not ") + "{given}" + _lit(f": {expected}")
        return StrictInteger(
            validate=validate.Range(f.minimum, f.maximum, error=out_of_range),
            error_messages={**messages, "invalid": invalid},
            **common,
        )
    item = StrictString(
        validate=Choice(f.codes, f"{name} item", expected),
        error_messages={
            "invalid": _lit(f"{name} items must be text, not ") + "{given}" + _lit(f": {expected}"),
            "null": _lit(f"{name} items may not be null: {expected}"),
        },
    )
    return fields.List(
        item,
        validate=Unique(f"{name} lists a value twice: {expected}"),
        error_messages={**messages, "invalid": _lit(f"{name} must be a list: {expected}")},
        **common,
    )


class _Strict(Schema):
    class Meta:
        unknown = RAISE
        register = False


_cache: dict[tuple[str, str], type[Schema]] = {}
_cache_lock = threading.Lock()


def _cached(key: tuple[str, str], build: Any) -> Any:
    with _cache_lock:
        found = _cache.get(key)
    if found is None:
        found = build()
        with _cache_lock:
            if len(_cache) > 256:  # revisions come and go with reloads; keep the cache bounded
                _cache.clear()
            _cache[key] = found
    return found


def component_name(kind: str, ruleset: Ruleset) -> str:
    """OpenAPI component name, e.g. `Profile.androgenetic-alopecia`."""
    return f"{kind}.{ruleset.id}"


def profile_schema(ruleset: Ruleset) -> type[Schema]:
    """The schema class of one ruleset revision's profile (cached by sha256)."""

    def build() -> type[Schema]:
        cls = _Strict.from_dict(
            {fid: input_field(f) for fid, f in ruleset.inputs.items()}, name=component_name("Profile", ruleset)
        )
        cls.__doc__ = f"A patient profile for ruleset `{ruleset.id}` {ruleset.version}: its inputs, by id."
        return cls

    return _cached(("profile", ruleset.sha256), build)


def profile_instance(ruleset: Ruleset) -> Schema:
    return _cached(("instance", ruleset.sha256), lambda: profile_schema(ruleset)())


# ---- request envelopes ------------------------------------------------------------------------

RULESET_FIELD = {
    "validate": validate.Length(1, 200, error="`ruleset` must be a ruleset id (1 to 200 characters)"),
    "error_messages": {
        "invalid": "`ruleset` must be text (a ruleset id from GET /v1/rulesets), not {given}",
        "null": "`ruleset` must be text: a ruleset id from GET /v1/rulesets (or leave it out)",
    },
    "metadata": {
        "description": "Ruleset id (GET /v1/rulesets). May be omitted when exactly one production ruleset is loaded."
    },
}
EXPLAIN_FIELD = {
    "load_default": False,
    "error_messages": {
        "invalid": "`explain` must be JSON true or false, not {given}",
        "null": "`explain` must be JSON true or false, not null",
    },
    "metadata": {"description": "Include the rule-by-rule explanation (default false)."},
}


class EvaluationEnvelope(_Strict):
    """The fields of POST /v1/evaluations; the profile is checked by its ruleset's schema afterwards."""

    ruleset = StrictString(**RULESET_FIELD)
    profile = fields.Raw(
        required=True,
        error_messages={
            "required": "`profile` is required: a JSON object of input ids to values",
            "null": "`profile` must be a JSON object of input ids to values",
        },
    )
    explain = StrictBoolean(**EXPLAIN_FIELD)


class BatchEnvelope(_Strict):
    """The fields of POST /v1/evaluations:batch; each profile is checked on its own."""

    ruleset = StrictString(**RULESET_FIELD)
    profiles = fields.List(
        fields.Raw(allow_none=True),
        required=True,
        error_messages={
            "required": "`profiles` is required: a list of profile objects",
            "null": "`profiles` must be a list of profile objects",
            "invalid": "`profiles` must be a list of profile objects",
        },
    )
    explain = StrictBoolean(**EXPLAIN_FIELD)


ENVELOPES = {EvaluationEnvelope: EvaluationEnvelope(), BatchEnvelope: BatchEnvelope()}


def evaluation_request_schema(ruleset: Ruleset, default: bool) -> type[Schema]:
    """The whole POST /v1/evaluations body for one ruleset (for OpenAPI; validation uses the same fields)."""

    def build() -> type[Schema]:
        ruleset_field = fields.String(
            required=not default, validate=validate.OneOf([ruleset.id]), metadata=RULESET_FIELD["metadata"]
        )
        return _Strict.from_dict(
            {
                "ruleset": ruleset_field,
                "profile": fields.Nested(profile_schema(ruleset), required=True),
                "explain": StrictBoolean(**EXPLAIN_FIELD),
            },
            name=component_name("EvaluationRequest", ruleset),
        )

    return _cached((f"request-{default}", ruleset.sha256), build)


def batch_request_schema(ruleset: Ruleset, default: bool, limit: int) -> type[Schema]:
    def build() -> type[Schema]:
        ruleset_field = fields.String(
            required=not default, validate=validate.OneOf([ruleset.id]), metadata=RULESET_FIELD["metadata"]
        )
        return _Strict.from_dict(
            {
                "ruleset": ruleset_field,
                "profiles": fields.List(
                    fields.Nested(profile_schema(ruleset)), required=True, validate=validate.Length(1, limit)
                ),
                "explain": StrictBoolean(**EXPLAIN_FIELD),
            },
            name=component_name("BatchRequest", ruleset),
        )

    return _cached((f"batch-{default}-{limit}", ruleset.sha256), build)
