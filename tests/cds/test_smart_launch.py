"""SMART App Launch of the clinician form against a loopback SMART EHR that speaks the real protocol
(tests/cds/smart_standin.py): EHR launch with `iss` and `launch`, authorization code with PKCE S256,
`launch/patient`, the patient's data read through the mapping, the form prefilled - and nothing but the
launch parameters (and the OAuth code and state) in any URL."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from .helpers import CdsClient, Ehr, assert_conformant, bundle, condition, hook_request, patient
from .smart_standin import SmartEhr

CLIENT_ID = "hair-loss-form"
TOKEN = "clinician-token-for-smart-tests"


@pytest.fixture
def ehr_server() -> Iterator[SmartEhr]:
    resources = [
        patient(gender="male", birth="1980-03-01"),
        condition("L64.9"),
        condition("I50.9"),
    ]
    server = SmartEhr(CLIENT_ID, "p1", resources)
    yield server
    server.close()


@pytest.fixture
def smart_app(make_app: Callable[..., Flask], ehr_server: SmartEhr) -> Iterator[Flask]:
    app = make_app(
        SMART_CLIENT_ID=CLIENT_ID,
        SMART_ISSUERS=ehr_server.iss,
        CLINICIAN_TOKEN_HASHES=hashlib.sha256(TOKEN.encode()).hexdigest(),  # the pages are not open
        EHR_FRAME_ORIGINS="https://ehr.example.org",
    )
    yield app
    app.extensions["decision_log"].close()


def test_an_ehr_launch_prefills_the_form_with_the_patients_record(smart_app: Flask, ehr_server: SmartEhr) -> None:
    browser = smart_app.test_client()
    launch = ehr_server.new_launch()
    resp = browser.get(f"/smart/cds-fixture/launch?iss={ehr_server.iss}&launch={launch}")
    assert resp.status_code == 302
    to_ehr = resp.headers["Location"]
    assert to_ehr.startswith(ehr_server.base + "/auth/authorize?")

    # The browser follows to the EHR's authorization endpoint, which sends it back with a code.
    back = requests.get(to_ehr, allow_redirects=False, timeout=5)
    assert back.status_code == 302
    callback = urlsplit(back.headers["Location"])
    assert set(parse_qs(callback.query)) == {"code", "state"}
    (asked,) = ehr_server.authorize_requests
    assert asked["code_challenge_method"] == "S256" and asked["aud"] == ehr_server.iss and asked["launch"] == launch
    assert "launch" in asked["scope"].split() and "patient/Condition.read" in asked["scope"].split()

    page = browser.get(f"{callback.path}?{callback.query}")
    assert page.status_code == 200, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    (exchange,) = ehr_server.token_requests
    assert (
        exchange["grant_type"] == "authorization_code" and exchange["code_verifier"] and "client_secret" not in exchange
    )
    # Prefilled from the record: sex, age, diagnosis and heart failure (read with the token from the EHR).
    assert '<option value="male" selected>' in html
    assert re.search(r'name="age"\s[^>]*value="4\d"', html)
    assert 'value="heart_failure" checked' in html
    fhir_reads = [r["path"] for r in ehr_server.fhir_requests]
    assert any(p.startswith("/fhir/Condition?patient=p1") for p in fhir_reads)
    assert all(r["headers"]["authorization"] == f"Bearer {ehr_server.access_token}" for r in ehr_server.fhir_requests)
    # Nothing but the launch parameters and the OAuth code/state was ever in a URL of the service.
    for url in (f"/smart/cds-fixture/launch?iss={ehr_server.iss}&launch={launch}", back.headers["Location"], to_ehr):
        assert "heart_failure" not in url and "male" not in url.replace("female", "")
    # The page may open in the configured EHR's frame only.
    assert "frame-ancestors https://ehr.example.org" in page.headers["Content-Security-Policy"]

    # The launch signed the browser in to the clinician pages: the prefilled form can be submitted.
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert csrf is not None
    form = {
        "csrf_token": csrf.group(1),
        "sex": "male",
        "age": "46",
        "diagnosis": "androgenetic_alopecia",
        "pattern": "mild",
        "prior_finasteride": "not_tried",
        "conditions": "heart_failure",
    }
    answer = browser.post("/rulesets/cds-fixture/try", data=form, headers={"Accept": "text/html"})
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    assert "Oral minoxidil" in answer.get_data(as_text=True)
    # Without the session (another browser), the same form is sent to sign in.
    other = smart_app.test_client().post("/rulesets/cds-fixture/try", data=form, headers={"Accept": "text/html"})
    assert other.status_code in (303, 401, 403)


def test_a_launch_from_an_untrusted_ehr_or_without_its_parameters_is_refused(
    smart_app: Flask, ehr_server: SmartEhr
) -> None:
    browser = smart_app.test_client()
    resp = browser.get("/smart/cds-fixture/launch?iss=https://evil.example.org/fhir&launch=x")
    assert resp.status_code == 403
    assert browser.get(f"/smart/cds-fixture/launch?iss={ehr_server.iss}").status_code == 400
    assert ehr_server.authorize_requests == []


def test_a_callback_that_does_not_match_the_launch_is_refused(smart_app: Flask, ehr_server: SmartEhr) -> None:
    browser = smart_app.test_client()
    resp = browser.get(f"/smart/cds-fixture/launch?iss={ehr_server.iss}&launch={ehr_server.new_launch()}")
    back = urlsplit(requests.get(resp.headers["Location"], allow_redirects=False, timeout=5).headers["Location"])
    code = parse_qs(back.query)["code"][0]
    assert browser.get(f"{back.path}?code={code}&state=forged").status_code == 400
    # The waiting launch is used up by the failed attempt: the right state no longer works either.
    state = parse_qs(back.query)["state"][0]
    assert browser.get(f"{back.path}?code={code}&state={state}").status_code == 400
    assert ehr_server.token_requests == []


def test_a_wrong_code_verifier_gets_no_token(smart_app: Flask, ehr_server: SmartEhr) -> None:
    # Another browser (no verifier of this launch) cannot use a code it intercepted.
    first, thief = smart_app.test_client(), smart_app.test_client()
    resp = first.get(f"/smart/cds-fixture/launch?iss={ehr_server.iss}&launch={ehr_server.new_launch()}")
    back = urlsplit(requests.get(resp.headers["Location"], allow_redirects=False, timeout=5).headers["Location"])
    thief.get(f"/smart/cds-fixture/launch?iss={ehr_server.iss}&launch={ehr_server.new_launch()}")
    stolen = parse_qs(back.query)
    resp = thief.get(f"{back.path}?code={stolen['code'][0]}&state={stolen['state'][0]}")
    assert resp.status_code == 400  # the thief's session waits for another state
    assert ehr_server.token_requests == []


def test_without_a_client_id_there_is_no_smart_launch(app: Flask) -> None:
    assert (
        app.test_client().get("/smart/cds-fixture/launch?iss=https://ehr.example.org/fhir&launch=x").status_code == 404
    )


def test_cards_carry_a_smart_link_to_the_launch_when_it_is_configured(smart_app: Flask, ehr: Ehr) -> None:

    cds = CdsClient(smart_app.test_client(), ehr)
    prefetch = {
        "patient": patient(),
        "conditions": bundle(condition("L64.9")),
        "medicationRequests": bundle(),
        "medicationStatements": None,
        "procedures": bundle(),
        "pregnancy": None,
        "lactation": None,
    }
    cards = assert_conformant(
        cds.post("/cds-services/cds-fixture-patient-view", hook_request("patient-view", prefetch=prefetch)).get_json()
    )
    assert cards
    for card in cards:
        smart = [link for link in card["links"] if link["type"] == "smart"]
        assert [link["url"] for link in smart] == ["http://localhost/smart/cds-fixture/launch"]
