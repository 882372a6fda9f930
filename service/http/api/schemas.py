"""Marshmallow schemas of the JSON API's requests: the envelopes, and the per-ruleset request bodies.

A profile is validated by its ruleset's one validator (service/ruleset/validator.py), whose marshmallow
schema is generated from `Ruleset.inputs`; the request bodies documented here nest that same schema, so
the OpenAPI document shows exactly what is checked. Nothing is coerced ("30" is not an age, "true" and 1
are not booleans), unknown fields are errors, and every message names the values the field accepts.
"""

from __future__ import annotations

import threading
from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from ...engine.views import VIEWS
from ...ruleset.errors import suggest
from ...ruleset.model import Ruleset
from ...ruleset.validator import StrictBoolean, StrictInteger, StrictString, given, profile_validator

__all__ = ["StrictBoolean", "StrictInteger", "StrictString", "did_you_mean", "given", "profile_schema"]


def did_you_mean(name: object, choices: Any) -> str:
    """Only the "did you mean" part of `suggest`: the messages list the allowed values themselves."""
    hint = suggest(name, choices)
    return hint if hint.startswith(" (did you mean") else ""


class _Strict(Schema):
    class Meta:
        unknown = RAISE
        register = False


_cache: dict[tuple[str, str], tuple[type[Schema], type[Schema]]] = {}
_cache_lock = threading.Lock()


def _cached(key: tuple[str, str], ruleset: Ruleset, build: Any) -> Any:
    """An envelope schema of one revision, built once while its profile schema stays the same class.

    The profile schema comes from the validator's own bounded cache; when that cache lets a revision go and
    builds its schema again, an envelope nesting the old class would give the OpenAPI document two schemas
    named `Profile.<id>`, so the envelope is rebuilt with the new class.
    """
    profile = profile_schema(ruleset)
    with _cache_lock:
        found = _cache.get(key)
    if found is not None and found[0] is profile:
        return found[1]
    built = build()
    with _cache_lock:
        if len(_cache) > 256:  # revisions come and go with reloads; keep the cache bounded
            _cache.clear()
        _cache[key] = (profile, built)
    return built


def component_name(kind: str, ruleset: Ruleset) -> str:
    """OpenAPI component name, e.g. `Profile.androgenetic-alopecia`."""
    return f"{kind}.{ruleset.id}"


def profile_schema(ruleset: Ruleset) -> type[Schema]:
    """The schema class of one ruleset revision's profile: the ruleset's own validator's (built once)."""
    return profile_validator(ruleset).schema_class


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

VIEW_FIELD = {
    "load_default": "default",
    "validate": validate.OneOf(VIEWS, error="`view` must be one of: default, full"),
    "error_messages": {
        "invalid": "`view` must be text, `default` or `full`, not {given}",
        "null": "`view` must be `default` or `full`, not null",
    },
    "metadata": {
        "description": "`default`: short texts, facts, details, evidence levels, references by id (the catalogue "
        "is at GET /v1/rulesets/<id>); `full`: every text and reference inlined.",
    },
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
    view = StrictString(**VIEW_FIELD)


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
    view = StrictString(**VIEW_FIELD)


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
                "view": StrictString(**VIEW_FIELD),
            },
            name=component_name("EvaluationRequest", ruleset),
        )

    return _cached((f"request-{default}", ruleset.sha256), ruleset, build)


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
                "view": StrictString(**VIEW_FIELD),
            },
            name=component_name("BatchRequest", ruleset),
        )

    return _cached((f"batch-{default}-{limit}", ruleset.sha256), ruleset, build)
