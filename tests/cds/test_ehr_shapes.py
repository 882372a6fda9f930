"""Regression set of real-world FHIR shapes (issue 13), through the CDS Hooks HTTP endpoints of the
default ruleset and its mapping file, as an EHR sends them: Synthea's and SNOMED CT codes, code systems
by OID, RxNorm product codes, `medicationReference` in every form FHIR defines, patient references in
every form, pregnancy and diagnosis status in every shape.

The resources are in data/ehr-shapes.json, shaped as Synthea R4 and US Core servers produce them, and are
validated with `fhir.resources` (R4B models) so that a fixture that is not real FHIR fails here first.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from flask import Flask

from service import create_app

from .conftest import DATA, write_issuers
from .helpers import BASE, CdsClient, Ehr, FhirStandIn, assert_conformant, hook_request

ROOT = Path(__file__).resolve().parents[2]
RULESET = "androgenetic-alopecia"
PATIENT_VIEW = f"/cds-services/{RULESET}-patient-view"
ORDER_SELECT = f"/cds-services/{RULESET}-order-select"
SERVER = "https://ehr.example.org/fhir"
SHAPES: dict[str, dict[str, Any]] = json.loads((DATA / "ehr-shapes.json").read_text(encoding="utf-8"))


def shape(name: str) -> dict[str, Any]:
    return copy.deepcopy(SHAPES[name])


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_fixture_is_valid_fhir(name: str) -> None:
    resource = SHAPES[name]
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


# ---- an app on the default ruleset, with real JWTs --------------------------------------------------


@pytest.fixture(scope="module")
def real_app(tmp_path_factory: pytest.TempPathFactory, ehr: Ehr) -> Iterator[Flask]:
    folder = tmp_path_factory.mktemp("real")
    rulesets = folder / "rulesets"
    rulesets.mkdir()
    for name in (f"{RULESET}.yaml", f"{RULESET}.fhir.yaml", f"{RULESET}.tests.yaml"):
        shutil.copy(ROOT / "rulesets" / name, rulesets / name)
    issuers = write_issuers(folder / "issuers.json", [{"iss": ehr.iss, "jwks": ehr.jwks}])
    app = create_app(
        {
            "RULESETS_DIR": str(rulesets),
            "INSTANCE_PATH": str(folder / "instance"),
            "CDS_HOOKS_ISSUERS": str(issuers),
            "CDS_HOOKS_AUTH": "enabled",
            "PUBLIC_BASE_URL": BASE,
            "TESTING": True,
        }
    )
    yield app
    app.extensions["decision_log"].close()


@pytest.fixture
def real(real_app: Flask, ehr: Ehr) -> CdsClient:
    return CdsClient(real_app.test_client(), ehr)


def searchset(*resources: dict[str, Any], included: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """A search Bundle as a FHIR server returns it: absolute fullUrls, `match` and `include` entries."""

    def entry(r: dict[str, Any], mode: str) -> dict[str, Any]:
        return {"fullUrl": f"{SERVER}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": mode}}

    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [entry(r, "match") for r in resources] + [entry(r, "include") for r in included],
    }


def record(
    *conditions: dict[str, Any],
    patient: str = "patient_man",
    meds: tuple[dict[str, Any], ...] = (),
    included: tuple[dict[str, Any], ...] = (),
    observations: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """Every prefetch key the mapping asks for, for one patient."""
    return {
        "patient": shape(patient),
        "conditions": searchset(*conditions),
        "medicationRequests": searchset(*meds, included=included),
        "medicationStatements": None,
        "procedures": searchset(),
        "pregnancy": searchset(*observations),
        "lactation": None,
    }


def draft(code: str, rid: str = "draft-1", pid: str = "f1", **extra: Any) -> dict[str, Any]:
    order = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code}]
        },
    }
    order.update(extra)
    if "medicationReference" in extra:
        del order["medicationCodeableConcept"]
    return order


def order_select(
    client: CdsClient,
    prefetch: dict[str, Any],
    *orders: dict[str, Any],
    extra_entries: tuple[Any, ...] = (),
    **body: Any,
) -> Any:
    pid = prefetch["patient"]["id"]
    context = {
        "selections": [f"MedicationRequest/{o['id']}" for o in orders],
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": o} for o in orders] + list(extra_entries),
        },
    }
    return client.post(ORDER_SELECT, hook_request("order-select", pid, prefetch=prefetch, context=context, **body))


def cards_of(resp: Any) -> list[dict[str, Any]]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return assert_conformant(resp.get_json())


def indicators(resp: Any) -> list[str]:
    return [c["indicator"] for c in cards_of(resp)]


# ---- conditions: SNOMED CT, Synthea, ICD-10-CM by OID, patient references in every form ---------------


@pytest.mark.parametrize("hf", ["hf_synthea", "hf_snomed", "hf_icd_oid", "hf_versioned_subject", "hf_absolute_subject"])
def test_heart_failure_in_every_shape_makes_oral_minoxidil_critical(real: CdsClient, hf: str) -> None:
    resp = order_select(real, record(shape("aga"), shape(hf)), draft("197987"))
    cards = cards_of(resp)
    assert [c["indicator"] for c in cards] == ["critical"], cards
    assert cards[0]["summary"].startswith("Low-dose oral minoxidil is excluded for this patient")


@pytest.mark.parametrize("other", ["hf_other_patient_absolute", "hf_other_patient_versioned"])
def test_another_patients_data_is_refused_whatever_the_reference_form(real: CdsClient, other: str) -> None:
    resp = real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=record(shape("aga"), shape(other))))
    assert resp.status_code == 400
    issue = resp.get_json()["issue"][0]
    assert issue["expression"] == ["prefetch.conditions"]
    assert "another" in issue["diagnostics"] or "other than" in issue["diagnostics"]


def test_a_draft_order_for_another_patient_is_refused(real: CdsClient) -> None:
    resp = order_select(real, record(shape("aga")), draft("197987", pid="f9"))
    assert resp.status_code == 400
    assert resp.get_json()["issue"][0]["expression"] == ["context.draftOrders"]


def test_a_urn_uuid_patient_reference_that_names_no_prefetched_patient_is_refused(real: CdsClient) -> None:
    hf = shape("hf_synthea")
    hf["subject"] = {"reference": "urn:uuid:8c95253e-8ee8-9ae8-6d40-021d702dc78e"}
    resp = real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=record(shape("aga"), hf)))
    assert resp.status_code == 400


@pytest.mark.parametrize(
    ("diagnosis", "status"),
    [("aga_provisional", "provisional"), ("aga_differential", "differential"), ("aga_unconfirmed", "unconfirmed")],
)
def test_an_unconfirmed_diagnosis_is_uncertain_and_refers_for_review(
    real: CdsClient, real_app: Flask, diagnosis: str, status: str
) -> None:
    cards = cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=record(shape(diagnosis)))))
    referral = next(c for c in cards if c["summary"].startswith("Referral suggested"))
    assert "review" in referral["summary"].lower()
    assert not any(c["summary"].startswith("Treatment options to consider") for c in cards)


def test_a_confirmed_diagnosis_is_not_referred_for_review(real: CdsClient) -> None:
    cards = cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=record(shape("aga")))))
    assert not any("diagnosis" in c["summary"].lower() and c["summary"].startswith("Referral") for c in cards)


# ---- medications: RxNorm products, OID, names, references ----------------------------------------------


def exclusions_card(cards: list[dict[str, Any]]) -> dict[str, Any]:
    return next(c for c in cards if c["summary"].startswith("Not suitable"))


@pytest.mark.parametrize(
    "warfarin", ["warfarin_synthea", "warfarin_oid", "warfarin_text_only", "warfarin_unknown_code"]
)
def test_warfarin_in_every_shape_excludes_prp(real: CdsClient, warfarin: str) -> None:
    prefetch = record(shape("aga"), meds=(shape(warfarin),))
    cards = cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=prefetch)))
    card = exclusions_card(cards)
    assert "Platelet-rich plasma" in card["detail"] and "Relevant medications include Anticoagulant" in card["detail"]
    facts = "\n".join(c.get("detail", "") for c in cards)
    assert ("matched by name" in facts) == (warfarin in ("warfarin_text_only", "warfarin_unknown_code"))


@pytest.mark.parametrize(
    ("meds", "included"),
    [
        (("warfarin_by_reference",), ("medication_warfarin",)),  # _include=MedicationRequest:medication
        (("warfarin_by_absolute_reference",), ("medication_warfarin",)),  # absolute, by the entry's fullUrl
    ],
)
def test_medication_reference_to_the_prefetch_bundle_is_followed(
    real: CdsClient, meds: tuple[str, ...], included: tuple[str, ...]
) -> None:
    prefetch = record(shape("aga"), meds=tuple(shape(m) for m in meds), included=tuple(shape(i) for i in included))
    cards = cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=prefetch)))
    assert "Relevant medications include Anticoagulant" in exclusions_card(cards)["detail"]


def test_medication_reference_to_a_contained_medication_is_followed(real: CdsClient) -> None:
    request = shape("warfarin_by_reference")
    request["contained"] = [{**shape("medication_warfarin"), "id": "m"}]
    request["medicationReference"] = {"reference": "#m"}
    cards = cards_of(
        real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=record(shape("aga"), meds=(request,))))
    )
    assert "Relevant medications include Anticoagulant" in exclusions_card(cards)["detail"]


def test_medication_reference_is_read_from_the_fhir_server_with_the_token(real: CdsClient) -> None:
    server = FhirStandIn("token-for-meds", [shape("medication_on_server")])
    try:
        prefetch = record(shape("aga"), meds=(shape("warfarin_by_server_reference"),))
        body = hook_request(
            "patient-view",
            "f1",
            prefetch=prefetch,
            fhirServer=server.base,
            fhirAuthorization={
                "access_token": "token-for-meds",
                "token_type": "bearer",  # lower case, as EHRs send it (RFC 6749: case-insensitive)
                "expires_in": 60,
                "scope": "patient/Medication.read",
                "subject": "cds-service",
            },
        )
        cards = cards_of(real.post(PATIENT_VIEW, body))
        assert "Relevant medications include Anticoagulant" in exclusions_card(cards)["detail"]
        assert [r["path"] for r in server.requests] == ["/fhir/Medication/med-only-on-server"]
    finally:
        server.close()


def test_an_unfollowable_medication_reference_leaves_the_medications_unknown(real: CdsClient) -> None:
    prefetch = record(shape("aga"), meds=(shape("unfollowable_reference"),))
    cards = cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=prefetch)))
    facts = next(c for c in cards if c["summary"].startswith(("Record", "Check facts")))
    assert "Relevant medications" in facts["detail"] and "could not be followed" in facts["detail"]
    assert "Platelet-rich plasma" not in "".join(
        c["detail"] for c in cards if c["summary"].startswith("Treatment options to consider")
    )


@pytest.mark.parametrize(
    "code",
    # the issue's sweep: generic tablets, hydrochlorothiazide combinations, branded and pill-group codes
    ["313096", "198223", "198222", "198224", "198225", "208112", "1162147", "1174849", "200817"],
)
def test_spironolactone_products_for_a_man_are_critical(real: CdsClient, code: str) -> None:
    cards = cards_of(order_select(real, record(shape("aga")), draft(code)))
    assert [c["indicator"] for c in cards] == ["critical"], cards
    assert cards[0]["summary"].startswith("Spironolactone")


@pytest.mark.parametrize("code", ["1181830", "1181848", "200172", "996101", "1175700", "1167807", "1160795"])
def test_5ari_products_for_a_pregnant_woman_are_critical(real: CdsClient, code: str) -> None:
    prefetch = record(shape("aga_woman"), shape("preg_snomed"), patient="patient_woman")
    cards = cards_of(order_select(real, prefetch, draft(code, pid="f2")))
    assert [c["indicator"] for c in cards] == ["critical"], cards
    assert "pregnancy" in cards[0]["detail"]


@pytest.mark.parametrize("code", ["566065", "315934", "996099", "350640"])
def test_5ari_components_without_a_dose_form_for_a_pregnant_woman_are_critical(real: CdsClient, code: str) -> None:
    """Every route of a 5-ARI is excluded in pregnancy, so an order that could be either is excluded too."""
    prefetch = record(shape("aga_woman"), shape("preg_snomed"), patient="patient_woman")
    assert indicators(order_select(real, prefetch, draft(code, pid="f2"))) == ["critical"]


@pytest.mark.parametrize("code", ["1179655", "197987", "201348"])
def test_oral_minoxidil_products_with_heart_failure_are_critical(real: CdsClient, code: str) -> None:
    assert indicators(order_select(real, record(shape("aga"), shape("hf_synthea")), draft(code))) == ["critical"]


@pytest.mark.parametrize("code", ["317430", "332239", "316310", "565828", "565829"])
def test_minoxidil_strengths_without_a_dose_form_with_heart_failure_warn_that_oral_is_excluded(
    real: CdsClient, code: str
) -> None:
    cards = cards_of(order_select(real, record(shape("aga"), shape("hf_synthea")), draft(code)))
    assert [c["indicator"] for c in cards] == ["warning"], cards
    assert "**Low-dose oral minoxidil** is excluded" in cards[0]["detail"]


def test_a_draft_order_naming_a_urn_uuid_medication_entry_is_followed(real: CdsClient) -> None:
    medication = {**shape("medication_warfarin"), "id": "draft-med"}
    medication["code"] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "313096"}],
        "text": "Spironolactone 25 MG Oral Tablet",
    }
    urn = "urn:uuid:5b0a1c52-9d1e-4a46-9a57-0a2c7f0e8f11"
    order = draft("0", medicationReference={"reference": urn})
    cards = cards_of(
        order_select(real, record(shape("aga")), order, extra_entries=({"fullUrl": urn, "resource": medication},))
    )
    assert [c["indicator"] for c in cards] == ["critical"]


def test_a_draft_order_known_only_by_name_is_checked_and_says_so(real: CdsClient) -> None:
    order = draft("0")
    order["medicationCodeableConcept"] = {"text": "Aldactone 25mg tablets"}
    cards = cards_of(order_select(real, record(shape("aga")), order))
    assert [c["indicator"] for c in cards] == ["critical"]
    assert "matched by name" in cards[0]["detail"]


# ---- pregnancy ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "observations"),
    [
        (("preg_icd",), ()),
        (("preg_snomed",), ()),
        (("preg_synthea",), ()),
        (("preg_text",), ()),
        ((), ("preg_obs_reported_preliminary",)),
        ((), ("preg_obs_synthea",)),
        ((), ("preg_obs_text",)),
    ],
)
def test_pregnancy_in_every_shape_gives_the_pregnancy_reason(
    real: CdsClient, conditions: tuple[str, ...], observations: tuple[str, ...]
) -> None:
    prefetch = record(
        shape("aga_woman"),
        *(shape(c) for c in conditions),
        patient="patient_woman",
        observations=tuple(shape(o) for o in observations),
    )
    cards = cards_of(order_select(real, prefetch, draft("200172", pid="f2")))
    assert [c["indicator"] for c in cards] == ["critical"]
    assert "risk to a male fetus" in cards[0]["detail"]


@pytest.mark.parametrize(("conditions", "observations"), [(("preg_old",), ()), ((), ("not_preg_preliminary",))])
def test_stale_pregnancy_and_a_preliminary_not_pregnant_are_not_used(
    real: CdsClient, conditions: tuple[str, ...], observations: tuple[str, ...]
) -> None:
    prefetch = record(
        shape("aga_woman"),
        *(shape(c) for c in conditions),
        patient="patient_woman",
        observations=tuple(shape(o) for o in observations),
    )
    cards = cards_of(order_select(real, prefetch, draft("200172", pid="f2")))
    assert "risk to a male fetus" not in "".join(c.get("detail", "") for c in cards if c["indicator"] == "critical")
    pv = cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f2", prefetch=prefetch)))
    facts = next(c for c in pv if c["summary"].startswith(("Record", "Check facts")))
    assert "Pregnant" in facts["detail"]


# ---- discovery and leniency ----------------------------------------------------------------------------


def test_discovery_asks_for_the_medications_with_the_requests(real: CdsClient) -> None:
    services = real.get("/cds-services/").get_json()["services"]  # trailing slash accepted
    prefetch = next(s for s in services if s["id"] == f"{RULESET}-patient-view")["prefetch"]
    assert prefetch["medicationRequests"].endswith("&_include=MedicationRequest:medication")
    assert "11449-6" in prefetch["pregnancy"]


def test_fhir_json_content_type_and_trailing_slash(real: CdsClient) -> None:
    path = ORDER_SELECT + "/"
    body = {
        **hook_request("order-select", "f1", prefetch=record(shape("aga"), shape("hf_snomed"))),
    }
    body["context"].update(
        {
            "selections": ["MedicationRequest/draft-1"],
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": draft("197987")}]},
        }
    )
    resp = real.client.post(
        path,
        data=json.dumps(body),
        headers={**real._auth(path, None), "Content-Type": "application/fhir+json; charset=utf-8"},
    )
    assert indicators(resp) == ["critical"]


def test_a_plain_http_fhir_server_is_accepted_when_not_needed_and_never_sent_the_token(real: CdsClient) -> None:
    auth = {
        "access_token": "never-over-http",
        "token_type": "Bearer",
        "expires_in": 60,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }
    # The CDS Hooks 2.0.1 request example: a plain-http fhirServer the service does not need.
    full = hook_request(
        "patient-view",
        "f1",
        prefetch=record(shape("aga")),
        fhirServer="http://hooks.smarthealthit.org:9080",
        fhirAuthorization=auth,
    )
    assert cards_of(real.post(PATIENT_VIEW, full))
    # When it would be needed, the service answers 412 rather than send the token over plain http.
    needed = hook_request(
        "patient-view", "f1", fhirServer="http://hooks.smarthealthit.org:9080", fhirAuthorization=auth
    )
    resp = real.post(PATIENT_VIEW, needed)
    assert resp.status_code == 412
    assert "plain http" in resp.get_json()["issue"][0]["diagnostics"]


def test_source_topic_does_not_depend_on_the_request_host(real: CdsClient, real_app: Flask) -> None:
    prefetch = record(shape("aga"))
    topics = set()
    for host in ("localhost", "cds.internal:8443"):
        resp = real.client.post(
            PATIENT_VIEW,
            json=hook_request("patient-view", "f1", prefetch=prefetch),
            headers={"Authorization": f"Bearer {real.ehr.token(BASE + PATIENT_VIEW)}"},  # `aud`: PUBLIC_BASE_URL
            base_url=f"http://{host}",
        )
        assert resp.status_code == 200, resp.get_data(as_text=True)
        topics |= {json.dumps(c["source"]["topic"], sort_keys=True) for c in cards_of(resp)}
    assert len(topics) == 1
    topic = json.loads(topics.pop())
    assert topic["code"] == RULESET and topic["system"] == f"{BASE}/rulesets" and "cds.internal" not in topic["system"]


# ---- an item that cannot be classified is not silence (issue 13 item 2, without found values) -----------


def test_an_unclassified_medication_leaves_the_medications_unknown_and_is_counted(real: CdsClient) -> None:
    prefetch = record(shape("aga"), meds=(shape("unmapped_medication"),))
    cards = cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=prefetch)))
    facts = next(c for c in cards if c["summary"].startswith(("Record", "Check facts")))
    assert "Relevant medications: 1 active item in the record could not be classified" in facts["detail"]

    # PRP depends on anticoagulants and antiplatelets: with the medications unknown, ruleset 1.1.0 withholds it
    # until they are recorded (H-6U), and the reason names them.
    def prp_exclusion(cards: list[dict[str, Any]]) -> str:
        excluded = next((c for c in cards if c["summary"].startswith("Not suitable")), {"detail": ""})
        lines = [line for line in excluded["detail"].splitlines() if line.startswith("- **Platelet-rich plasma")]
        return lines[0] if lines else ""

    assert "Relevant medications: not recorded" in prp_exclusion(cards)
    known = cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=record(shape("aga")))))
    assert "Relevant medications: not recorded" not in prp_exclusion(known)


def test_an_unclassified_condition_makes_an_oral_minoxidil_order_a_warning_not_silence(real: CdsClient) -> None:
    quiet = cards_of(order_select(real, record(shape("aga")), draft("197987")))
    unclassified = cards_of(order_select(real, record(shape("aga"), shape("unmapped_condition")), draft("197987")))
    # Ruleset 1.1.0 withholds oral minoxidil while the conditions are not known (H-5U): with an unclassified
    # condition that holds in every completion, so the order card is critical and names the conditions.
    assert [c["indicator"] for c in unclassified] == ["critical"]
    assert "conditions are recorded" in unclassified[0]["summary"].lower()
    assert len(unclassified) >= len(quiet)


# ---- a set with values found and items not classified is known only in part (issue 13 item 2) ---------


def coded_condition(rid: str, system: str, code: str, display: str) -> dict[str, Any]:
    cond = shape("hf_icd_oid")
    cond["id"] = rid
    cond["code"] = {"coding": [{"system": system, "code": code, "display": display}], "text": display}
    return cond


HYPERKALAEMIA = ("hyperk", "http://hl7.org/fhir/sid/icd-10-cm", "E87.5", "Hyperkalemia")


def rule_text(app: Flask, rule_id: str) -> str:
    """The first exclusion text of a rule of the default ruleset, as the cards write it."""
    ruleset = app.extensions["registry"].get(RULESET).ruleset
    action = next(a for a in ruleset.rule(rule_id).then if a.kind == "exclude")
    return " ".join(action.text.split())


def test_a_found_condition_beside_an_unclassified_one_does_not_make_the_list_whole(
    real: CdsClient, real_app: Flask
) -> None:
    # Hyperkalaemia is classified, prediabetes is not: the conditions are "hyperkalaemia, and perhaps more",
    # so oral minoxidil (whose exclusions are other conditions) stays withheld until the list is recorded.
    partly = record(shape("aga"), coded_condition(*HYPERKALAEMIA), shape("unmapped_condition"))
    cards = cards_of(order_select(real, partly, draft("197987")))
    assert [c["indicator"] for c in cards] == ["critical"], cards
    assert rule_text(real_app, "H-5U")[:40] in cards[0]["detail"]  # withheld until the conditions are recorded

    view = cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=partly)))
    facts = next(c for c in view if c["summary"].startswith(("Record", "Check facts")))
    assert "Relevant conditions: 1 active item in the record could not be classified" in facts["detail"]
    assert "Relevant conditions** (the record could not be read in full)" in facts["detail"]


def test_found_values_still_decide_when_the_list_is_known_only_in_part(real: CdsClient, real_app: Flask) -> None:
    # Heart failure found beside an unclassified condition: the H-5 exclusion holds (a known fact), and the
    # order card says so; warfarin beside an unclassified medication still excludes PRP for anticoagulation.
    hf = record(shape("aga"), shape("hf_synthea"), shape("unmapped_condition"))
    (card,) = cards_of(order_select(real, hf, draft("197987")))
    assert card["indicator"] == "critical" and rule_text(real_app, "H-5")[:40] in card["detail"]

    meds = record(shape("aga"), meds=(shape("warfarin_synthea"), shape("unmapped_medication")))
    view = cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=meds)))
    excluded = next(c for c in view if c["summary"].startswith("Not suitable"))
    prp = next(line for line in excluded["detail"].splitlines() if line.startswith("- **Platelet-rich plasma"))
    assert "anticoagula" in prp.lower()
    facts = next(c for c in view if c["summary"].startswith(("Record", "Check facts")))
    assert "Relevant medications: 1 active item in the record could not be classified" in facts["detail"]


# ---- relevance: a chart about hair loss, cards that change something (issue 13 item 5) ----------------


def medication(rid: str, code: str, display: str) -> dict[str, Any]:
    med = shape("warfarin_synthea")
    med["id"] = rid
    med["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code, "display": display}],
        "text": display,
    }
    return med


def test_a_chart_without_a_hair_loss_problem_or_medication_gets_no_patient_view_card(real: CdsClient) -> None:
    # A man with heart failure on warfarin, a woman with nothing coded: no "not suitable" card for anyone.
    man = record(shape("hf_synthea"), meds=(shape("warfarin_synthea"),))
    assert cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=man))) == []
    woman = record(patient="patient_woman")
    assert cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f2", prefetch=woman))) == []
    # The order services still check every order of a drug the mapping knows, chart problem or not.
    assert indicators(order_select(real, man, draft("197987"))) == ["critical"]


def test_a_hair_loss_medication_alone_makes_the_chart_relevant(real: CdsClient) -> None:
    finasteride = record(meds=(medication("fin-1", "310346", "Finasteride 5 MG Oral Tablet"),))
    assert cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=finasteride)))
    provisional = record(shape("aga_provisional"))
    assert cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=provisional)))


def test_not_for_men_is_never_a_card(real: CdsClient) -> None:
    cards = cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=record(shape("aga")))))
    assert cards
    for card in cards:
        assert "Spironolactone" not in card["summary"], card["summary"]
        assert "Not used in men" not in card.get("detail", ""), card["detail"]


def test_unknown_sex_is_stated_and_no_exclusion_mixes_male_and_female_reasons(real: CdsClient) -> None:
    for gender in (None, "other", "unknown"):
        rec = record(shape("aga"))
        if gender is None:
            del rec["patient"]["gender"]
        else:
            rec["patient"]["gender"] = gender
        cards = cards_of(real.post(PATIENT_VIEW, hook_request("patient-view", "f1", prefetch=rec)))
        facts = next(c for c in cards if c["summary"].startswith("Record"))
        assert "Sex" in facts["summary"]
        assert "- Sex: unknown - the record" in facts["detail"]
        assert not any(c["summary"].startswith("Not suitable: Spironolactone") for c in cards), cards
        for card in cards:
            assert "Not used in men" not in card.get("detail", "")
