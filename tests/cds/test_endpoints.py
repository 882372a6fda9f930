"""Discovery, request validation, error bodies (OperationOutcome) and CORS of the CDS Hooks endpoints."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from .conftest import ORDER_SELECT, PATIENT_VIEW, RULESET_ID
from .helpers import BASE, CdsClient, Ehr, hook_request
from .test_calls import full_prefetch

TOKEN_PATTERN = re.compile(r"\{\{([^{}]+)\}\}")
ALLOWED_TOKENS = {
    "context.patientId",
    "context.userId",
    "context.encounterId",
    "userPractitionerId",
    "userPractitionerRoleId",
    "userPatientId",
    "userRelatedPersonId",
}


def assert_outcome(resp: Any, status: int, expression: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/fhir+json"
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"] and all(i["severity"] == "error" and i["code"] and i["diagnostics"] for i in body["issue"])
    if expression is not None:
        assert any(expression in i.get("expression", []) for i in body["issue"]), body
    return body


# ---- discovery ------------------------------------------------------------------------------------


def test_discovery_lists_one_service_per_hook(cds: CdsClient) -> None:
    resp = cds.get("/cds-services")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    services = {s["id"]: s for s in resp.get_json()["services"]}
    assert set(services) == {f"{RULESET_ID}-patient-view", f"{RULESET_ID}-order-select", f"{RULESET_ID}-order-sign"}
    assert services[f"{RULESET_ID}-patient-view"]["hook"] == "patient-view"
    assert services[f"{RULESET_ID}-order-select"]["hook"] == "order-select"
    assert services[f"{RULESET_ID}-order-sign"]["hook"] == "order-sign"
    assert services[f"{RULESET_ID}-order-sign"]["prefetch"] == services[f"{RULESET_ID}-order-select"]["prefetch"]
    for service in services.values():
        for key in ("id", "hook", "title", "description", "prefetch", "usageRequirements", "version"):
            assert isinstance(service[key], str | dict) and service[key], key
        assert service["version"] == "2.0.1"
        assert "CDS fixture ruleset" in service["description"] and "1.2.0" in service["description"]
        for query in service["prefetch"].values():
            assert set(TOKEN_PATTERN.findall(query)) <= ALLOWED_TOKENS
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert "Extent of hair loss" in services[f"{RULESET_ID}-patient-view"]["usageRequirements"]
    assert "Oral finasteride" in services[f"{RULESET_ID}-order-select"]["description"]


def test_rulesets_without_a_mapping_or_not_in_production_offer_no_service(
    make_app: Callable[..., Flask], rulesets_dir: Path, ehr: Ehr
) -> None:
    (rulesets_dir / "cds-fixture.fhir.yaml").rename(rulesets_dir / "elsewhere.txt")
    cds = CdsClient(make_app().test_client(), ehr)
    assert cds.get("/cds-services").get_json() == {"services": []}


def test_a_broken_mapping_withdraws_its_services(make_app: Callable[..., Flask], rulesets_dir: Path, ehr: Ehr) -> None:
    path = rulesets_dir / "cds-fixture.fhir.yaml"
    path.write_text(path.read_text().replace("value: hyperkalaemia", "value: nope"), encoding="utf-8")
    cds = CdsClient(make_app().test_client(), ehr)
    assert cds.get("/cds-services").get_json() == {"services": []}
    assert_outcome(cds.post(PATIENT_VIEW, hook_request("patient-view")), 404)


# ---- errors --------------------------------------------------------------------------------------


def test_unknown_service(cds: CdsClient) -> None:
    body = assert_outcome(cds.post("/cds-services/nope", hook_request("patient-view")), 404)
    assert f"{RULESET_ID}-patient-view" in body["issue"][0]["diagnostics"]
    assert_outcome(cds.post("/cds-services/nope/feedback", {"feedback": []}), 404)
    assert_outcome(cds.get("/cds-services/a/b/c"), 404)


def test_wrong_methods(cds: CdsClient) -> None:
    resp = cds.client.put("/cds-services", headers=cds._auth("/cds-services", None))
    assert_outcome(resp, 405)
    assert resp.headers["Allow"] == "GET, OPTIONS"
    assert_outcome(cds.get(PATIENT_VIEW), 405)
    assert_outcome(cds.get(PATIENT_VIEW + "/feedback"), 405)


def test_malformed_json(cds: CdsClient) -> None:
    headers = {**cds._auth(PATIENT_VIEW, None), "Content-Type": "application/json"}
    body = assert_outcome(cds.client.post(PATIENT_VIEW, data=b'{"hook": ', headers=headers), 400)
    assert "not valid JSON" in body["issue"][0]["diagnostics"]
    headers = {**cds._auth(PATIENT_VIEW, None), "Content-Type": "application/json"}
    assert_outcome(cds.client.post(PATIENT_VIEW, data=b'{"hook": 1, "hook": 2}', headers=headers), 400)
    assert_outcome(cds.post(PATIENT_VIEW, ["not", "an", "object"]), 400)


def test_wrong_content_type(cds: CdsClient) -> None:
    headers = {**cds._auth(PATIENT_VIEW, None), "Content-Type": "text/plain"}
    assert_outcome(cds.client.post(PATIENT_VIEW, data=b"{}", headers=headers), 415)


def test_body_too_large(make_app: Callable[..., Flask], ehr: Ehr) -> None:
    cds = CdsClient(make_app(CDS_HOOKS_MAX_BODY_BYTES=2000).test_client(), ehr)
    request = hook_request(
        "patient-view", prefetch={"patient": {"resourceType": "Patient", "id": "p1", "x": "a" * 5000}}
    )
    assert_outcome(cds.post(PATIENT_VIEW, request), 413)


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        (lambda r: r.pop("hook"), "hook"),
        (lambda r: r.update(hook="order-select"), "hook"),
        (lambda r: r.pop("hookInstance"), "hookInstance"),
        (lambda r: r.update(hookInstance=""), "hookInstance"),
        (lambda r: r.pop("context"), "context"),
        (lambda r: r["context"].pop("patientId"), "context.patientId"),
        (lambda r: r["context"].update(userId="dr-1"), "context.userId"),
        (lambda r: r["context"].update(patientId="../etc"), "context.patientId"),
        (lambda r: r.update(fhirServer="not a url"), "fhirServer"),
        (lambda r: r.update(prefetch=["patient"]), "prefetch"),
        (lambda r: r.update(prefetch={"patient": "Patient/1"}), "prefetch.patient"),
        (
            lambda r: r.update(
                fhirAuthorization={
                    "access_token": "t",
                    "token_type": "Bearer",
                    "expires_in": 30,
                    "scope": "patient/*.read",
                    "subject": "s",
                }
            ),
            "fhirServer",
        ),
        (
            lambda r: r.update(
                fhirServer="https://ehr.example.org/fhir",
                fhirAuthorization={"access_token": "t", "token_type": "MAC", "expires_in": 30, "subject": "s"},
            ),
            "fhirAuthorization.token_type",
        ),
    ],
)
def test_invalid_requests_name_the_field(
    cds: CdsClient, change: Callable[[dict[str, Any]], Any], expression: str
) -> None:
    request = hook_request("patient-view")
    change(request)
    assert_outcome(cds.post(PATIENT_VIEW, request), 400, expression)


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        (lambda c: c.pop("selections"), "context.selections"),
        (lambda c: c.update(selections=[]), "context.selections"),
        (lambda c: c.pop("draftOrders"), "context.draftOrders"),
        (lambda c: c.update(draftOrders={"resourceType": "Patient"}), "context.draftOrders"),
        (lambda c: c.update(selections=["MedicationRequest/absent"]), "context.selections"),
        (lambda c: c.update(userId="Patient/p1"), "context.userId"),
    ],
)
def test_invalid_order_select_context(cds: CdsClient, change: Callable[[dict[str, Any]], Any], expression: str) -> None:
    context = {
        "selections": ["MedicationRequest/m1"],
        "draftOrders": {
            "resourceType": "Bundle",
            "entry": [{"resource": {"resourceType": "MedicationRequest", "id": "m1"}}],
        },
    }
    change(context)
    request = hook_request("order-select", context=context)
    assert_outcome(cds.post(ORDER_SELECT, request), 400, expression)


def test_feedback_body_errors(cds: CdsClient) -> None:
    path = PATIENT_VIEW + "/feedback"
    assert_outcome(cds.post(path, {"feedback": []}), 400, "feedback")
    assert_outcome(cds.post(path, {"items": []}), 400, "feedback")
    accepted = {"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-11-22T10:00:00Z"}
    assert_outcome(cds.post(path, {"feedback": [accepted]}), 400, "feedback[0].acceptedSuggestions")
    bad = {"card": "c", "outcome": "ignored", "outcomeTimestamp": "yesterday"}
    body = assert_outcome(cds.post(path, {"feedback": [bad]}), 400)
    expressions = {e for i in body["issue"] for e in i.get("expression", [])}
    assert {"feedback[0].outcome", "feedback[0].outcomeTimestamp"} <= expressions


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00"])
def test_feedback_with_an_instant_outside_the_utc_range_is_400(cds: CdsClient, timestamp: str) -> None:
    """An offset that carries the instant past year 9999 or before year 1 in UTC was a 500 (issue 16, item 7)."""
    item = {"card": "c", "outcome": "overridden", "outcomeTimestamp": timestamp}
    assert_outcome(cds.post(PATIENT_VIEW + "/feedback", {"feedback": [item]}), 400, "feedback[0].outcomeTimestamp")


# ---- CORS ----------------------------------------------------------------------------------------


def test_preflight_for_an_allowed_origin(make_app: Callable[..., Flask]) -> None:
    client = make_app(CDS_HOOKS_CORS_ORIGINS="https://sandbox.cds-hooks.org, https://ehr.example.org").test_client()
    headers = {
        "Origin": "https://sandbox.cds-hooks.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    for path in ("/cds-services", PATIENT_VIEW, PATIENT_VIEW + "/feedback"):
        resp = client.options(path, headers=headers)  # no JWT: browsers send none on preflight
        assert resp.status_code == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "https://sandbox.cds-hooks.org"
        assert set(resp.headers["Access-Control-Allow-Headers"].split(", ")) == {"Authorization", "Content-Type"}
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        assert "Origin" in resp.headers["Vary"]


def test_preflight_for_another_origin_gets_no_cors_headers(make_app: Callable[..., Flask]) -> None:
    client = make_app(CDS_HOOKS_CORS_ORIGINS="https://ehr.example.org").test_client()
    resp = client.options(PATIENT_VIEW, headers={"Origin": "https://evil.example.org"})
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Access-Control-Allow-Headers" not in resp.headers


def test_actual_responses_carry_the_origin_even_when_refused(make_app: Callable[..., Flask], ehr: Ehr) -> None:
    client = make_app(CDS_HOOKS_CORS_ORIGINS="https://ehr.example.org").test_client()
    origin = {"Origin": "https://ehr.example.org"}
    refused = client.get("/cds-services", headers=origin)
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"
    token = ehr.token(BASE + "/cds-services")
    ok = client.get("/cds-services", headers={**origin, "Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"


def test_wildcard_origin_for_local_trials(make_app: Callable[..., Flask]) -> None:
    client = make_app(CDS_HOOKS_CORS_ORIGINS="*").test_client()
    resp = client.options("/cds-services", headers={"Origin": "http://localhost:3000"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_openapi_documents_the_cds_paths(cds: CdsClient) -> None:
    paths = cds.client.get("/openapi.json").get_json()["paths"]
    assert {"/cds-services", "/cds-services/{service_id}", "/cds-services/{service_id}/feedback"} <= set(paths)


def test_the_topic_comes_from_public_base_url_not_the_request(make_app: Callable[..., Flask], ehr: Ehr) -> None:
    app = make_app(PUBLIC_BASE_URL="https://rules.example-hospital.org")
    try:
        client = app.test_client()
        path = PATIENT_VIEW
        url = "https://rules.example-hospital.org" + path  # the JWT audience is the public URL
        resp = client.post(
            path,
            json=hook_request("patient-view", prefetch=full_prefetch()),
            headers={"Authorization": f"Bearer {ehr.token(url)}"},
            base_url="http://10.0.0.7:8000",
        )
        assert resp.status_code == 200, resp.get_data(as_text=True)
        for card in resp.get_json()["cards"]:
            assert card["source"]["topic"]["system"] == "https://rules.example-hospital.org/rulesets"
            assert card["source"]["topic"]["code"] == RULESET_ID
            assert all(link["url"].startswith("https://rules.example-hospital.org/") for link in card["links"])
    finally:
        app.extensions["decision_log"].close()


def test_bearer_in_any_case_is_accepted(cds: CdsClient) -> None:
    auth = {"access_token": "t", "token_type": "bearer", "expires_in": 30, "scope": "patient/*.read", "subject": "s"}
    request = hook_request(
        "patient-view", prefetch=full_prefetch(), fhirServer="https://ehr.example.org/fhir", fhirAuthorization=auth
    )
    assert cds.post(PATIENT_VIEW, request).status_code == 200
