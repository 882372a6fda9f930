"""Marshmallow schemas of the API's responses, for the OpenAPI document.

The decision's schemas are generated from its type (service/engine/answer.py); the others describe what
service.http.api.ruleset_json produces; tests/http validate real
responses against the generated document (additional properties are errors), so a field added to a
decision without being documented here fails the suite.
"""

from __future__ import annotations

from marshmallow import INCLUDE, RAISE, Schema, fields, validate

from ..dataschema import schema_for
from ..engine import answer


class _Doc(Schema):
    class Meta:
        unknown = RAISE


def _str(required: bool = True, **metadata: object) -> fields.String:
    return fields.String(required=required, metadata=metadata)


def _strs(required: bool = True, **metadata: object) -> fields.List:
    return fields.List(fields.String(), required=required, metadata=metadata)


# ---- problems -----------------------------------------------------------------------------------


class FieldErrorSchema(_Doc):
    """A problem with the request body (`field` and `pointer`) or with a URL parameter (`parameter`)."""

    field = _str(required=False, description="Where, in dotted form: `profile.age`, `profiles[3].conditions[0]`.")
    pointer = _str(required=False, description="Where, as a JSON Pointer (RFC 6901) into the request body.")
    parameter = _str(
        required=False, description="The query or path parameter at fault (`limit`, `cursor`, `decision_id`)."
    )
    message = _str(description="What is wrong and what the field accepts.")
    allowed = fields.List(fields.Raw(), metadata={"description": "The values the field accepts, when a list."})
    minimum = fields.Integer(metadata={"description": "Smallest allowed whole number."})
    maximum = fields.Integer(metadata={"description": "Largest allowed whole number."})
    unit = fields.String(metadata={"description": "Unit of the number."})


class ProblemSchema(_Doc):
    """RFC 9457 problem details; some types add members (e.g. `allowed` for an unknown ruleset)."""

    class Meta:
        unknown = INCLUDE

    type = _str(description="`about:blank` or a `urn:hairloss-rules:problem:*` type listed in the README.")
    title = _str()
    status = fields.Integer(required=True)
    detail = _str(required=False)
    errors = fields.List(
        fields.Nested(FieldErrorSchema),
        metadata={"description": "The field problems at once (a profile's first 20; see `errorsOmitted`)."},
    )
    errorsOmitted = fields.Integer(
        metadata={"description": "How many more problems were found but not described (bounded work per request)."}
    )


# ---- rulesets -----------------------------------------------------------------------------------


class RulesetSummarySchema(_Doc):
    id = _str(description="Ruleset id, used in requests.")
    version = _str(description="Semantic version of the file.")
    title = _str()
    status = fields.String(required=True, validate=validate.OneOf(["draft", "testing", "production", "retired"]))
    sha256 = _str(description="SHA-256 of the exact file; every decision names it.")


class RulesetListSchema(_Doc):
    rulesets = fields.List(fields.Nested(RulesetSummarySchema), required=True)


class ValueSchema(_Doc):
    code = _str()
    label = _str()
    help = _str(required=False)


class InputSchema(_Doc):
    id = _str(description="The key of this input in a profile.")
    type = fields.String(required=True, validate=validate.OneOf(["enum", "ordered_enum", "boolean", "integer", "set"]))
    label = _str()
    help = _str()
    required = fields.Boolean(required=True)
    group = fields.String(required=True, allow_none=True)
    minimum = fields.Integer()
    maximum = fields.Integer()
    unit = fields.String()
    values = fields.List(fields.Nested(ValueSchema), metadata={"description": "Allowed codes, lowest first."})


class GroupSchema(_Doc):
    id = _str()
    label = _str()


class StrengthSchema(_Doc):
    id = _str()
    label = _str()
    description = _str()


class OptionEvidenceSchema(_Doc):
    level = _str()
    note = _str()


class OptionSchema(_Doc):
    id = _str()
    label = _str()
    kind = fields.String(required=True, validate=validate.OneOf(["treatment", "referral"]))
    summary = _str()
    regimen = fields.String(required=True, allow_none=True)
    course = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    cost = fields.String(required=True, allow_none=True)
    evidence = fields.Nested(OptionEvidenceSchema, required=True)
    caveats = _strs()
    references = _strs()


class ActionSchema(_Doc):
    kind = fields.String(required=True, validate=validate.OneOf(["recommend", "exclude", "caveat", "refer", "warn"]))
    options = _strs(required=False)
    strength = fields.String()
    text = _str()
    words = _str(description="The action in plain words.")


class RuleSchema(_Doc):
    id = _str()
    title = _str()
    description = fields.String(required=True, allow_none=True)
    when = fields.Dict(required=True, metadata={"description": "The condition in the file's own form."})
    when_words = _str(description="The condition in plain words.")
    then = fields.List(fields.Nested(ActionSchema), required=True)
    references = _strs()


class InvariantSchema(_Doc):
    id = _str()
    title = _str()
    kind = _str()
    options = _strs()
    when = fields.Dict(required=True, allow_none=True)
    when_words = fields.String(required=True, allow_none=True)
    status = fields.String(metadata={"description": "proven, refuted or undecided."})
    method = fields.String()


class ReferenceSchema(_Doc):
    id = _str()
    citation = _str()
    url = fields.String(required=True, allow_none=True)
    evidence = fields.String(required=True, allow_none=True)


class PersonSchema(_Doc):
    name = _str()
    role = _str()
    date = fields.String(allow_none=True)


class VerificationSchema(_Doc):
    tests = fields.Integer(required=True)
    tests_passed = fields.Integer(required=True)
    coverage_percent = fields.Float(required=True)
    crosscheck_profiles = fields.Integer(required=True)


class RulesetDetailSchema(RulesetSummarySchema):
    institution = _str()
    effective = _str(format="date")
    review_due = _str(format="date")
    purpose = _str()
    explanation = _str()
    keywords = _strs()
    authors = fields.List(fields.Nested(PersonSchema), required=True)
    reviewers = fields.List(fields.Nested(PersonSchema), required=True)
    groups = fields.List(fields.Nested(GroupSchema), required=True)
    inputs = fields.List(fields.Nested(InputSchema), required=True)
    strengths = fields.List(fields.Nested(StrengthSchema), required=True)
    options = fields.List(fields.Nested(OptionSchema), required=True)
    rules = fields.List(fields.Nested(RuleSchema), required=True)
    invariants = fields.List(fields.Nested(InvariantSchema), required=True)
    references = fields.List(fields.Nested(ReferenceSchema), required=True)
    verification = fields.Nested(VerificationSchema, required=True)


# ---- decisions ----------------------------------------------------------------------------------


# Generated from the decision's own type (service/engine/answer.py): what is sent is what is documented.
RulesetRefSchema = schema_for(answer.RulesetRef)
CitationSchema = schema_for(answer.Citation)
EvidenceSchema = schema_for(answer.Evidence)
CandidateSchema = schema_for(answer.Candidate)
ReferralSchema = schema_for(answer.Referral)
ReasonSchema = schema_for(answer.Reason)
ExclusionSchema = schema_for(answer.Exclusion)
WarningSchema = schema_for(answer.Warning)
PartialSchema = schema_for(answer.Partial)
ExplanationSchema = schema_for(answer.Explanation)
DecisionSchema = schema_for(answer.Decision)


class BatchItemErrorSchema(_Doc):
    index = fields.Integer(required=True, metadata={"description": "Position of the profile in `profiles`."})
    error = fields.Nested(ProblemSchema, required=True)


class HealthSchema(_Doc):
    status = _str()


class ReadinessSchema(_Doc):
    class Meta:
        unknown = INCLUDE  # the decision log adds its own keys (database reachability)

    status = _str()
    rulesets = fields.List(fields.Nested(RulesetSummarySchema), required=True)
    failures = fields.List(fields.Dict())
    warnings = fields.List(fields.String(), metadata={"description": "e.g. review overdue; the service still serves."})
    lifecycle = fields.Dict(metadata={"description": "Which worker refused which ruleset revision, and why."})
