"""Card conformance for many generated patient records, on the fixture (over HTTP) and the default ruleset.

Whatever the record - absent, null or partial prefetch keys, unusual genders, imprecise dates, conflicting
codes - every answer is a 200 with conformant cards (or a 412 when the Patient cannot be had): uuid,
summary <= 139 characters, indicator, source, Markdown detail without HTML, links, coded override
reasons with displays, and no null or empty member anywhere.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import create_app
from service.cds import prefetch
from service.cds.cards import CardMaker
from service.cds.extract import extract, selected_orders
from service.cds.mapping import FhirMapping, load_mapping
from service.engine import Engine
from service.ruleset import Ruleset, load_file

from .conftest import DATA, ORDER_SELECT, PATIENT_VIEW, write_issuers
from .helpers import (
    BASE,
    SCT,
    CdsClient,
    Ehr,
    EhrKey,
    assert_conformant,
    bundle,
    condition,
    hook_request,
    med_request,
    observation,
    patient,
)

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.datetime.now(dt.UTC).date()
CONDITIONS = ["L64.9", "L64.0", "L63.0", "L65.9", "L66.1", "I50.9", "I50.22", "E87.5", "J45.909"]
MEDICATIONS = ["11289", "855304", "9997", "200820", "200172", "351172", "197987", "25025", "617314"]
ORDERABLE = ["200172", "213178", "315933", "351172", "996097", "350640", "197987", "1165358", "200825", "11289"]
KEYS = ["patient", "conditions", "medicationRequests", "medicationStatements", "procedures", "pregnancy", "lactation"]


def recent(days: int) -> str:
    return (TODAY - dt.timedelta(days=days)).isoformat()


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """A prefetch object: each key present with data, null, an empty Bundle, an OperationOutcome, or absent."""
    gender = draw(st.sampled_from(["male", "female", "other", "unknown", None]))
    born = draw(
        st.one_of(
            st.dates(dt.date(1915, 1, 1), TODAY - dt.timedelta(days=365 * 13)).map(dt.date.isoformat),
            st.integers(1930, 2005).map(str),
            st.none(),
        )
    )
    data: dict[str, Any] = {
        "patient": patient(gender=gender, birth=born),
        "conditions": bundle(*(condition(c) for c in draw(st.sets(st.sampled_from(CONDITIONS), max_size=4)))),
        "medicationRequests": bundle(
            *(
                med_request(m, rid=f"m{i}")
                for i, m in enumerate(draw(st.sets(st.sampled_from(MEDICATIONS), max_size=3)))
            )
        ),
        "medicationStatements": None,
        "procedures": bundle(
            *(
                [
                    {
                        "resourceType": "Procedure",
                        "id": "t1",
                        "status": "completed",
                        "subject": {"reference": "Patient/p1"},
                        "code": {"coding": [{"system": SCT, "code": "265674004"}]},
                        "performedDateTime": recent(draw(st.integers(0, 3000))),
                    }
                ]
                if draw(st.booleans())
                else []
            )
        ),
        "pregnancy": bundle(
            *(
                [observation("82810-3", answer, recent(draw(st.integers(0, 60))))]
                if (answer := draw(st.sampled_from([None, "LA15173-0", "LA26683-5"])))
                else []
            )
        ),
        "lactation": bundle(
            *(
                [observation("63895-7", answer, recent(draw(st.integers(0, 120))))]
                if (answer := draw(st.sampled_from([None, "LA29252-6", "LA29253-4"])))
                else []
            )
        ),
    }
    for key in KEYS:
        shape = draw(st.sampled_from(["data", "data", "data", "null", "absent", "outcome"]))
        if shape == "null":
            data[key] = None
        elif shape == "absent":
            del data[key]
        elif shape == "outcome":
            data[key] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    return data


def draft_orders(codes: list[str]) -> dict[str, Any]:
    entries = [{"resource": {**med_request(c, rid=f"d{i}"), "status": "draft"}} for i, c in enumerate(codes)]
    return {
        "selections": [f"MedicationRequest/d{i}" for i in range(len(codes))],
        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": entries},
    }


# ---- over HTTP, fixture ruleset ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CdsClient]:
    tmp = tmp_path_factory.mktemp("conformance")
    folder = tmp / "rulesets"
    folder.mkdir()
    for name in ("cds-fixture.yaml", "cds-fixture.fhir.yaml"):
        shutil.copy(DATA / name, folder / name)
    ehr = Ehr("https://ehr.example.org", [EhrKey.generate("ES384")])
    issuers = write_issuers(tmp / "issuers.json", [{"iss": ehr.iss, "jwks": ehr.jwks}])
    app: Flask = create_app(
        {
            "RULESETS_DIR": str(folder),
            "INSTANCE_PATH": str(tmp / "instance"),
            "CDS_HOOKS_ISSUERS": str(issuers),
            "PUBLIC_BASE_URL": BASE,
        }
    )
    yield CdsClient(app.test_client(), ehr)
    app.extensions["decision_log"].close()


def check_answer(resp: Any, record: dict[str, Any]) -> list[dict[str, Any]]:
    # Absent or an OperationOutcome, with no FHIR server to ask: 412. `null` means "no such data": 200.
    unobtainable = "patient" not in record or (record["patient"] or {}).get("resourceType") == "OperationOutcome"
    if unobtainable:
        assert resp.status_code == 412, resp.get_data(as_text=True)
        return []
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return assert_conformant(resp.get_json())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=records())
def test_patient_view_cards_conform(http: CdsClient, record: dict[str, Any]) -> None:
    resp = http.post(PATIENT_VIEW, hook_request("patient-view", prefetch=record))
    cards = check_answer(resp, record)
    if resp.status_code == 200:
        assert cards, "a patient-view answer always says something (options, exclusions or missing facts)"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=records(), orders=st.lists(st.sampled_from(ORDERABLE), min_size=1, max_size=3))
def test_order_select_cards_conform(http: CdsClient, record: dict[str, Any], orders: list[str]) -> None:
    request = hook_request("order-select", prefetch=record, context=draft_orders(orders))
    cards = check_answer(http.post(ORDER_SELECT, request), record)
    assert all(c["indicator"] in ("warning", "critical") for c in cards if "cannot be assessed" not in c["summary"])


# ---- module API, the default ruleset and its mapping ---------------------------------------------------


@pytest.fixture(scope="module")
def default() -> tuple[Ruleset, FhirMapping, Engine]:
    ruleset = load_file(ROOT / "rulesets" / "androgenetic-alopecia.yaml")
    mapping = load_mapping(ROOT / "rulesets" / "androgenetic-alopecia.fhir.yaml", ruleset)
    return ruleset, mapping, Engine(ruleset)


def cards_for(
    default: tuple[Ruleset, FhirMapping, Engine], record: dict[str, Any], orders: list[str] | None = None
) -> list[dict[str, Any]]:
    """What the CDS channel answers for a record, built from the same parts as service/http/cds_hooks/routes.py."""
    ruleset, mapping, engine = default
    body = {"context": {"patientId": "p1", "userId": "Practitioner/dr-1"}, "prefetch": record}
    data, _keys = prefetch.gather(mapping, body, timeout=1)
    extraction = extract(mapping, ruleset, data, TODAY)
    maker = CardMaker(ruleset, extraction, "https://cds.example.org/form", "https://cds.example.org/r", "urn:x")
    if "age" not in extraction.profile:
        return maker.cannot_decide(["age"])
    profile = engine.check(extraction.profile, partial=True)
    decision = engine.decide_partial(profile)
    maker.undecided = [{"rule": r.id, "fields": f} for r, f in engine.undecided(profile, list(decision.fired_rules))]
    if orders is None:
        return maker.patient_view(decision)
    return maker.order_select(decision, selected_orders(mapping, draft_orders(orders)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=records(), orders=st.none() | st.lists(st.sampled_from(ORDERABLE), min_size=1, max_size=3))
def test_default_ruleset_cards_conform(
    default: tuple[Ruleset, FhirMapping, Engine], record: dict[str, Any], orders: list[str] | None
) -> None:
    if not isinstance(record.get("patient"), dict) or record["patient"]["resourceType"] != "Patient":
        record["patient"] = patient()  # without it the answer is a 412, tested over HTTP above
    assert_conformant({"cards": cards_for(default, record, orders)})


def test_default_ruleset_pregnant_woman_ordering_finasteride_is_critical(
    default: tuple[Ruleset, FhirMapping, Engine],
) -> None:
    record = {
        "patient": patient(gender="female", birth="1992-04-01"),
        "conditions": bundle(condition("L64.9")),
        "pregnancy": bundle(observation("82810-3", "LA15173-0", recent(3))),
    }
    cards = cards_for(default, record, ["200172"])
    assert [c["indicator"] for c in cards] == ["critical"]
    assert cards[0]["summary"].startswith("Oral finasteride is excluded for this patient")


def test_default_ruleset_man_ordering_finasteride_warns_about_the_unrecorded_response(
    default: tuple[Ruleset, FhirMapping, Engine],
) -> None:
    record = {"patient": patient(), "conditions": bundle(condition("L64.9")), "medicationRequests": bundle()}
    cards = cards_for(default, record, ["200172"])
    assert [c["indicator"] for c in cards] == ["warning"]
    assert "prior finasteride" in cards[0]["summary"]


def test_default_ruleset_heart_failure_excludes_oral_minoxidil_with_certainty(
    default: tuple[Ruleset, FhirMapping, Engine],
) -> None:
    record = {"patient": patient(), "conditions": bundle(condition("L64.9"), condition("I50.9"))}
    cards = cards_for(default, record, ["197987"])
    assert [c["indicator"] for c in cards] == ["critical"]
    assert cards[0]["summary"].startswith("Low-dose oral minoxidil is excluded for this patient")


def test_default_ruleset_patient_view_lists_the_facts_the_form_must_complete(
    default: tuple[Ruleset, FhirMapping, Engine],
) -> None:
    record = {key: None for key in KEYS} | {"patient": patient(), "conditions": bundle(condition("L64.9"))}
    cards = cards_for(default, record)
    facts = next(c for c in cards if c["summary"].startswith("Record"))
    for label in ("Pattern of hair loss", "Prior finasteride", "Hair transplant history"):
        assert label in facts["detail"]
    assert str(uuid.UUID(facts["uuid"])) == facts["uuid"]


def test_default_ruleset_card_details_give_the_reason_and_the_patients_facts_in_600_characters(
    default: tuple[Ruleset, FhirMapping, Engine],
) -> None:
    record = {"patient": patient(), "conditions": bundle(condition("L64.9"), condition("I50.9"))}
    cards = cards_for(default, record)
    for card in cards:
        assert len(card.get("detail", "")) <= 600, card["detail"]
    excluded = next(c for c in cards if c["summary"].startswith("Not suitable"))
    line = next(x for x in excluded["detail"].splitlines() if "**Low-dose oral minoxidil**" in x)
    assert "Relevant conditions include Heart failure" in line  # the patient's fact, next to the short reason
    facts = next(c for c in cards if c["summary"].startswith("Record"))
    assert "**Pattern of hair loss**" in facts["detail"]  # labels first; each input's help is on the linked form
