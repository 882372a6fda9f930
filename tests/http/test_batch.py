"""POST /v1/evaluations:batch: one decision per profile, in order; a bad profile is an error entry, not a failure."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .conftest import RULESET_ID, VALID_PROFILE, assert_problem, decisions_table_missing, error_for, recorded

BATCH = "/v1/evaluations:batch"


def batch(client: FlaskClient, profiles: Any, **extra: Any) -> Any:
    return client.post(BATCH, json={"ruleset": RULESET_ID, "profiles": profiles, **extra})


def test_decisions_in_order_each_with_its_own_id(client: FlaskClient) -> None:
    profiles = [
        {"age": 30, "diagnosis": "confirmed", "pregnant": False},
        {"age": 30, "diagnosis": "uncertain"},
        {"age": 40, "diagnosis": "confirmed", "pregnant": False, "conditions": ["heart_failure"]},
    ]
    resp = batch(client, profiles)
    assert resp.status_code == 200
    decisions = resp.get_json()["decisions"]
    assert [[c["option"] for c in d["candidates"]] for d in decisions] == [["topical", "oral"], [], ["topical"]]
    assert [r["option"] for r in decisions[1]["referrals"]] == ["review"]
    assert len({d["decision_id"] for d in decisions}) == 3
    single = client.post("/v1/evaluations", json={"ruleset": RULESET_ID, "profile": profiles[2]}).get_json()
    for key in ("candidates", "excluded", "referrals", "warnings", "fired_rules", "ruleset"):
        assert decisions[2][key] == single[key]


def test_a_bad_profile_is_an_error_entry_at_its_position(client: FlaskClient) -> None:
    profiles = [VALID_PROFILE, {"age": "30", "diagnosis": "confirmed"}, "not a profile", VALID_PROFILE]
    resp = batch(client, profiles)
    assert resp.status_code == 200
    decisions = resp.get_json()["decisions"]
    assert "decision_id" in decisions[0] and "decision_id" in decisions[3]
    bad = decisions[1]
    assert bad["index"] == 1
    assert bad["error"]["status"] == 422
    assert bad["error"]["type"] == "urn:hairloss-rules:problem:validation-error"
    err = error_for(bad["error"], "profiles[1].age")
    assert err["pointer"] == "/profiles/1/age"
    assert 'not the text "30"' in err["message"]
    assert decisions[2]["index"] == 2
    assert error_for(decisions[2]["error"], "profiles[2]")["allowed"] == ["age", "diagnosis", "pregnant", "conditions"]


def test_explain_applies_to_every_item(client: FlaskClient) -> None:
    decisions = batch(client, [VALID_PROFILE, VALID_PROFILE], explain=True).get_json()["decisions"]
    assert all("explanation" in d for d in decisions)
    assert all("explanation" not in d for d in batch(client, [VALID_PROFILE]).get_json()["decisions"])


def test_default_ruleset(client: FlaskClient) -> None:
    resp = client.post(BATCH, json={"profiles": [VALID_PROFILE]})
    assert resp.get_json()["decisions"][0]["ruleset"]["id"] == RULESET_ID


def test_limit(make_app) -> None:
    client = make_app(BATCH_LIMIT=3).test_client()
    assert batch(client, [VALID_PROFILE] * 3).status_code == 200
    problem = assert_problem(batch(client, [VALID_PROFILE] * 4), 422, "validation-error")
    err = error_for(problem, "profiles")
    assert "from 1 to 3 profiles, not 4" in err["message"]
    assert (err["minimum"], err["maximum"]) == (1, 3)


def test_default_limit_is_1000(client: FlaskClient) -> None:
    decisions = batch(client, [VALID_PROFILE] * 1000).get_json()["decisions"]
    assert len(decisions) == 1000
    problem = assert_problem(batch(client, [VALID_PROFILE] * 1001), 422, "validation-error")
    assert "from 1 to 1000 profiles" in error_for(problem, "profiles")["message"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"ruleset": RULESET_ID, "profiles": []}, "profiles", "from 1 to"),
        ({"ruleset": RULESET_ID, "profiles": VALID_PROFILE}, "profiles", "must be a list"),
        ({"ruleset": RULESET_ID}, "profiles", "is required"),
        ({"ruleset": RULESET_ID, "profile": VALID_PROFILE}, "profile", "did you mean `profiles`"),
        ({"ruleset": RULESET_ID, "profiles": [VALID_PROFILE], "explain": "false"}, "explain", "true or false"),
    ],
)
def test_bad_envelope_fails_the_batch(client: FlaskClient, body: dict[str, Any], field: str, words: str) -> None:
    problem = assert_problem(client.post(BATCH, json=body), 422, "validation-error")
    assert words in error_for(problem, field)["message"]


def test_unknown_ruleset_fails_the_batch(client: FlaskClient) -> None:
    resp = client.post(BATCH, json={"ruleset": "nope", "profiles": [VALID_PROFILE]})
    assert assert_problem(resp, 404, "unknown-ruleset")["allowed"] == [RULESET_ID]


def test_each_item_is_recorded_with_channel_batch(app: Flask, client: FlaskClient) -> None:
    decisions = batch(client, [VALID_PROFILE, {"age": -5, "diagnosis": "confirmed"}, VALID_PROFILE]).get_json()
    ids = [d["decision_id"] for d in decisions["decisions"] if "decision_id" in d]
    assert len(ids) == 2
    assert [recorded(app, i)["channel"] for i in ids] == ["batch", "batch"]


def test_a_recording_failure_fails_the_batch(app: Flask, client: FlaskClient) -> None:
    with decisions_table_missing(app):
        resp = batch(client, [VALID_PROFILE, VALID_PROFILE])
    problem = assert_problem(resp, 503, "decision-not-recorded")
    assert "decisions" not in problem
