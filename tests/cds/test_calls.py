"""Service calls end to end: prefetch or FHIR server -> partial profile -> decision -> recorded cards."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from sqlalchemy import func, select

from service.decisions.models import Card, Decision, Feedback

from .conftest import ORDER_SELECT, PATIENT_VIEW
from .helpers import (
    OUTCOME,
    CdsClient,
    Ehr,
    FhirStandIn,
    assert_conformant,
    bundle,
    condition,
    hook_request,
    med_request,
    observation,
    patient,
)


def full_prefetch(**overrides: Any) -> dict[str, Any]:
    """Everything the mapping asks for, for a 46-year-old man with androgenetic alopecia and nothing else."""
    data: dict[str, Any] = {
        "patient": patient(),
        "conditions": bundle(condition("L64.9")),
        "medicationRequests": bundle(),
        "medicationStatements": None,
        "procedures": bundle(),
        "pregnancy": None,
        "lactation": None,
    }
    data.update(overrides)
    return data


def woman(**overrides: Any) -> dict[str, Any]:
    return full_prefetch(patient=patient(gender="female", birth="1990-03-01"), **overrides)


def order_context(*codes: str) -> dict[str, Any]:
    entries = [{"resource": {**med_request(code, rid=f"draft-{i}"), "status": "draft"}} for i, code in enumerate(codes)]
    return {
        "selections": [f"MedicationRequest/draft-{i}" for i in range(len(codes))],
        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": entries},
    }


def count(app: Flask, model: Any, *where: Any) -> int:
    with app.extensions["decision_log"].engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


# ---- patient-view --------------------------------------------------------------------------------


def test_patient_view_cards_are_certain_and_name_the_missing_facts(cds: CdsClient, app: Flask) -> None:
    request = hook_request("patient-view", prefetch=woman(conditions=bundle(condition("L64.9"), condition("I50.9"))))
    resp = cds.post(PATIENT_VIEW, request)
    assert resp.status_code == 200
    cards = assert_conformant(resp.get_json())
    summaries = [c["summary"] for c in cards]
    assert summaries[0] == "Treatment options to consider: Topical minoxidil"
    # Spironolactone is not a certain option: an unrecorded pregnancy would exclude it.
    also = next(line for line in cards[0]["detail"].splitlines() if "also possible" in line)
    assert "Spironolactone" in also and "Platelet-rich plasma" in also
    # Oral minoxidil is excluded for her heart failure; oral finasteride only because she is a woman ("not for
    # women" is who the option is for, not news about this patient): no card says it.
    assert any(s.startswith("Not suitable") and "Oral minoxidil" in s for s in summaries)
    assert not any("Oral finasteride" in s for s in summaries if s.startswith("Not suitable"))
    facts = next(c for c in cards if c["summary"].startswith("Record"))
    assert "Extent of hair loss" in facts["summary"] and "Response to finasteride" in facts["summary"]
    # Pregnancy is not recorded for a woman: the card says which options it decides.
    assert "Pregnant" in facts["detail"] and "Spironolactone" in facts["detail"]
    # The link opens the form prefilled with what the record gives, and nothing else.
    link = urlsplit(facts["links"][0]["url"])
    assert link.path == "/rulesets/cds-fixture/try"
    assert parse_qs(link.query, keep_blank_values=True) == {
        "sex": ["female"],
        "age": ["36"],
        "diagnosis": ["androgenetic_alopecia"],
        "conditions": ["heart_failure"],
        "medications": [""],  # read in full: recorded as none
    }
    # Recorded before answering, with every card.
    assert count(app, Decision, Decision.channel == "cds-hooks") == 1
    assert count(app, Card, Card.uuid.in_([c["uuid"] for c in cards])) == len(cards)


def test_the_form_link_really_prefills_the_form(cds: CdsClient) -> None:
    cards = cds.post(PATIENT_VIEW, hook_request("patient-view", prefetch=full_prefetch())).get_json()["cards"]
    url = urlsplit(cards[0]["links"][0]["url"])
    page = cds.client.get(f"{url.path}?{url.query}")
    assert page.status_code == 200
    assert 'value="46"' in page.get_data(as_text=True)


def test_reasons_that_hold_only_for_some_missing_values_are_not_shown_as_facts(cds: CdsClient) -> None:
    request = hook_request(
        "patient-view", prefetch=woman(pregnancy=bundle(observation("82810-3", "LA15173-0", "2026-11-20")))
    )
    cards = assert_conformant(cds.post(PATIENT_VIEW, request).get_json())
    excluded = next(c for c in cards if c["summary"].startswith("Not suitable"))
    assert "Not in pregnancy or breastfeeding." in excluded["detail"]
    assert "did not work before" not in excluded["detail"]  # depends on the unrecorded finasteride response


def test_markup_in_ruleset_texts_is_escaped(cds: CdsClient) -> None:
    request = hook_request(
        "patient-view", prefetch=full_prefetch(conditions=bundle(condition("L64.9"), condition("I50.9")))
    )
    cards = assert_conformant(cds.post(PATIENT_VIEW, request).get_json())
    assert any("&lt;contraindicates&gt;" in c.get("detail", "") for c in cards)


def test_without_a_birth_date_no_decision_is_made(cds: CdsClient, app: Flask) -> None:
    request = hook_request("patient-view", prefetch=full_prefetch(patient=patient(birth=None)))
    cards = assert_conformant(cds.post(PATIENT_VIEW, request).get_json())
    assert len(cards) == 1 and cards[0]["indicator"] == "info"
    assert cards[0]["summary"] == "Treatment options cannot be assessed: record Age"
    assert count(app, Decision) == 0


def test_patient_data_unobtainable_is_412(cds: CdsClient, app: Flask) -> None:
    prefetch = full_prefetch()
    del prefetch["patient"]
    resp = cds.post(PATIENT_VIEW, hook_request("patient-view", prefetch=prefetch))
    assert resp.status_code == 412 and resp.mimetype == "application/fhir+json"
    issue = resp.get_json()["issue"][0]
    assert issue["code"] == "processing" and issue["expression"] == ["prefetch.patient"]
    resp = cds.post(PATIENT_VIEW, hook_request("patient-view", prefetch=full_prefetch(patient=OUTCOME)))
    assert resp.status_code == 412
    assert count(app, Decision) == 0


def test_prefetch_absent_is_read_from_the_fhir_server(cds: CdsClient) -> None:
    server = FhirStandIn("token-xyz", [patient(), condition("L64.9"), condition("I50.9"), med_request("11289")])
    try:
        request = hook_request(
            "patient-view",
            fhirServer=server.base,
            fhirAuthorization={
                "access_token": "token-xyz",
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "patient/*.read",
                "subject": "hairloss-cds",
            },
        )
        cards = assert_conformant(cds.post(PATIENT_VIEW, request).get_json())
    finally:
        server.close()
    excluded = next(c for c in cards if c["summary"].startswith("Not suitable"))
    assert "Oral minoxidil" in excluded["detail"] and "Platelet-rich plasma" in excluded["detail"]
    assert all(r["headers"]["authorization"] == "Bearer token-xyz" for r in server.requests)
    assert len(server.requests) == 7  # one per prefetch key


def test_incomplete_sources_are_said(cds: CdsClient) -> None:
    prefetch = full_prefetch(conditions=OUTCOME)  # the EHR failed to prefetch conditions; no server to ask
    cards = assert_conformant(cds.post(PATIENT_VIEW, hook_request("patient-view", prefetch=prefetch)).get_json())
    facts = next(c for c in cards if c["summary"].startswith("Record"))
    assert "**Relevant conditions** (the record could not be read in full)" in facts["detail"]
    assert "**Diagnosis** (the record could not be read in full)" in facts["detail"]


def test_recording_failure_is_503_and_no_cards(make_app: Callable[..., Flask], ehr: Ehr, tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    app = make_app(DATABASE_URL=f"sqlite:///{folder / 'log.sqlite3'}", CDS_HOOKS_AUTH="disabled")
    app.extensions["decision_log"].engine.dispose()
    shutil.rmtree(folder)
    resp = CdsClient(app.test_client(), ehr).post(PATIENT_VIEW, hook_request("patient-view", prefetch=full_prefetch()))
    assert resp.status_code == 503 and resp.get_json()["resourceType"] == "OperationOutcome"
    assert "cards" not in resp.get_json()


# ---- order-select --------------------------------------------------------------------------------


def test_ordering_an_option_excluded_in_every_completion_is_critical(cds: CdsClient) -> None:
    pregnant = woman(pregnancy=bundle(observation("82810-3", "LA15173-0", "2026-11-20")))
    request = hook_request("order-select", prefetch=pregnant, context=order_context("200172"))
    cards = assert_conformant(cds.post(ORDER_SELECT, request).get_json())
    assert [c["indicator"] for c in cards] == ["critical"]
    assert cards[0]["summary"].startswith("Oral finasteride is excluded for this patient: Not in pregnancy")
    assert "MedicationRequest/draft-0" in cards[0]["detail"]


def test_ordering_an_option_some_missing_facts_exclude_is_a_warning_naming_them(cds: CdsClient) -> None:
    request = hook_request("order-select", prefetch=full_prefetch(), context=order_context("200172"))
    cards = assert_conformant(cds.post(ORDER_SELECT, request).get_json())
    assert [c["indicator"] for c in cards] == ["warning"]
    assert cards[0]["summary"] == "Oral finasteride may be unsuitable: it depends on response to finasteride"
    assert "Finasteride did not work before." in cards[0]["detail"]


def test_an_unrecorded_optional_fact_that_would_exclude_is_a_warning(cds: CdsClient) -> None:
    request = hook_request("order-select", prefetch=woman(), context=order_context("200820"))  # spironolactone
    cards = assert_conformant(cds.post(ORDER_SELECT, request).get_json())
    assert [c["indicator"] for c in cards] == ["warning"]
    assert "pregnant" in cards[0]["summary"] and "breastfeeding" in cards[0]["summary"]


def test_ordering_a_suitable_option_gives_no_card(cds: CdsClient, app: Flask) -> None:
    not_pregnant = woman(
        pregnancy=bundle(observation("82810-3", "LA26683-5", "2026-11-20")),
        lactation=bundle(observation("63895-7", "LA29253-4", "2026-11-20")),
    )
    request = hook_request("order-select", prefetch=not_pregnant, context=order_context("200820"))
    resp = cds.post(ORDER_SELECT, request)
    assert resp.status_code == 200 and resp.get_json() == {"cards": []}
    assert count(app, Decision) == 1  # the answer "nothing to say" is recorded too


def test_an_unmapped_selected_drug_gives_no_card(cds: CdsClient) -> None:
    request = hook_request("order-select", prefetch=full_prefetch(), context=order_context("11289"))
    assert cds.post(ORDER_SELECT, request).get_json() == {"cards": []}


# ---- feedback -------------------------------------------------------------------------------------


@pytest.fixture
def issued(cds: CdsClient) -> Iterator[list[dict[str, Any]]]:
    request = hook_request("patient-view", prefetch=woman(conditions=bundle(condition("L64.9"), condition("I50.9"))))
    yield cds.post(PATIENT_VIEW, request).get_json()["cards"]


def test_feedback_is_stored_once_and_linked_to_the_card_and_decision(
    cds: CdsClient, app: Flask, issued: list[dict[str, Any]]
) -> None:
    card = issued[1]
    reason = card["overrideReasons"][0]
    item = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": {"system": reason["system"], "code": reason["code"]}, "userComment": "Discussed"},
        "outcomeTimestamp": "2026-11-22T10:15:00.52Z",
    }
    path = PATIENT_VIEW + "/feedback"
    assert cds.post(path, {"feedback": [item]}).status_code == 200
    assert cds.post(path, {"feedback": [item]}).status_code == 200  # repeated by the EHR
    assert cds.post(path, {"feedback": [item, item]}).status_code == 200
    assert count(app, Feedback) == 1
    with app.extensions["decision_log"].engine.connect() as conn:
        row = conn.execute(select(Feedback.decision_id, Feedback.service_id, Feedback.outcome)).one()
        decision_id = conn.execute(select(Decision.decision_id)).scalar_one()
    assert tuple(row) == (decision_id, "cds-fixture-patient-view", "overridden")
    later = {**item, "outcomeTimestamp": "2026-11-22T11:00:00Z"}
    assert cds.post(path, {"feedback": [later]}).status_code == 200
    assert count(app, Feedback) == 2


def test_feedback_for_a_card_never_issued_is_refused(cds: CdsClient, issued: list[dict[str, Any]]) -> None:
    item = {"card": "not-a-card", "outcome": "overridden", "outcomeTimestamp": "2026-11-22T10:15:00Z"}
    resp = cds.post(PATIENT_VIEW + "/feedback", {"feedback": [item]})
    assert resp.status_code == 400
    assert resp.get_json()["issue"][0]["expression"] == ["feedback[0].card"]


def test_an_order_without_a_dose_form_says_which_form_is_excluded(cds: CdsClient) -> None:
    """ "Minoxidil 2.5 MG" (RxNorm SCDC) may be oral or topical: oral is excluded with heart failure, topical
    is not, so the card warns about the form rather than claiming it depends on unrecorded facts."""
    prefetch = full_prefetch(conditions=bundle(condition("L64.9"), condition("I50.9")))
    cards = assert_conformant(
        cds.post(
            ORDER_SELECT, hook_request("order-select", prefetch=prefetch, context=order_context("317430"))
        ).get_json()
    )
    assert [c["indicator"] for c in cards] == ["warning"], cards
    assert "check which form is ordered" in cards[0]["summary"]
    assert "does not say its dose form" in cards[0]["detail"]


# ---- actionable cards: suggestions, and feedback checked against them (issue 13 item 6) --------------


def heart_failure_woman_orders_oral_minoxidil(cds: CdsClient) -> dict[str, Any]:
    prefetch = woman(
        conditions=bundle(condition("L64.9"), condition("I50.9")),
        pregnancy=bundle(observation("82810-3", "LA26683-5", "2026-11-20")),
        lactation=bundle(observation("63895-7", "LA29253-4", "2026-11-20")),
    )
    request = hook_request("order-select", prefetch=prefetch, context=order_context("197987"))
    (card,) = assert_conformant(cds.post(ORDER_SELECT, request).get_json())
    return card


def test_a_critical_order_card_suggests_removing_the_order_or_ordering_a_candidate_instead(cds: CdsClient) -> None:
    card = heart_failure_woman_orders_oral_minoxidil(cds)
    assert card["indicator"] == "critical"
    assert card["selectionBehavior"] == "at-most-one"
    remove, instead = card["suggestions"]
    assert remove["isRecommended"] is True and "isRecommended" not in instead
    assert remove["actions"] == [
        {
            "type": "delete",
            "description": remove["actions"][0]["description"],
            "resourceId": "MedicationRequest/draft-0",
        }
    ]
    # Spironolactone is a candidate whatever the missing facts are, and the mapping has a product code for it.
    delete, create = instead["actions"]
    assert delete == remove["actions"][0]
    assert create["type"] == "create" and create["description"]
    order = create["resource"]
    assert order["resourceType"] == "MedicationRequest" and order["status"] == "draft" and order["intent"] == "order"
    assert order["subject"] == {"reference": "Patient/p1"}
    assert order["medicationCodeableConcept"]["coding"][0]["code"] == "200820"
    assert "dosageInstruction" not in order  # no dose is proposed
    assert len({remove["uuid"], instead["uuid"], card["uuid"]}) == 3


def test_accepted_feedback_names_suggestions_the_card_offered(cds: CdsClient, app: Flask) -> None:
    card = heart_failure_woman_orders_oral_minoxidil(cds)
    path = ORDER_SELECT + "/feedback"
    remove = card["suggestions"][0]["uuid"]

    def accepted(*ids: str, at: str = "2026-11-22T10:15:00Z") -> dict[str, Any]:
        return {
            "card": card["uuid"],
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": i} for i in ids],
            "outcomeTimestamp": at,
        }

    resp = cds.post(path, {"feedback": [accepted("never-issued")]})
    assert resp.status_code == 400
    assert resp.get_json()["issue"][0]["expression"] == ["feedback[0].acceptedSuggestions"]
    resp = cds.post(path, {"feedback": [accepted(remove, "never-issued")]})
    assert resp.status_code == 400
    assert count(app, Feedback) == 0
    assert cds.post(path, {"feedback": [accepted(remove)]}).status_code == 200
    assert count(app, Feedback) == 1
    with app.extensions["decision_log"].engine.connect() as conn:
        stored = conn.execute(select(Feedback.accepted_suggestions, Feedback.service_id)).one()
    assert tuple(stored) == (f'["{remove}"]', "cds-fixture-order-select")


def test_feedback_is_taken_only_by_the_service_that_issued_the_card(cds: CdsClient, app: Flask) -> None:
    card = heart_failure_woman_orders_oral_minoxidil(cds)
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-22T10:15:00Z"}
    resp = cds.post(PATIENT_VIEW + "/feedback", {"feedback": [item]})
    assert resp.status_code == 400
    issue = resp.get_json()["issue"][0]
    assert issue["expression"] == ["feedback[0].card"] and "cds-fixture-order-select" in issue["diagnostics"]
    assert count(app, Feedback) == 0
    assert cds.post(ORDER_SELECT + "/feedback", {"feedback": [item]}).status_code == 200


def test_a_card_without_suggestions_cannot_be_accepted(cds: CdsClient, issued: list[dict[str, Any]]) -> None:
    item = {
        "card": issued[0]["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": issued[0]["uuid"]}],
        "outcomeTimestamp": "2026-11-22T10:15:00Z",
    }
    resp = cds.post(PATIENT_VIEW + "/feedback", {"feedback": [item]})
    assert resp.status_code == 400 and resp.get_json()["issue"][0]["expression"] == ["feedback[0].outcome"]


def test_a_repeated_report_that_adds_information_is_refused_not_dropped(
    cds: CdsClient, app: Flask, issued: list[dict[str, Any]]
) -> None:
    path = PATIENT_VIEW + "/feedback"
    first = {"card": issued[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-22T10:15:00Z"}
    assert cds.post(path, {"feedback": [first]}).status_code == 200
    reason = issued[0]["overrideReasons"][0]
    richer = {**first, "overrideReason": {"reason": {"system": reason["system"], "code": reason["code"]}}}
    resp = cds.post(path, {"feedback": [richer]})
    assert resp.status_code == 409
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "conflict"
    assert "own outcomeTimestamp" in body["issue"][0]["diagnostics"]
    assert count(app, Feedback) == 1
    # The same information under its own timestamp is a new report, appended.
    assert cds.post(path, {"feedback": [{**richer, "outcomeTimestamp": "2026-11-22T10:16:00Z"}]}).status_code == 200
    assert count(app, Feedback) == 2


# ---- order-sign: the same checks for every order about to be signed (issue 13 item 6) --------------

ORDER_SIGN = ORDER_SELECT.replace("order-select", "order-sign")


def test_order_sign_checks_every_draft_order_like_order_select(cds: CdsClient) -> None:
    pregnant = woman(pregnancy=bundle(observation("82810-3", "LA15173-0", "2026-11-20")))
    context = order_context("200172", "11289")  # finasteride (excluded in pregnancy) and warfarin (not mapped)
    del context["selections"]
    context["draftOrders"]["entry"][0]["resource"]["status"] = "active"  # a revised order signed again
    cards = assert_conformant(
        cds.post(ORDER_SIGN, hook_request("order-sign", prefetch=pregnant, context=context)).get_json()
    )
    assert [c["indicator"] for c in cards] == ["critical"]
    assert cards[0]["summary"].startswith("Oral finasteride is excluded for this patient: Not in pregnancy")
    assert cards[0]["suggestions"][0]["actions"][0]["resourceId"] == "MedicationRequest/draft-0"
    remove = cards[0]["suggestions"][0]["uuid"]
    item = {
        "card": cards[0]["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": remove}],
        "outcomeTimestamp": "2026-11-22T10:15:00Z",
    }
    assert cds.post(ORDER_SIGN + "/feedback", {"feedback": [item]}).status_code == 200


def test_order_sign_needs_its_draft_orders_and_a_practitioner(cds: CdsClient) -> None:
    body = hook_request("order-sign", prefetch=full_prefetch())
    resp = cds.post(ORDER_SIGN, body)
    assert resp.status_code == 400 and resp.get_json()["issue"][0]["expression"] == ["context.draftOrders"]
    body = hook_request(
        "order-sign", prefetch=full_prefetch(), context={**order_context("200172"), "userId": "Patient/p1"}
    )
    resp = cds.post(ORDER_SIGN, body)
    assert resp.status_code == 400 and resp.get_json()["issue"][0]["expression"] == ["context.userId"]
    wrong_hook = hook_request("order-select", prefetch=full_prefetch(), context=order_context("200172"))
    assert cds.post(ORDER_SIGN, wrong_hook).status_code == 400
