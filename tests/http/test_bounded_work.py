"""Bounded work per request (issue 16, item 2): a hostile body costs little and answers little.

Only sizes are asserted here; bench/hostile.py measures the time (target: 0.2 s for a 1 MB body).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from service.ruleset.validator import MAX_PROBLEMS

from .conftest import VALID_PROFILE, assert_problem, recorded

MAX_ANSWER = 64 * 1024
BODY_LIMIT = 1_048_576


def post(client: FlaskClient, path: str, body: dict[str, Any]) -> Any:
    data = json.dumps(body).encode()
    assert len(data) <= BODY_LIMIT
    return client.post(path, data=data, content_type="application/json")


def test_a_megabyte_of_unknown_keys_answers_the_first_problems_and_a_count(client: FlaskClient) -> None:
    keys = {f"agx{i}": 1 for i in range(BODY_LIMIT // 15)}
    resp = post(client, "/v1/evaluations", {"profile": {**VALID_PROFILE, **keys}})
    body = assert_problem(resp, 422, "validation-error")
    assert len(resp.data) <= MAX_ANSWER
    assert len(body["errors"]) == MAX_PROBLEMS
    assert body["errorsOmitted"] == len(keys) - MAX_PROBLEMS
    assert body["detail"].startswith(f"{len(keys)} problems:")


def test_a_megabyte_of_near_miss_set_items_answers_the_first_problems_and_a_count(client: FlaskClient) -> None:
    items = [f"heart_failur{i}" for i in range(BODY_LIMIT // 21)]
    resp = post(client, "/v1/evaluations", {"profile": {**VALID_PROFILE, "conditions": items}})
    body = assert_problem(resp, 422, "validation-error")
    assert len(resp.data) <= MAX_ANSWER
    assert len(body["errors"]) == MAX_PROBLEMS
    assert body["errorsOmitted"] == len(items) - MAX_PROBLEMS
    assert all(e["field"].startswith("profile.conditions[") for e in body["errors"])


def test_few_problems_are_all_listed_without_a_count(client: FlaskClient) -> None:
    body = assert_problem(
        post(client, "/v1/evaluations", {"profile": {"age": "x", "diagnosis": 3}}), 422, "validation-error"
    )
    assert len(body["errors"]) == 2 and "errorsOmitted" not in body


def test_a_batch_describes_a_bounded_number_of_problems(client: FlaskClient) -> None:
    from service.http.api.routes import BATCH_PROBLEMS

    bad = {f"x{i}": 1 for i in range(100)}
    resp = post(client, "/v1/evaluations:batch", {"profiles": [bad] * 1000})
    assert resp.status_code == 200
    items = resp.get_json()["decisions"]
    assert sum(len(d["error"]["errors"]) for d in items) == BATCH_PROBLEMS
    assert all(d["error"]["status"] == 422 for d in items)
    assert items[-1]["error"]["errorsOmitted"] == 102  # 100 unknown keys, age and diagnosis missing
    assert len(resp.data) <= 1000 * 300  # the rest is one small problem per profile


def test_explain_in_a_batch_is_for_small_batches_only(client: FlaskClient) -> None:
    from service.http.api.routes import BATCH_EXPLAIN_LIMIT

    ok = post(client, "/v1/evaluations:batch", {"profiles": [VALID_PROFILE] * BATCH_EXPLAIN_LIMIT, "explain": True})
    assert ok.status_code == 200
    assert all("explanation" in d for d in ok.get_json()["decisions"])
    big = [VALID_PROFILE] * (BATCH_EXPLAIN_LIMIT + 1)
    body = assert_problem(
        post(client, "/v1/evaluations:batch", {"profiles": big, "explain": True}), 422, "validation-error"
    )
    assert body["errors"][0]["field"] == "explain" and body["errors"][0]["maximum"] == BATCH_EXPLAIN_LIMIT
    assert post(client, "/v1/evaluations:batch", {"profiles": big, "explain": False}).status_code == 200


def test_the_log_keeps_a_decision_without_its_explanation(make_app: Any, tmp_path: Path) -> None:
    """The explanation follows from the profile and the stored revision (replay recomputes it)."""
    app: Flask = make_app(INSTANCE_PATH=str(tmp_path / "instance"))
    client = app.test_client()
    explained = client.post("/v1/evaluations", json={"profile": VALID_PROFILE, "explain": True}).get_json()
    plain = client.post("/v1/evaluations", json={"profile": VALID_PROFILE}).get_json()
    assert "explanation" in explained
    kept = recorded(app, explained["decision_id"])
    assert kept is not None
    stored = kept["decision"] if isinstance(kept["decision"], dict) else json.loads(kept["decision"])
    assert "explanation" not in stored
    other = recorded(app, plain["decision_id"])
    assert other is not None
    assert abs(len(json.dumps(kept)) - len(json.dumps(other))) < 200  # ids and times differ, nothing else
    app.extensions["decision_log"].close()
