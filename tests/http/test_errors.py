"""Every kind of bad input gets a problem+json 4xx that says what is wrong and what is allowed - never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from .conftest import RULESET_ID, VALID_PROFILE, assert_problem, error_for

JSON = "application/json"


def post(client: FlaskClient, body: Any, path: str = "/v1/evaluations", **kwargs: Any) -> Any:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    kwargs.setdefault("content_type", JSON)
    return client.post(path, data=data, **kwargs)


def with_profile(**changes: Any) -> dict[str, Any]:
    return {"ruleset": RULESET_ID, "profile": {**VALID_PROFILE, **changes}}


# ---- the body is not JSON, or not acceptable JSON: 400 ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"profile": {"age": 30,}', "not valid JSON"),
        (b"", "empty"),
        (b"   \n", "empty"),
        (b'{"profile": {"age": 30, "age": "abc"}}', "`age` appears twice"),
        (b'{"profile": {"age": NaN}}', "NaN"),
        (b'{"profile": {"age": Infinity}}', "Infinity"),
        (b'{"profile": {"age": 1' + b"0" * 5000 + b"}}", "too many digits"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"profile": {"diagnosis": "\xff\xfe"}}', "not UTF-8"),
        (b'{"profile": {"diagnosis": "\\ud800"}}', "unpaired UTF-16 surrogate"),
        (b'{"profile": {"\\udfff": 1}}', "unpaired UTF-16 surrogate"),
    ],
    ids=[
        "syntax",
        "empty",
        "blank",
        "duplicate-key",
        "nan",
        "infinity",
        "huge-number",
        "deep",
        "not-utf8",
        "lone-surrogate",
        "lone-surrogate-key",
    ],
)
def test_malformed_json_is_400(client: FlaskClient, body: bytes, detail: str) -> None:
    problem = assert_problem(post(client, body), 400, "malformed-json")
    assert detail in problem["detail"]


# ---- wrong content type or encoding: 415 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({"content_type": "text/plain"}, "`text/plain`"),
        ({"content_type": "application/x-www-form-urlencoded"}, "application/json"),
        ({"content_type": ""}, "no Content-Type"),
        ({"content_type": "application/json; charset=latin-1"}, "UTF-8"),
        ({"content_type": JSON, "headers": {"Content-Encoding": "gzip"}}, "Compressed"),
    ],
    ids=["text", "form", "none", "latin1", "gzip"],
)
def test_wrong_content_type_is_415(client: FlaskClient, headers: dict[str, Any], detail: str) -> None:
    resp = client.post("/v1/evaluations", data=json.dumps(with_profile()), **headers)
    problem = assert_problem(resp, 415, "unsupported-media-type")
    assert detail in problem["detail"]
    assert resp.headers.get("Accept-Post", JSON) == JSON


def test_json_with_utf8_charset_is_fine(client: FlaskClient) -> None:
    resp = post(client, with_profile(), content_type="application/json; charset=UTF-8")
    assert resp.status_code == 200


# ---- too large: 413 ----------------------------------------------------------------------------------------


def test_body_over_the_limit_is_413(make_app) -> None:
    client = make_app(MAX_CONTENT_LENGTH=256).test_client()
    big = with_profile()
    big["padding"] = "x" * 300
    problem = assert_problem(post(client, big), 413)
    assert problem["title"] == "Content Too Large"
    assert "256 bytes" in problem["detail"] and "MAX_BODY_BYTES" in problem["detail"]
    assert post(client, with_profile()).status_code == 200


# ---- the envelope: 422 ----------------------------------------------------------------------------------


def test_body_must_be_an_object(client: FlaskClient) -> None:
    problem = assert_problem(post(client, [with_profile()]), 422, "validation-error")
    assert problem["errors"][0]["allowed"] == ["ruleset", "profile", "explain", "view"]


def test_unknown_top_level_field(client: FlaskClient) -> None:
    problem = assert_problem(post(client, {**with_profile(), "explian": True}), 422, "validation-error")
    err = error_for(problem, "explian")
    assert "did you mean `explain`" in err["message"]
    assert err["allowed"] == ["ruleset", "profile", "explain", "view"]
    assert err["pointer"] == "/explian"


@pytest.mark.parametrize("explain", ["true", 1, None, "yes"])
def test_explain_is_strictly_boolean(client: FlaskClient, explain: Any) -> None:
    problem = assert_problem(post(client, {**with_profile(), "explain": explain}), 422, "validation-error")
    assert "`explain` must be JSON true or false" in error_for(problem, "explain")["message"]


@pytest.mark.parametrize("ruleset", [5, True, ["format-example"], {"id": "format-example"}])
def test_ruleset_must_be_text(client: FlaskClient, ruleset: Any) -> None:
    problem = assert_problem(post(client, {**with_profile(), "ruleset": ruleset}), 422, "validation-error")
    assert "`ruleset` must be text" in error_for(problem, "ruleset")["message"]


def test_profile_is_required(client: FlaskClient) -> None:
    problem = assert_problem(post(client, {"ruleset": RULESET_ID}), 422, "validation-error")
    assert "`profile` is required" in error_for(problem, "profile")["message"]


@pytest.mark.parametrize("profile", [[], "age=30", 30, None])
def test_profile_must_be_an_object(client: FlaskClient, profile: Any) -> None:
    problem = assert_problem(post(client, {"ruleset": RULESET_ID, "profile": profile}), 422, "validation-error")
    assert "JSON object" in error_for(problem, "profile")["message"]


def test_unknown_ruleset_is_404_with_the_loaded_ones(client: FlaskClient) -> None:
    problem = assert_problem(
        post(client, {"ruleset": "format-exampel", "profile": VALID_PROFILE}), 404, "unknown-ruleset"
    )
    assert problem["allowed"] == [RULESET_ID]
    err = error_for(problem, "ruleset")
    assert "did you mean `format-example`" in err["message"]


# ---- the profile: 422 with per-field messages naming what is allowed --------------------------------------


AGE = "expected a whole number from 0 to 120 (years)"
DIAGNOSIS = "expected one of confirmed, uncertain"
CONDITIONS = "expected a list of distinct values from heart_failure, scalp_infection"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"age": "abc"}, "profile.age", ['not the text "abc"', AGE]),
        ({"age": "30"}, "profile.age", ['not the text "30"', AGE]),
        ({"age": 30.5}, "profile.age", ["not the number 30.5", AGE]),
        ({"age": 60.5}, "profile.age", ["not the number 60.5", AGE]),
        ({"age": 1e300}, "profile.age", ["outside the allowed range", AGE]),
        ({"age": True}, "profile.age", ["not true", AGE]),
        ({"age": 121}, "profile.age", ["is 121, outside the allowed range", AGE]),
        ({"age": -1}, "profile.age", ["is -1, outside the allowed range", AGE]),
        ({"age": None}, "profile.age", ["`age` is required", AGE]),
        ({"pregnant": "true"}, "profile.pregnant", ['not the text "true"']),
        ({"pregnant": 1}, "profile.pregnant", ["not the number 1"]),
        ({"pregnant": "false"}, "profile.pregnant", ['not the text "false"']),
        ({"diagnosis": "maybe"}, "profile.diagnosis", ['the value "maybe", which is not allowed', DIAGNOSIS]),
        ({"diagnosis": "Confirmed"}, "profile.diagnosis", ["did you mean `confirmed`", DIAGNOSIS]),
        ({"diagnosis": 1}, "profile.diagnosis", ["must be text, not the number 1", DIAGNOSIS]),
        ({"conditions": "heart_failure"}, "profile.conditions", ["must be a list", CONDITIONS]),
        ({"conditions": ["heart_failure", "heart_failure"]}, "profile.conditions", ["lists a value twice", CONDITIONS]),
        ({"conditions": ["gout"]}, "profile.conditions[0]", ['the value "gout"', CONDITIONS]),
        ({"conditions": [None]}, "profile.conditions[0]", ["may not be null", CONDITIONS]),
    ],
)
def test_bad_profile_value(client: FlaskClient, changes: dict[str, Any], field: str, words: list[str]) -> None:
    problem = assert_problem(post(client, with_profile(**changes)), 422, "validation-error")
    assert [e["field"] for e in problem["errors"]] == [field]
    err = problem["errors"][0]
    for w in words:
        assert w in err["message"], err["message"]
    assert err["message"] in problem["detail"]
    if field.startswith("profile.age"):
        assert (err["minimum"], err["maximum"], err["unit"]) == (0, 120, "years")
    elif field.startswith("profile.pregnant"):
        assert err["allowed"] == [True, False]
    elif field.startswith("profile.diagnosis"):
        assert err["allowed"] == ["confirmed", "uncertain"]
    else:
        assert err["allowed"] == ["heart_failure", "scalp_infection"]


def test_missing_required_inputs(client: FlaskClient) -> None:
    problem = assert_problem(post(client, {"profile": {}}), 422, "validation-error")
    assert [e["field"] for e in problem["errors"]] == ["profile.age", "profile.diagnosis"]
    assert problem["detail"].startswith("2 problems:")


def test_unknown_profile_field_lists_the_inputs(client: FlaskClient) -> None:
    problem = assert_problem(post(client, with_profile(agee=30)), 422, "validation-error")
    err = error_for(problem, "profile.agee")
    assert "did you mean `age`" in err["message"]
    assert err["allowed"] == ["age", "diagnosis", "pregnant", "conditions"]


def test_every_problem_is_reported_at_once(client: FlaskClient) -> None:
    body = {"ruleset": RULESET_ID, "profile": {"age": "30", "diagnosis": "x", "smoker": True}, "explain": "no"}
    problem = assert_problem(post(client, body), 422, "validation-error")
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {"explain", "profile.age", "profile.diagnosis", "profile.smoker"}


# ---- HTTP-level errors ----------------------------------------------------------------------------------------


def test_unknown_path_is_404_problem(client: FlaskClient) -> None:
    problem = assert_problem(client.get("/v1/nothing-here"), 404)
    assert "/openapi.json" in problem["detail"]


def test_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    resp = client.put("/v1/evaluations")  # GET is the auditors' list, POST evaluates
    assert_problem(resp, 405)
    assert {"GET", "POST"} <= {m.strip() for m in resp.headers["Allow"].split(",")}
    assert_problem(client.delete(f"/v1/rulesets/{RULESET_ID}"), 405)
