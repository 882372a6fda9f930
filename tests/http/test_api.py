"""The JSON API end to end through the Flask test client, on a small ruleset in a temporary folder."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.ruleset import load_file

from .conftest import (
    RULESET_ID,
    VALID_PROFILE,
    assert_problem,
    decisions_table_missing,
    error_for,
    recorded,
    write_ruleset,
)

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_list_rulesets(client: FlaskClient, rulesets_dir: Path) -> None:
    resp = client.get("/v1/rulesets")
    assert resp.status_code == 200
    rs = load_file(rulesets_dir / f"{RULESET_ID}.yaml")
    assert resp.get_json() == {
        "rulesets": [
            {"id": RULESET_ID, "version": "0.1.0", "title": rs.title, "status": "production", "sha256": rs.sha256}
        ]
    }


def test_ruleset_detail_is_the_file_as_json(client: FlaskClient, rulesets_dir: Path) -> None:
    rs = load_file(rulesets_dir / f"{RULESET_ID}.yaml")
    resp = client.get(f"/v1/rulesets/{RULESET_ID}")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["id"] == RULESET_ID and body["sha256"] == rs.sha256
    assert [i["id"] for i in body["inputs"]] == list(rs.inputs)
    age = next(i for i in body["inputs"] if i["id"] == "age")
    assert age == {
        "id": "age",
        "type": "integer",
        "label": "Age",
        "help": "Age in whole years.",
        "required": True,
        "group": "demographics",
        "minimum": 0,
        "maximum": 120,
        "unit": "years",
    }
    diagnosis = next(i for i in body["inputs"] if i["id"] == "diagnosis")
    assert diagnosis["values"] == [
        {"code": "confirmed", "label": "Confirmed"},
        {"code": "uncertain", "label": "Uncertain"},
    ]
    assert [o["id"] for o in body["options"]] == ["topical", "oral", "review"]
    rule = next(r for r in body["rules"] if r["id"] == "adult-confirmed")
    assert rule["when"] == {"all": [{"field": "diagnosis", "equals": "confirmed"}, {"field": "age", "at_least": 18}]}
    assert "Age is at least 18 years" in rule["when_words"]
    assert rule["then"][0]["kind"] == "recommend" and rule["then"][0]["strength"] == "recommended"
    pregnancy = next(r for r in body["rules"] if r["id"] == "pregnancy")
    assert pregnancy["when"] == {"any": [{"field": "pregnant", "equals": True}, {"unknown": "pregnant"}]}
    assert {i["id"]: i["status"] for i in body["invariants"]} == {
        "no-oral-in-pregnancy": "proven",
        "always-an-answer": "proven",
    }
    assert body["verification"]["tests"] == body["verification"]["tests_passed"] == 4


def test_ruleset_detail_etag(client: FlaskClient, rulesets_dir: Path) -> None:
    rs = load_file(rulesets_dir / f"{RULESET_ID}.yaml")
    resp = client.get(f"/v1/rulesets/{RULESET_ID}")
    assert resp.headers["ETag"] == f'"{rs.sha256}"'
    again = client.get(f"/v1/rulesets/{RULESET_ID}", headers={"If-None-Match": f'"{rs.sha256}"'})
    assert again.status_code == 304


def test_source_is_the_exact_file(client: FlaskClient, rulesets_dir: Path) -> None:
    raw = (rulesets_dir / f"{RULESET_ID}.yaml").read_bytes()
    resp = client.get(f"/v1/rulesets/{RULESET_ID}/source")
    assert resp.status_code == 200
    assert resp.mimetype == "text/yaml"
    assert resp.data == raw
    assert resp.headers["ETag"] == f'"{hashlib.sha256(raw).hexdigest()}"'


@pytest.mark.parametrize("path", ["/v1/rulesets/nope", "/v1/rulesets/nope/source"])
def test_unknown_ruleset_in_path(client: FlaskClient, path: str) -> None:
    body = assert_problem(client.get(path), 404, "unknown-ruleset")
    assert body["ruleset"] == "nope"
    assert body["allowed"] == [RULESET_ID]
    assert RULESET_ID in body["detail"]


def test_evaluation_returns_the_decision(client: FlaskClient, rulesets_dir: Path) -> None:
    rs = load_file(rulesets_dir / f"{RULESET_ID}.yaml")
    resp = client.post("/v1/evaluations", json={"ruleset": RULESET_ID, "profile": VALID_PROFILE, "explain": False})
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    d = resp.get_json()
    assert uuid.UUID(d["decision_id"]).version == 4
    assert RFC3339_UTC.match(d["evaluated_at"])
    assert d["ruleset"] == {"id": RULESET_ID, "version": "0.1.0", "sha256": rs.sha256}
    assert [(c["option"], c["strength"]) for c in d["candidates"]] == [("topical", "recommended"), ("oral", "consider")]
    topical = d["candidates"][0]
    assert topical["rationale"] == ["First-line topical option."]
    assert topical["evidence"]["level"] == "high"
    assert topical["evidence"]["references"][0]["id"] == "olsen2002"
    assert topical["regimen"] == "Twice daily."
    assert topical["rules"] == ["adult-confirmed"]
    assert d["excluded"] == [] and d["referrals"] == []
    assert d["fired_rules"] == ["adult-confirmed"]
    assert [w["kind"] for w in d["warnings"]] == ["unknown_inputs"]
    assert "explanation" not in d


def test_explanation_only_when_asked(client: FlaskClient) -> None:
    d = client.post("/v1/evaluations", json={"profile": VALID_PROFILE, "explain": True}).get_json()
    assert {r["rule"] for r in d["explanation"]["rules"]} == {"adult-confirmed", "pregnancy", "heart", "uncertain"}
    assert d["explanation"]["unknown_inputs"] == ["conditions"]


def test_each_ruleset_test_case_through_the_api(client: FlaskClient, rulesets_dir: Path) -> None:
    """The API gives, for every test case in the file, the candidates and referrals the file expects."""
    rs = load_file(rulesets_dir / f"{RULESET_ID}.yaml")
    for case in rs.tests:
        d = client.post("/v1/evaluations", json={"ruleset": RULESET_ID, "profile": case.profile}).get_json()
        if case.expect.candidates is not None:
            assert {c["option"] for c in d["candidates"]} == set(case.expect.candidates), case.name
        if case.expect.referrals is not None:
            assert {r["option"] for r in d["referrals"]} == set(case.expect.referrals), case.name
        for option in case.expect.excluded or ():
            assert option in {e["option"] for e in d["excluded"]}, case.name
        assert set(case.expect.fired) <= set(d["fired_rules"]), case.name


def test_null_means_not_recorded(client: FlaskClient) -> None:
    d = client.post("/v1/evaluations", json={"profile": {"age": 30, "diagnosis": "confirmed", "pregnant": None}})
    assert d.status_code == 200
    assert [e["option"] for e in d.get_json()["excluded"]] == ["oral"]  # rule `pregnancy` acts on "not recorded"


def test_an_integral_number_is_accepted_as_the_integer_it_is(app: Flask, client: FlaskClient) -> None:
    """`age` is `type: integer` in the OpenAPI document, and JSON Schema counts 60.0 as 60: so does the API."""
    body = '{"profile": {"age": 60.0, "diagnosis": "confirmed", "pregnant": false}, "view": "full"}'
    resp = client.post("/v1/evaluations", data=body, content_type="application/json")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    d = resp.get_json()
    assert [c["option"] for c in d["candidates"]] == ["topical", "oral"]
    record = recorded(app, d["decision_id"])
    assert record is not None and record["profile"] == {"age": 60, "diagnosis": "confirmed", "pregnant": False}
    assert type(record["profile"]["age"]) is int
    half = client.post("/v1/evaluations", json={"profile": {**VALID_PROFILE, "age": 60.5}})
    problem = assert_problem(half, 422, "validation-error")
    assert error_for(problem, "profile.age")["message"].startswith("`age` must be a whole number")


def test_ruleset_required_when_no_single_production_ruleset(make_app, tmp_path: Path) -> None:
    folder = tmp_path / "two"
    write_ruleset(folder)
    write_ruleset(folder, ruleset_id="format-example-b")
    client = make_app(folder).test_client()
    body = assert_problem(client.post("/v1/evaluations", json={"profile": VALID_PROFILE}), 422, "validation-error")
    err = error_for(body, "ruleset")
    assert err["allowed"] == ["format-example", "format-example-b"]
    assert "exactly one production ruleset" in err["message"]
    named = client.post("/v1/evaluations", json={"ruleset": "format-example-b", "profile": VALID_PROFILE})
    assert named.status_code == 200
    assert named.get_json()["ruleset"]["id"] == "format-example-b"


def test_default_ruleset_is_the_only_production_one(make_app, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    write_ruleset(folder)
    write_ruleset(folder, ruleset_id="format-example-draft", status="testing")
    client = make_app(folder).test_client()
    d = client.post("/v1/evaluations", json={"profile": VALID_PROFILE}).get_json()
    assert d["ruleset"]["id"] == RULESET_ID


def test_no_rulesets_loaded(make_app, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    client = make_app(empty).test_client()
    assert client.get("/v1/rulesets").get_json() == {"rulesets": []}
    body = assert_problem(client.post("/v1/evaluations", json={"profile": VALID_PROFILE}), 422, "validation-error")
    assert error_for(body, "ruleset")["allowed"] == []
    assert client.get("/readyz").status_code == 503


def test_decision_is_recorded_with_channel_api(app: Flask, client: FlaskClient) -> None:
    d = client.post("/v1/evaluations", json={"profile": VALID_PROFILE, "view": "full"}).get_json()
    record = recorded(app, d["decision_id"])
    assert record is not None
    assert record["channel"] == "api"
    assert record["profile"] == VALID_PROFILE
    assert record["decision"] == d


def test_default_view_is_compact_and_the_log_keeps_the_full_decision(app: Flask, client: FlaskClient) -> None:
    d = client.post("/v1/evaluations", json={"profile": VALID_PROFILE}).get_json()
    full = recorded(app, d["decision_id"])["decision"]
    assert [c["option"] for c in d["candidates"]] == [c["option"] for c in full["candidates"]]
    for compact, inlined in zip(d["candidates"], full["candidates"], strict=True):
        assert "note" not in compact["evidence"] and inlined["evidence"]["note"]
        assert "caveat_notes" not in compact
        assert compact["evidence"]["level"] == inlined["evidence"]["level"]
        assert compact["evidence"]["references"] == [{"id": r["id"]} for r in inlined["evidence"]["references"]]
        assert compact["caveats"] == inlined["caveats"]
    body = assert_problem(
        client.post("/v1/evaluations", json={"profile": VALID_PROFILE, "view": "short"}), 422, "validation-error"
    )
    assert "default, full" in error_for(body, "view")["message"]


def test_unrecorded_decision_is_a_503_and_not_logged_with_data(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with decisions_table_missing(app), caplog.at_level(logging.DEBUG):
        resp = client.post("/v1/evaluations", json={"profile": {**VALID_PROFILE, "age": 47}})
    body = assert_problem(resp, 503, "decision-not-recorded")
    assert "decision_id" not in body
    assert resp.headers["Retry-After"]
    assert "RecordError" in caplog.text
    assert "47" not in caplog.text and "confirmed" not in caplog.text
