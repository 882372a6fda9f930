"""The shapes of a CDS Hooks request and of a feedback report, checked field by field (marshmallow).

Every problem becomes one OperationOutcome issue whose `expression` is the JSON path of the field, so the
EHR team can find it in their logs. Unknown top-level keys (`extension`, future fields) are ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from .outcome import Issue, OutcomeError
from .urls import secure_enough

NON_EMPTY = validate.Length(min=1)
USER_TYPES = {
    "patient-view": ("Practitioner", "PractitionerRole", "Patient", "RelatedPerson"),
    "order-select": ("Practitioner", "PractitionerRole"),
}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class FhirAuthorization(Schema):
    class Meta:
        unknown = EXCLUDE

    access_token = fields.String(required=True, validate=NON_EMPTY)
    token_type = fields.String(required=True, validate=validate.OneOf(["Bearer"]))
    expires_in = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    scope = fields.String(required=True, validate=NON_EMPTY)
    subject = fields.String(required=True, validate=NON_EMPTY)
    patient = fields.String(validate=NON_EMPTY)


def _reference(types: tuple[str, ...]) -> validate.Validator:
    return validate.Regexp(
        rf"^({'|'.join(types)})/[A-Za-z0-9\-.]{{1,64}}$",
        error=f"must be a reference like {types[0]}/123 to a {', '.join(types)}",
    )


class PatientViewContext(Schema):
    class Meta:
        unknown = INCLUDE

    userId = fields.String(required=True, validate=_reference(USER_TYPES["patient-view"]))
    patientId = fields.String(
        required=True, validate=validate.Regexp(r"^[A-Za-z0-9\-.]{1,64}$", error="must be a FHIR id")
    )
    encounterId = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9\-.]{1,64}$", error="must be a FHIR id"))


class OrderSelectContext(PatientViewContext):
    userId = fields.String(required=True, validate=_reference(USER_TYPES["order-select"]))
    selections = fields.List(fields.String(validate=NON_EMPTY), required=True, validate=NON_EMPTY)
    draftOrders = fields.Dict(required=True)

    @validates_schema
    def _selections_in_draft_orders(self, data: dict[str, Any], **_: Any) -> None:
        bundle = data.get("draftOrders") or {}
        entries = bundle.get("entry")
        if bundle.get("resourceType") != "Bundle" or not isinstance(entries, list):
            raise ValidationError("must be a FHIR Bundle with an `entry` list", "draftOrders")
        ids = {
            f"{e['resource'].get('resourceType')}/{e['resource'].get('id')}"
            for e in entries
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        }
        missing = [s for s in data.get("selections") or [] if s not in ids]
        if missing:
            raise ValidationError(f"{missing[0]} is not an entry of draftOrders", "selections")


CONTEXTS: dict[str, type[Schema]] = {"patient-view": PatientViewContext, "order-select": OrderSelectContext}


class HookRequest(Schema):
    class Meta:
        unknown = EXCLUDE

    hook = fields.String(required=True, validate=NON_EMPTY)
    hookInstance = fields.String(required=True, validate=NON_EMPTY)
    fhirServer = fields.Url(schemes={"http", "https"}, require_tld=False)
    fhirAuthorization = fields.Nested(FhirAuthorization)
    context = fields.Dict(required=True)
    prefetch = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True))

    @validates_schema
    def _authorization_needs_server(self, data: dict[str, Any], **_: Any) -> None:
        if "fhirAuthorization" in data and "fhirServer" not in data:
            raise ValidationError("fhirServer is required when fhirAuthorization is given", "fhirServer")
        server = data.get("fhirServer")
        if "fhirAuthorization" in data and server and not secure_enough(server):
            raise ValidationError("must be https: the service sends the access token only over TLS", "fhirServer")


class FeedbackReason(Schema):
    class Meta:
        unknown = EXCLUDE

    reason = fields.Dict()
    userComment = fields.String(validate=NON_EMPTY)

    @validates_schema
    def _reason_or_comment(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ValidationError("give a `reason` Coding, a `userComment`, or both", "reason")
        reason = data.get("reason")
        if reason is not None and not all(isinstance(reason.get(k), str) and reason[k] for k in ("system", "code")):
            raise ValidationError("a Coding with `system` and `code`", "reason")


class SuggestionRef(Schema):
    id = fields.String(required=True, validate=NON_EMPTY)


class FeedbackItem(Schema):
    class Meta:
        unknown = EXCLUDE

    card = fields.String(required=True, validate=NON_EMPTY)
    outcome = fields.String(required=True, validate=validate.OneOf(["accepted", "overridden"]))
    acceptedSuggestions = fields.List(fields.Nested(SuggestionRef), validate=NON_EMPTY)
    overrideReason = fields.Nested(FeedbackReason)
    outcomeTimestamp = fields.String(required=True)

    @validates_schema
    def _conditional(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("outcome") == "accepted" and not data.get("acceptedSuggestions"):
            raise ValidationError("required when the outcome is `accepted`", "acceptedSuggestions")
        stamp = data.get("outcomeTimestamp", "")
        try:
            ok = bool(RFC3339.match(stamp)) and dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")) is not None
        except ValueError:
            ok = False
        if not ok:
            raise ValidationError(
                "must be an RFC 3339 date-time with a time zone, e.g. 2026-05-01T10:00:00Z", "outcomeTimestamp"
            )


class Feedback(Schema):
    class Meta:
        unknown = EXCLUDE

    feedback = fields.List(fields.Nested(FeedbackItem), required=True, validate=validate.Length(min=1, max=1000))


def issues_from(messages: Any, path: str = "") -> list[Issue]:
    """Flatten marshmallow's nested error dict into issues with JSON paths."""
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            sub = (
                f"{path}[{key}]"
                if isinstance(key, int)
                else (f"{path}.{key}" if path and key != "_schema" else path or str(key))
            )
            out.extend(issues_from(value, sub))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [Issue(f"{path}: {m}" if path else m, expression=path) for m in messages]
    if isinstance(messages, list):
        return [i for m in messages for i in issues_from(m, path)]
    return [Issue(f"{path}: {messages}", expression=path)]


def load(schema: Schema, data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise OutcomeError(400, [Issue(f"{prefix or 'the body'} must be a JSON object", expression=prefix)])
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise OutcomeError(400, issues_from(exc.messages, prefix)) from None


def hook_request(data: Any, hook: str) -> dict[str, Any]:
    """A checked hook call for a service registered on `hook`; raises OutcomeError(400)."""
    body = load(HookRequest(), data)
    if body["hook"] != hook:
        raise OutcomeError(
            400, [Issue(f"hook: this service answers `{hook}`, not `{body['hook']}`", expression="hook")]
        )
    body["context"] = load(CONTEXTS[hook](), body["context"], "context")
    return body


def feedback(data: Any) -> list[dict[str, Any]]:
    return load(Feedback(), data)["feedback"]
