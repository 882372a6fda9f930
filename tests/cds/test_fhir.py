"""FHIR resources to a profile (service/cds/extract.py) and prefetch gathering with the FHIR-server fallback."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from service.cds import prefetch
from service.cds.extract import FhirData, extract, selected_orders, whole_months, whole_years
from service.cds.mapping import FhirMapping, load_mapping
from service.cds.outcome import OutcomeError
from service.ruleset import Ruleset, load_file

from .conftest import DATA
from .helpers import (
    OUTCOME,
    RXNORM,
    SCT,
    FhirStandIn,
    bundle,
    coded,
    condition,
    med_request,
    observation,
    patient,
)

TODAY = dt.date(2026, 11, 22)
ALL_TYPES = {"Patient", "Condition", "Observation", "Procedure", "MedicationRequest", "MedicationStatement"}


@pytest.fixture(scope="module")
def ruleset() -> Ruleset:
    return load_file(DATA / "cds-fixture.yaml")


@pytest.fixture(scope="module")
def mapping(ruleset: Ruleset) -> FhirMapping:
    return load_mapping(DATA / "cds-fixture.fhir.yaml", ruleset)


def profile_of(mapping: FhirMapping, ruleset: Ruleset, *resources: dict[str, Any], complete: set[str] = ALL_TYPES):
    data = FhirData(complete=set(complete))
    for r in resources:
        data.resources.setdefault(r["resourceType"], []).append(r)
    return extract(mapping, ruleset, data, TODAY)


# ---- ages, dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "age"),
    [("1980-11-22", 46), ("1980-11-23", 45), ("2000-02-29", 26), ("1990-12", 35), ("1990-11", None), ("1980", None)],
)
def test_age_from_birth_date_in_whole_years(mapping: FhirMapping, ruleset: Ruleset, born: str, age: int | None) -> None:
    out = profile_of(mapping, ruleset, patient(birth=born))
    assert out.profile.get("age") == age
    if age is None:
        assert any("birth date is too imprecise" in n for n in out.notes)


def test_whole_years_and_months() -> None:
    assert whole_years(dt.date(2000, 2, 29), dt.date(2026, 2, 28)) == 25
    assert whole_years(dt.date(2000, 2, 29), dt.date(2026, 3, 1)) == 26
    assert whole_months(dt.date(2026, 5, 23), TODAY) == 5
    assert whole_months(dt.date(2026, 5, 22), TODAY) == 6


def test_age_outside_the_ruleset_range_is_not_used(mapping: FhirMapping, ruleset: Ruleset) -> None:
    out = profile_of(mapping, ruleset, patient(birth="2020-01-01"))
    assert "age" not in out.profile
    assert any("outside 12-100" in n for n in out.notes)


@pytest.mark.parametrize(
    ("gender", "sex"), [("male", "male"), ("female", "female"), ("other", None), ("unknown", None)]
)
def test_sex_from_gender(mapping: FhirMapping, ruleset: Ruleset, gender: str, sex: str | None) -> None:
    out = profile_of(mapping, ruleset, patient(gender=gender))
    assert out.profile.get("sex") == sex
    if sex is None:
        assert any("administrative gender" in n for n in out.notes)


# ---- conditions, observations, procedures, medications ----------------------------------------------


def test_conditions_by_icd10_category_and_snomed(mapping: FhirMapping, ruleset: Ruleset) -> None:
    out = profile_of(
        mapping, ruleset, patient(), condition("L64.9"), condition("I50.22"), condition("E87.5"), condition("J45")
    )
    assert out.profile["diagnosis"] == "androgenetic_alopecia"
    assert out.profile["conditions"] == ["heart_failure", "hyperkalaemia"]  # in the ruleset's order
    assert profile_of(mapping, ruleset, condition("87872006", SCT)).profile["diagnosis"] == "androgenetic_alopecia"


def test_inactive_or_refuted_conditions_do_not_count(mapping: FhirMapping, ruleset: Ruleset) -> None:
    refuted = condition("I50.9")
    refuted["verificationStatus"] = coded("http://terminology.hl7.org/CodeSystem/condition-ver-status", "refuted")
    out = profile_of(mapping, ruleset, condition("I50.1", status="resolved"), refuted)
    assert out.profile["conditions"] == []


def test_disagreeing_diagnoses_stay_unrecorded(mapping: FhirMapping, ruleset: Ruleset) -> None:
    out = profile_of(mapping, ruleset, condition("L64.9"), condition("L63.0"))
    assert "diagnosis" not in out.profile
    assert any("several values" in n for n in out.notes)


def test_a_set_is_whole_only_when_every_source_was_read(mapping: FhirMapping, ruleset: Ruleset) -> None:
    read_all = profile_of(mapping, ruleset, complete=ALL_TYPES)
    assert read_all.profile["conditions"] == [] and read_all.profile["medications"] == []
    assert "conditions" not in read_all.incomplete

    no_conditions = profile_of(mapping, ruleset, complete=ALL_TYPES - {"Condition"})
    assert "conditions" not in no_conditions.profile and "conditions" in no_conditions.incomplete

    # A contraindication found is kept even when another source could not be read.
    partly = profile_of(mapping, ruleset, med_request("11289"), complete=ALL_TYPES - {"MedicationStatement"})
    assert partly.profile["medications"] == ["anticoagulant"] and "medications" in partly.incomplete


def test_medications_match_on_ingredient_through_products(mapping: FhirMapping, ruleset: Ruleset) -> None:
    product = med_request("200820")  # Spironolactone 25 MG Oral Tablet [Aldactone] -> spironolactone
    stopped = med_request("11289", rid="m2", status="stopped")
    out = profile_of(mapping, ruleset, product, stopped)
    assert out.profile["medications"] == ["potassium_sparing_diuretic"]


def test_medication_reference_to_a_contained_medication_with_ingredients(
    mapping: FhirMapping, ruleset: Ruleset
) -> None:
    statement = {
        "resourceType": "MedicationStatement",
        "id": "s1",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "contained": [
            {
                "resourceType": "Medication",
                "id": "med",
                "code": {"text": "Compounded warfarin"},
                "ingredient": [{"itemCodeableConcept": coded(RXNORM, "11289")}],
            }
        ],
        "medicationReference": {"reference": "#med"},
    }
    assert profile_of(mapping, ruleset, statement).profile["medications"] == ["anticoagulant"]


def test_latest_recent_final_observation_decides(mapping: FhirMapping, ruleset: Ruleset) -> None:
    older = observation("82810-3", "LA15173-0", "2026-11-01")  # pregnant, three weeks ago
    newer = observation("82810-3", "LA26683-5", "2026-11-20")  # not pregnant, two days ago
    assert profile_of(mapping, ruleset, older, newer).profile["pregnant"] is False
    stale = observation("82810-3", "LA15173-0", "2026-09-01")  # beyond max_age_days: 30
    assert "pregnant" not in profile_of(mapping, ruleset, stale).profile
    preliminary = {**observation("63895-7", "LA29252-6", "2026-11-20"), "status": "preliminary"}
    assert "breastfeeding" not in profile_of(mapping, ruleset, preliminary).profile
    assert profile_of(mapping, ruleset, observation("63895-7", "LA29252-6", "2026-11-20")).profile["breastfeeding"]


def test_transplant_and_months_since(mapping: FhirMapping, ruleset: Ruleset) -> None:
    proc = {
        "resourceType": "Procedure",
        "id": "t1",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "code": coded("http://www.ama-assn.org/go/cpt", "15775"),
        "performedPeriod": {"start": "2026-07-01", "end": "2026-07-02"},
    }
    out = profile_of(mapping, ruleset, proc)
    assert out.profile["transplant_history"] is True and out.profile["months_since_transplant"] == 4
    planned = {**proc, "status": "preparation"}
    assert "transplant_history" not in profile_of(mapping, ruleset, planned).profile


def test_selected_orders_resolve_products_and_ingredients(mapping: FhirMapping) -> None:
    draft = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {**med_request("200172", rid="fin"), "status": "draft"}},
            {"resource": {**med_request("25025", rid="fin-generic"), "status": "draft"}},
            {"resource": {**med_request("197987", rid="minox"), "status": "draft"}},
            {"resource": {**med_request("11289", rid="warf"), "status": "draft"}},
        ],
    }
    context = {"selections": ["MedicationRequest/fin", "MedicationRequest/fin-generic", "MedicationRequest/warf"]}
    orders = selected_orders(mapping, {**context, "draftOrders": draft})
    assert [(o.reference, o.options) for o in orders] == [
        ("MedicationRequest/fin", ("oral_finasteride",)),
        ("MedicationRequest/fin-generic", ("oral_finasteride",)),
    ]


# ---- prefetch -----------------------------------------------------------------------------------


def request_body(prefetch_data: dict[str, Any] | None = None, server: FhirStandIn | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"context": {"patientId": "p1", "userId": "Practitioner/dr-1"}}
    if prefetch_data is not None:
        body["prefetch"] = prefetch_data
    if server is not None:
        body["fhirServer"] = server.base
        body["fhirAuthorization"] = {
            "access_token": server.token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds-service",
        }
    return body


@pytest.fixture
def fhir_server() -> Iterator[FhirStandIn]:
    server = FhirStandIn(
        "secret-access-token-123",
        [
            patient(),
            condition("I50.9"),
            condition("L64.9"),
            med_request("11289"),
            observation("82810-3", "LA26683-5", "2026-11-20"),
            patient("p2"),
            condition("E87.5", pid="p2"),
        ],
        page_size=1,
    )
    yield server
    server.close()


def test_full_prefetch_needs_no_server(mapping: FhirMapping) -> None:
    full = {key: bundle() for key in mapping.prefetch} | {"patient": patient()}
    data, keys = prefetch.gather(mapping, request_body(full), timeout=2)
    assert data.complete == ALL_TYPES
    assert keys["patient"].state == "prefetched" and keys["conditions"].state == "none"


def test_null_and_empty_bundle_mean_no_data(mapping: FhirMapping) -> None:
    values = {key: None for key in mapping.prefetch} | {"patient": patient(), "conditions": bundle()}
    data, keys = prefetch.gather(mapping, request_body(values), timeout=2)
    assert data.complete == ALL_TYPES and keys["medicationRequests"].state == "none"


def test_absent_keys_without_a_server_are_unavailable(mapping: FhirMapping) -> None:
    data, keys = prefetch.gather(mapping, request_body({"patient": patient()}), timeout=2)
    assert data.complete == {"Patient"}
    assert keys["conditions"].state == "unavailable"


def test_required_key_absent_without_a_server_is_412(mapping: FhirMapping) -> None:
    with pytest.raises(OutcomeError) as exc:
        prefetch.gather(mapping, request_body({"conditions": bundle()}), timeout=2)
    assert exc.value.status == 412
    assert exc.value.issues[0].expression == "prefetch.patient"


def test_operation_outcome_without_a_server_is_412_for_a_required_key(mapping: FhirMapping) -> None:
    with pytest.raises(OutcomeError) as exc:
        prefetch.gather(mapping, request_body({"patient": OUTCOME}), timeout=2)
    assert exc.value.status == 412


def test_absent_and_failed_keys_are_read_from_the_fhir_server(mapping: FhirMapping, fhir_server: FhirStandIn) -> None:
    data, keys = prefetch.gather(mapping, request_body({"conditions": OUTCOME}, fhir_server), timeout=2)
    assert keys["patient"].state == "fetched" and keys["conditions"].state == "fetched"
    assert len(data.of("Condition")) == 2  # two pages of one, followed on the same server
    assert data.complete == ALL_TYPES
    assert all(r["headers"]["authorization"] == "Bearer secret-access-token-123" for r in fhir_server.requests)
    assert {r["path"].split("?")[0] for r in fhir_server.requests} >= {"/fhir/Patient/p1", "/fhir/Condition"}


def test_a_failing_server_is_unavailable_not_fatal(mapping: FhirMapping, fhir_server: FhirStandIn) -> None:
    fhir_server.failing.add("MedicationRequest")
    data, keys = prefetch.gather(mapping, request_body({}, fhir_server), timeout=2)
    assert keys["medicationRequests"].state == "unavailable"
    assert "MedicationRequest" not in data.complete


def test_a_wrong_token_makes_the_required_key_412(mapping: FhirMapping, fhir_server: FhirStandIn) -> None:
    body = request_body({}, fhir_server)
    body["fhirAuthorization"]["access_token"] = "wrong"
    with pytest.raises(OutcomeError) as exc:
        prefetch.gather(mapping, body, timeout=2)
    assert exc.value.status == 412


def test_next_links_to_another_origin_are_not_followed(mapping: FhirMapping, fhir_server: FhirStandIn) -> None:
    page = bundle(condition("I50.9"), next_url="https://evil.example.org/fhir/Condition?page=2")
    data, keys = prefetch.gather(mapping, request_body({"patient": patient(), "conditions": page}, fhir_server), 2)
    assert keys["conditions"].complete is False and "Condition" not in data.complete
    assert not any("evil" in r["path"] for r in fhir_server.requests)


def test_prefetched_page_with_next_link_is_completed_from_the_server(
    mapping: FhirMapping, fhir_server: FhirStandIn
) -> None:
    first = bundle(condition("I50.9"), next_url=f"{fhir_server.base}/Condition?patient=p1&_offset=1")
    data, keys = prefetch.gather(mapping, request_body({"patient": patient(), "conditions": first}, fhir_server), 2)
    assert keys["conditions"].complete and [c["code"]["coding"][0]["code"] for c in data.of("Condition")] == [
        "I50.9",
        "L64.9",
    ]


def test_data_of_another_patient_is_refused(mapping: FhirMapping) -> None:
    with pytest.raises(OutcomeError) as exc:
        prefetch.gather(mapping, request_body({"patient": patient("p2")}), timeout=2)
    assert exc.value.status == 400
    with pytest.raises(OutcomeError):
        prefetch.gather(
            mapping, request_body({"patient": patient(), "conditions": bundle(condition("I50", pid="p2"))}), 2
        )


def test_the_access_token_is_never_logged(
    mapping: FhirMapping, fhir_server: FhirStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fhir_server.failing.update({"Condition", "Observation"})
    prefetch.gather(mapping, request_body({}, fhir_server), timeout=2)
    assert "unavailable" in caplog.text
    assert "secret-access-token-123" not in caplog.text
