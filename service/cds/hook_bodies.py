"""The shapes of a CDS Hooks request and of a feedback report, checked field by field (marshmallow).

Every problem becomes one OperationOutcome issue whose `expression` is the JSON path of the field, so the
EHR team can find it in their logs. Unknown top-level keys (`extension`, future fields) are ignored.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from .outcome import Issue, OutcomeError

NON_EMPTY = validate.Length(min=1)
USER_TYPES = {
    "patient-view": ("Practitioner", "PractitionerRole", "Patient", "RelatedPerson"),
    "order-select": ("Practitioner", "PractitionerRole"),
    "order-sign": ("Practitioner", "PractitionerRole"),
}


def _bearer(value: str) -> bool:
    if value.lower() != "bearer":
        raise ValidationError("must be Bearer (any case)")
    return True


class FhirAuthorization(Schema):
    class Meta:
        unknown = EXCLUDE

    access_token = fields.String(required=True, validate=NON_EMPTY)
    # "Bearer" by the spec; RFC 6749 §5.1 makes token_type case-insensitive, and EHRs send "bearer".
    token_type = fields.String(required=True, validate=_bearer)
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


class OrderSignContext(PatientViewContext):
    """order-sign (CDS Hooks Library, hookVersion 1.0): every order to be signed is in `draftOrders`; their
    status may not be draft (a revised order signed again)."""

    userId = fields.String(required=True, validate=_reference(USER_TYPES["order-sign"]))
    draftOrders = fields.Dict(required=True)

    @validates_schema
    def _draft_orders_bundle(self, data: dict[str, Any], **_: Any) -> None:
        bundle = data.get("draftOrders") or {}
        if bundle.get("resourceType") != "Bundle" or not isinstance(bundle.get("entry"), list):
            raise ValidationError("must be a FHIR Bundle with an `entry` list", "draftOrders")


class OrderSelectContext(OrderSignContext):
    userId = fields.String(required=True, validate=_reference(USER_TYPES["order-select"]))
    selections = fields.List(fields.String(validate=NON_EMPTY), required=True, validate=NON_EMPTY)

    @validates_schema
    def _selections_in_draft_orders(self, data: dict[str, Any], **_: Any) -> None:
        bundle = data.get("draftOrders") or {}
        entries = bundle.get("entry")
        if bundle.get("resourceType") != "Bundle" or not isinstance(entries, list):
            return  # said by _draft_orders_bundle
        ids = {
            f"{e['resource'].get('resourceType')}/{e['resource'].get('id')}"
            for e in entries
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        }
        missing = [s for s in data.get("selections") or [] if s not in ids]
        if missing:
            raise ValidationError(f"{missing[0]} is not an entry of draftOrders", "selections")


CONTEXTS: dict[str, type[Schema]] = {
    "patient-view": PatientViewContext,
    "order-select": OrderSelectContext,
    "order-sign": OrderSignContext,
}


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
        # A plain-http fhirServer is accepted (the 2.0.1 spec's own example has one): the service then
        # never reads it with the token (service/cds/prefetch.py), and says so if it needed to.
        if "fhirAuthorization" in data and "fhirServer" not in data:
            raise ValidationError("fhirServer is required when fhirAuthorization is given", "fhirServer")


def feedback(data: Any) -> list[dict[str, Any]]:
    """The `feedback` list; the decision log checks each item's fields when it stores them.

    Checked here is what the log does not know: CDS Hooks requires `acceptedSuggestions` with `accepted`.
    """
    if not isinstance(data, dict) or not isinstance(data.get("feedback"), list) or not data["feedback"]:
        raise OutcomeError(
            400, [Issue('the body must be {"feedback": [...]} with at least one item', expression="feedback")]
        )
    issues = [
        Issue(
            f"feedback[{i}].acceptedSuggestions: required when the outcome is `accepted`",
            expression=f"feedback[{i}].acceptedSuggestions",
        )
        for i, item in enumerate(data["feedback"])
        if isinstance(item, dict) and item.get("outcome") == "accepted" and not item.get("acceptedSuggestions")
    ]
    if issues:
        raise OutcomeError(400, issues)
    return data["feedback"]


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
