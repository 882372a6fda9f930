"""A CDS Hooks decision is partial (no FHIR resource gives `pattern` or `prior_finasteride`): it must replay
as identical through the auditors' JSON endpoint, over every completion, as it was made."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from .conftest import PATIENT_VIEW
from .helpers import CdsClient, Ehr, bundle, condition, hook_request, patient

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "auditor-token-for-partial-replay"
AUDITOR = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def audited(make_app: Callable[..., Flask]) -> Iterator[Flask]:
    app = make_app(AUDITOR_TOKEN_HASHES=hashlib.sha256(TOKEN.encode()).hexdigest())
    yield app
    app.extensions["decision_log"].close()


def test_a_partial_cds_hooks_decision_replays_as_identical(audited: Flask, ehr: Ehr) -> None:
    cds = CdsClient(audited.test_client(), ehr)
    prefetch = {
        "patient": patient(gender="female", birth="1990-03-01"),
        "conditions": bundle(condition("L64.9"), condition("I50.9")),
        "medicationRequests": bundle(),
        "medicationStatements": None,
        "procedures": bundle(),
        "pregnancy": None,
        "lactation": None,
    }
    assert cds.post(PATIENT_VIEW, hook_request("patient-view", prefetch=prefetch)).status_code == 200
    client = audited.test_client()
    (item,) = client.get("/v1/evaluations?channel=cds-hooks", headers=AUDITOR).get_json()["items"]
    assert "pattern" not in item["profile"] and "prior_finasteride" not in item["profile"]
    record = client.get(f"/v1/evaluations/{item['decision_id']}", headers=AUDITOR).get_json()
    assert record["decision"]["partial"]["missing"] == ["pattern", "prior_finasteride"]

    resp = client.post(f"/v1/evaluations/{item['decision_id']}/replay", headers=AUDITOR)

    assert resp.status_code == 200, resp.get_data(as_text=True)
    report = resp.get_json()
    for revision in ("stored_revision", "current_revision"):
        assert report[revision]["available"] is True, report[revision]
        assert report[revision]["identical"] is True and report[revision]["differences"] == []
        assert report[revision]["result"]["candidates"] == item["candidates"] == ["topical_minoxidil", "spironolactone"]
        assert report[revision]["result"]["excluded"] == item["excluded"]
        assert report[revision]["result"]["fired_rules"] == item["fired_rules"]


def test_a_decision_on_a_set_known_only_in_part_replays_as_identical(
    make_app: Callable[..., Flask], ehr: Ehr, tmp_path: Path
) -> None:
    # The default ruleset withholds oral minoxidil while the conditions are not known in full (H-5U): a replay
    # that read "hyperkalaemia" as the whole list would not fire it and would differ.
    folder = tmp_path / "default-rulesets"
    folder.mkdir()
    for name in ("androgenetic-alopecia.yaml", "androgenetic-alopecia.fhir.yaml", "androgenetic-alopecia.tests.yaml"):
        shutil.copy(ROOT / "rulesets" / name, folder / name)
    app = make_app(AUDITOR_TOKEN_HASHES=hashlib.sha256(TOKEN.encode()).hexdigest(), RULESETS_DIR=str(folder))
    try:
        cds = CdsClient(app.test_client(), ehr)
        prefetch = {
            "patient": patient(gender="male", birth="1980-03-01"),
            "conditions": bundle(condition("L64.9"), condition("E87.5"), condition("R73.03")),
            "medicationRequests": bundle(),
            "medicationStatements": None,
            "procedures": bundle(),
            "pregnancy": None,
            "lactation": None,
        }
        url = "/cds-services/androgenetic-alopecia-patient-view"
        assert cds.post(url, hook_request("patient-view", prefetch=prefetch)).status_code == 200
        client = app.test_client()
        (item,) = client.get("/v1/evaluations?channel=cds-hooks", headers=AUDITOR).get_json()["items"]
        assert item["profile"]["conditions"] == ["hyperkalaemia"]
        assert "H-5U" in item["fired_rules"]
        report = client.post(f"/v1/evaluations/{item['decision_id']}/replay", headers=AUDITOR).get_json()
        for revision in ("stored_revision", "current_revision"):
            assert report[revision]["identical"] is True, report[revision]
    finally:
        app.extensions["decision_log"].close()
