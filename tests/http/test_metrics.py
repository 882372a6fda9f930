"""GET /metrics after some requests: requests and latency by endpoint and status, decisions by ruleset and option.

The in-process registry is shared by every app in this process, so the tests compare before and after.
(The multiprocess mode used under gunicorn is tested in test_gunicorn.py.)
"""

from __future__ import annotations

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from .conftest import RULESET_ID, VALID_PROFILE

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: FlaskClient) -> Samples:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    out: Samples = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_request_and_decision_metrics(client: FlaskClient) -> None:
    before = scrape(client)
    for _ in range(3):
        assert client.post("/v1/evaluations", json={"profile": VALID_PROFILE}).status_code == 200
    client.post("/v1/evaluations", json={"profile": {"age": "30"}})
    client.post("/v1/evaluations:batch", json={"profiles": [VALID_PROFILE, {"age": 12, "diagnosis": "uncertain"}]})
    client.get(f"/v1/rulesets/{RULESET_ID}")
    client.get("/v1/rulesets/unknown-one")
    client.get("/no/such/path/12345")
    client.open("/healthz", method="BREW")
    after = scrape(client)

    post, get = {"method": "POST", "endpoint": "/v1/evaluations"}, {"method": "GET"}
    assert delta(before, after, "http_requests_total", **post, status="200") == 3
    assert delta(before, after, "http_requests_total", **post, status="422") == 1
    assert delta(before, after, "http_request_duration_seconds_count", **post, status="200") == 3
    assert delta(before, after, "http_request_duration_seconds_bucket", **post, status="200", le="+Inf") == 3
    # The route template is the label, never the raw path: unknown URLs cannot create new series.
    detail = {**get, "endpoint": "/v1/rulesets/<ruleset_id>"}
    assert delta(before, after, "http_requests_total", **detail, status="200") == 1
    assert delta(before, after, "http_requests_total", **detail, status="404") == 1
    assert delta(before, after, "http_requests_total", **get, endpoint="<unmatched>", status="404") == 1
    assert delta(before, after, "http_requests_total", method="other", endpoint="<unmatched>", status="405") == 1
    assert not any("12345" in str(labels) or "BREW" in str(labels) for _, labels in after)

    version = {"ruleset": RULESET_ID, "version": "0.1.0"}
    assert delta(before, after, "decisions_total", **version, channel="api") == 3
    assert delta(before, after, "decisions_total", **version, channel="batch") == 2
    assert delta(before, after, "decision_candidates_total", ruleset=RULESET_ID, option="topical") == 4
    assert delta(before, after, "decision_candidates_total", ruleset=RULESET_ID, option="oral") == 4
    assert delta(before, after, "decision_referrals_total", ruleset=RULESET_ID, option="review") == 1
    assert delta(before, after, "invalid_profiles_total", channel="api") == 1


def test_no_created_series(client: FlaskClient) -> None:
    # The same series in and out of gunicorn's multiprocess mode, which has no *_created.
    assert not [name for name, _ in scrape(client) if name.endswith("_created")]
