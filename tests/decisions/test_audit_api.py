"""The auditor endpoints: GET /v1/evaluations[/<id>], replay, filters, cursors, CSV, credentials."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.answering import commit, make_decision, prepare
from service.decisions import ConfigurationError
from service.decisions.identifiers import IdentifierKey

from .conftest import AUDITOR, HMAC_KEY, PROFILE, raw_sql


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def decide(app: Flask, profile: dict, channel: str = "api", **kwargs: object) -> str:
    prepared = prepare(app.extensions["registry"], None, profile)
    return commit(prepared, app.extensions["decision_log"], channel=channel, **kwargs).decision_id


def test_without_a_token_the_log_is_closed(client: FlaskClient) -> None:
    for method, path in (
        ("GET", "/v1/evaluations"),
        ("GET", "/v1/evaluations/6f1c1e2a-3f0e-4b8e-9d57-0d1f6a1b2c3d"),
        ("POST", "/v1/evaluations/6f1c1e2a-3f0e-4b8e-9d57-0d1f6a1b2c3d/replay"),
    ):
        response = client.open(path, method=method)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="decision-log"'
        assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("header", ["Bearer wrong-token", "Basic YXVkaXRvcjpzZWNyZXQ=", "Bearer ", "auditor-token"])
def test_a_wrong_credential_is_401(client: FlaskClient, header: str) -> None:
    response = client.get("/v1/evaluations", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="decision-log"')


def test_any_configured_token_is_accepted(make_app: Callable[..., Flask]) -> None:
    digests = [hashlib.sha256(t.encode()).hexdigest() for t in ("first-auditor", "second-auditor")]
    client = make_app(AUDITOR_TOKEN_HASHES=" , ".join(digests)).test_client()
    for token in ("first-auditor", "second-auditor"):
        assert client.get("/v1/evaluations", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_no_configured_token_means_no_access(make_app: Callable[..., Flask]) -> None:
    client = make_app(AUDITOR_TOKEN_HASHES="").test_client()
    assert client.get("/v1/evaluations", headers=AUDITOR).status_code == 401


def test_a_malformed_token_digest_stops_start_up(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigurationError, match="AUDITOR_TOKEN_HASHES"):
        make_app(AUDITOR_TOKEN_HASHES="not-a-digest")


def test_one_record(app: Flask, client: FlaskClient) -> None:
    decision_id = decide(app, PROFILE)
    response = client.get(f"/v1/evaluations/{decision_id}", headers=AUDITOR)
    assert response.status_code == 200
    body = response.json
    assert body["decision_id"] == decision_id
    assert body["decision"]["decision_id"] == decision_id
    assert body["candidates"] == ["topical"]
    assert set(body["chain"]) == {"seq", "prev_hash", "hash"}


def test_an_unknown_or_malformed_decision_id(client: FlaskClient) -> None:
    missing = client.get("/v1/evaluations/6f1c1e2a-3f0e-4b8e-9d57-0d1f6a1b2c3d", headers=AUDITOR)
    assert missing.status_code == 404
    malformed = client.get("/v1/evaluations/not-a-uuid", headers=AUDITOR)
    assert malformed.status_code == 400
    assert malformed.json["errors"][0]["parameter"] == "decision_id"


def ids(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.json
    return [item["decision_id"] for item in response.json["items"]]


def test_filters(app: Flask, client: FlaskClient) -> None:
    adult = decide(app, {**PROFILE, "pregnant": False})
    uncertain = decide(app, {"age": 30, "diagnosis": "uncertain"}, channel="form")
    key = IdentifierKey(HMAC_KEY.encode())
    card = {"uuid": "c-1", "option": "topical", "indicator": "info", "summary": "Topical"}
    cds = decide(app, PROFILE, channel="cds-hooks", identifiers={"patientId": "Patient/7"}, cards=[card])

    def get(query: str) -> list[str]:
        return ids(client.get(f"/v1/evaluations?{query}", headers=AUDITOR))

    assert get("") == [cds, uncertain, adult]
    assert get("ruleset=format-example") == [cds, uncertain, adult]
    assert get("channel=form") == [uncertain]
    assert get("channel=batch") == []
    assert get("option=oral") == [cds, uncertain, adult]
    assert get("option=oral&role=candidate") == [adult]
    assert get("option=oral&role=excluded") == [cds, uncertain]
    assert get("option=review") == [uncertain]
    assert get("ruleset=format-example&option=topical&channel=cds-hooks") == [cds]
    assert get(f"patient_hash={key.hash('patientId', 'Patient/7')}") == [cds]
    assert get(f"patient_hash={key.hash('patientId', 'Patient/8')}") == []


def test_time_filters(app: Flask, client: FlaskClient, database_url: str) -> None:
    first = decide(app, PROFILE)
    second = decide(app, PROFILE)
    today = dt.datetime.now(dt.UTC).date()
    tomorrow = today + dt.timedelta(days=1)
    assert ids(client.get(f"/v1/evaluations?since={today}&until={tomorrow}", headers=AUDITOR)) == [second, first]
    assert ids(client.get(f"/v1/evaluations?since={tomorrow}", headers=AUDITOR)) == []
    assert ids(client.get(f"/v1/evaluations?until={today}", headers=AUDITOR)) == []
    record = client.get(f"/v1/evaluations/{second}", headers=AUDITOR).json
    at = dt.datetime.fromisoformat(record["evaluated_at"])
    exactly = at.isoformat().replace("+00:00", "Z")
    assert ids(client.get(f"/v1/evaluations?since={exactly}", headers=AUDITOR))[0] == second
    assert second not in ids(client.get(f"/v1/evaluations?until={exactly}", headers=AUDITOR))
    offset = at.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()
    assert ids(client.get("/v1/evaluations", query_string={"since": offset}, headers=AUDITOR))[0] == second


def test_cursor_pagination_returns_every_record_once(app: Flask, client: FlaskClient) -> None:
    made = [decide(app, {**PROFILE, "age": 20 + n}) for n in range(7)]
    seen: list[str] = []
    url = "/v1/evaluations?limit=3&ruleset=format-example"
    pages = 0
    while url:
        response = client.get(url, headers=AUDITOR)
        seen += ids(response)
        pages += 1
        url = response.json.get("next")
        if url:
            assert response.json["next_cursor"] in url
    assert pages == 3
    assert seen == list(reversed(made))


def test_a_cursor_only_works_with_the_filters_it_was_issued_for(app: Flask, client: FlaskClient) -> None:
    for _ in range(3):
        decide(app, PROFILE)
    cursor = client.get("/v1/evaluations?limit=1", headers=AUDITOR).json["next_cursor"]
    assert client.get(f"/v1/evaluations?limit=1&cursor={cursor}", headers=AUDITOR).status_code == 200
    other = client.get(f"/v1/evaluations?limit=1&channel=api&cursor={cursor}", headers=AUDITOR)
    assert other.status_code == 400
    assert other.json["errors"][0]["parameter"] == "cursor"
    forged = client.get("/v1/evaluations?cursor=eyJiIjoxMH0", headers=AUDITOR)
    assert forged.status_code == 400
    assert forged.json["errors"][0]["parameter"] == "cursor"


@pytest.mark.parametrize(
    ("query", "parameter", "allowed"),
    [
        ("ruleset=nope", "ruleset", ["format-example"]),
        ("option=minoxidil", "option", ["oral", "review", "topical"]),
        ("ruleset=format-example&option=nope", "option", ["oral", "review", "topical"]),
        ("option=oral&role=favourite", "role", ["candidate", "excluded", "referral"]),
        ("role=candidate", "role", None),
        ("channel=Not%20A%20Channel", "channel", ["api"]),
        ("since=yesterday", "since", None),
        ("since=2026-02-30", "since", None),
        ("since=2026-01-01T10:00:00", "since", None),
        ("since=2026-02-01&until=2026-01-01", "until", None),
        ("patient_hash=Patient/7", "patient_hash", None),
        ("limit=0", "limit", None),
        ("limit=501", "limit", None),
        ("limit=ten", "limit", None),
        ("format=xml", "format", ["json", "csv"]),
        ("format=csv&limit=10", "limit", None),
        ("sort=seq", "sort", "PARAMETERS"),
        ("channel=api&channel=form", "channel", None),
    ],
)
def test_bad_query_parameters_are_400_naming_parameter_and_allowed_values(
    app: Flask, client: FlaskClient, query: str, parameter: str, allowed: list[str] | str | None
) -> None:
    from service.http.audit.query import PARAMETERS

    decide(app, PROFILE)
    response = client.get(f"/v1/evaluations?{query}", headers=AUDITOR)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    [problem] = response.json["errors"]
    assert problem["parameter"] == parameter
    assert problem["message"]
    expected = list(PARAMETERS) if allowed == "PARAMETERS" else allowed
    assert problem.get("allowed") == expected


def test_csv_export_holds_every_matching_record(app: Flask, client: FlaskClient) -> None:
    made = [decide(app, {**PROFILE, "age": 20 + n}) for n in range(3)]
    decide(app, PROFILE, channel="form")
    for response in (
        client.get("/v1/evaluations?format=csv&channel=api", headers=AUDITOR),
        client.get("/v1/evaluations?channel=api", headers={**AUDITOR, "Accept": "text/csv"}),
    ):
        assert response.status_code == 200
        assert response.mimetype == "text/csv"
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert [r["decision_id"] for r in rows] == list(reversed(made))
        assert rows[0]["candidates"] == "topical"
        assert rows[0]["excluded"] == "oral"
        assert rows[0]["profile"] == '{"age":22,"diagnosis":"confirmed"}'


def test_json_stays_the_default_for_browsers(app: Flask, client: FlaskClient) -> None:
    decide(app, PROFILE)
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = client.get("/v1/evaluations", headers={**AUDITOR, "Accept": accept})
    assert response.mimetype == "application/json"


def test_the_audit_blueprint_works_on_its_own_path(app: Flask) -> None:
    """GET /v1/evaluations is ours; POST on the same path belongs to the JSON API blueprint (if present)."""
    rules = [r for r in app.url_map.iter_rules() if r.rule == "/v1/evaluations" and "GET" in r.methods]
    assert [r.endpoint for r in rules] == ["audit.search"]


def test_readyz_reports_the_database(app: Flask, client: FlaskClient, database_url: str) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["database"] == {"backend": database_url.split(":")[0], "reachable": True, "can_record": True}
    raw_sql(database_url, "ALTER TABLE chain_heads RENAME TO chain_heads_gone")
    try:
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json["database"]["reachable"] is False
        assert "chain_heads" not in down.get_data(as_text=True)  # details go to the log, not to the probe
    finally:
        raw_sql(database_url, "ALTER TABLE chain_heads_gone RENAME TO chain_heads")


def test_a_log_that_cannot_be_read_is_503(app: Flask, client: FlaskClient, database_url: str) -> None:
    decision_id = make_decision(
        app.extensions["registry"], None, PROFILE, channel="api", recorder=app.extensions["decision_log"]
    ).decision_id
    raw_sql(database_url, "ALTER TABLE decisions RENAME TO decisions_gone")
    try:
        response = client.get(f"/v1/evaluations/{decision_id}", headers=AUDITOR)
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
    finally:
        raw_sql(database_url, "ALTER TABLE decisions_gone RENAME TO decisions")


def _cursor(data: dict[str, object]) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=%C2%B2", "limit"),  # a superscript two: a Unicode digit, but not a number
        ("limit=" + "9" * 5000, "limit"),  # more digits than int() converts
        ("since=9999-12-31T23:59:59-23:59", "since"),  # past the year 9999 in UTC
        ("since=0001-01-01T00:00:00%2B14:00", "since"),  # before the year 1 in UTC
        ("until=9999-12-31T23:59:59-23:59", "until"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/evaluations", "/decisions"])
def test_out_of_range_query_values_are_400_naming_the_parameter(
    app: Flask, client: FlaskClient, path: str, query: str, parameter: str
) -> None:
    """These were 500s (issue 16, item 7): a non-ASCII digit, and instants that overflow in UTC."""
    decide(app, PROFILE)
    response = client.get(f"{path}?{query}", headers=AUDITOR)
    assert response.status_code == 400
    if path == "/v1/evaluations":
        [problem] = response.json["errors"]
        assert problem["parameter"] == parameter
    else:
        assert f'id="err-{parameter}"' in response.get_data(as_text=True)


@pytest.mark.parametrize("key", ["b", "a"])
@pytest.mark.parametrize("seq", [2**63, 2**64 + 5, -(2**63) - 1])
def test_a_forged_cursor_out_of_the_seq_range_is_400(app: Flask, client: FlaskClient, seq: int, key: str) -> None:
    """A cursor is base64 JSON: a forged one with a seq past 64 bits was a 500 (issue 16, item 7)."""
    from service.decisions.queries import Filters

    decide(app, PROFILE)
    cursor = _cursor({key: seq, "f": Filters().fingerprint()})
    if key == "b":
        response = client.get(f"/v1/evaluations?cursor={cursor}", headers=AUDITOR)
        assert response.status_code == 400
        [problem] = response.json["errors"]
        assert problem["parameter"] == "cursor"
    page = client.get(f"/decisions?cursor={cursor}", headers=AUDITOR)
    assert page.status_code == 400
    assert 'id="err-cursor"' in page.get_data(as_text=True)


def test_the_audit_400s_are_what_the_openapi_document_says(client: FlaskClient) -> None:
    """`parameter` problems and the non-UUID 400 are documented (issue 16, item 9: schemathesis found both)."""
    from jsonschema import FormatChecker
    from openapi_schema_validator import OAS31Validator

    doc = client.get("/openapi.json").get_json()
    problem = OAS31Validator({**doc, "$ref": "#/components/schemas/Problem"}, format_checker=FormatChecker())
    for path in ("/v1/evaluations/not-a-uuid", "/v1/evaluations?limit=%C2%B2", "/v1/evaluations?nope=1"):
        resp = client.get(path, headers=AUDITOR)
        assert resp.status_code == 400
        problem.validate(resp.json)
        assert "parameter" in resp.json["errors"][0]
    assert "400" in doc["paths"]["/v1/evaluations/{decision_id}"]["get"]["responses"]
    assert "400" in doc["paths"]["/v1/evaluations/{decision_id}/replay"]["post"]["responses"]
