"""Record before respond, and 503 when the record cannot be written - through HTTP, on a real database.

The JSON API (POST /v1/evaluations) is built on another branch. Until it is merged, the first tests
exercise the contract through a route that does what every channel does - service.answering with the
app's real recorder - and the last ones run against POST /v1/evaluations itself when the app has it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from service.answering import make_decision
from service.decisions import DecisionLog, queries
from service.decisions.database import connect
from service.decisions.integrity import verify

from .conftest import PROFILE, raw_sql


def channel_route(app: Flask) -> Flask:
    """A minimal channel: validate, evaluate, record, answer - exactly the path every real channel takes."""

    def answer() -> ResponseReturnValue:
        body = request.get_json()
        decision = make_decision(
            current_app.extensions["registry"],
            body.get("ruleset"),
            body["profile"],
            channel="test",
            recorder=current_app.extensions.get("decision_log"),
        )
        return jsonify(decision)

    app.add_url_rule("/test/decide", "test_decide", answer, methods=["POST"])
    return app


@pytest.fixture(params=["channel", "api"])
def post_evaluation(request: pytest.FixtureRequest, app: Flask) -> Callable[[dict], object]:
    """POST a profile through a minimal channel of the test, or through the real POST /v1/evaluations."""
    if request.param == "api":
        client = app.test_client()
        return lambda body: client.post("/v1/evaluations", json=body)
    client = channel_route(app).test_client()
    return lambda body: client.post("/test/decide", json=body)


def test_every_answer_is_recorded_before_it_is_given(app: Flask, post_evaluation: Callable) -> None:
    log = app.extensions["decision_log"]
    for age in (20, 30, 40):
        response = post_evaluation({"ruleset": "format-example", "profile": {**PROFILE, "age": age}})
        assert response.status_code == 200
        # read back on a fresh connection the moment the answer arrives: it is already committed
        record = queries.get(log, response.json["decision_id"])
        assert record is not None
        assert record["profile"]["age"] == age
    assert verify(log).counts["decisions"] == 3


@pytest.mark.parametrize("broken", ["decisions", "chain_heads"])
def test_an_unwritable_log_gives_503_and_no_answer(
    app: Flask, database_url: str, post_evaluation: Callable, broken: str
) -> None:
    log = app.extensions["decision_log"]
    assert post_evaluation({"ruleset": "format-example", "profile": PROFILE}).status_code == 200
    raw_sql(database_url, f"ALTER TABLE {broken} RENAME TO {broken}_gone")
    try:
        response = post_evaluation({"ruleset": "format-example", "profile": PROFILE})
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert response.headers["Retry-After"]
        body = response.get_data(as_text=True)
        assert "decision_id" not in body and "candidates" not in body
    finally:
        raw_sql(database_url, f"ALTER TABLE {broken}_gone RENAME TO {broken}")
    report = verify(log)
    assert report.ok and report.counts["decisions"] == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_read_only_database_gives_503(app: Flask, database_url: str, post_evaluation: Callable) -> None:
    """The same database opened read-only (SQLite refuses every write then, even to root)."""
    writable: DecisionLog = app.extensions["decision_log"]
    path = database_url.removeprefix("sqlite:///")
    read_only = DecisionLog(connect(f"sqlite:///file:{path}?mode=ro&uri=true"), writable.key, lambda sha: None)
    app.extensions["decision_log"] = read_only
    try:
        read_only.ping()  # it can be read...
        response = post_evaluation({"ruleset": "format-example", "profile": PROFILE})
        assert response.status_code == 503  # ...but nothing can be recorded, so nothing is answered
    finally:
        read_only.close()
        app.extensions["decision_log"] = writable
    assert verify(writable).counts["decisions"] == 0
