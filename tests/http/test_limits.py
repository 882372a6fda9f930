"""Rate limits: evaluations per credential or address, sign-in attempts and refused tokens per address.

Each over-limit request is a 429 problem with `Retry-After`; the counters are shared through Redis by every
app (worker, replica) that names it, and a Redis outage falls back to per-worker counting, never to an error.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from .conftest import VALID_PROFILE, assert_problem, decisions_table_missing

TOKEN = "auditor-token-for-the-limits-tests"
DIGEST = hashlib.sha256(TOKEN.encode()).hexdigest()


def evaluate(client: Any, **headers: str) -> Any:
    return client.post("/v1/evaluations", json={"profile": VALID_PROFILE}, headers=headers)


def redis_url() -> str:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail("Redis is required under CI (127.0.0.1:6379)")
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/0"


def test_evaluations_over_the_limit_get_429_with_retry_after(make_app: Callable[..., Flask]) -> None:
    client = make_app(RATE_LIMIT_EVALUATIONS="3/minute").test_client()
    for _ in range(3):
        assert evaluate(client).status_code == 200
    resp = evaluate(client)
    body = assert_problem(resp, 429)
    assert body["title"] == "Too Many Requests"
    assert int(resp.headers["Retry-After"]) > 0
    other = evaluate(client, Authorization="Bearer integration-credential")  # another credential, its own count
    assert other.status_code == 200


def test_batch_and_form_count_as_evaluations(make_app: Callable[..., Flask]) -> None:
    client = make_app(RATE_LIMIT_EVALUATIONS="2/minute").test_client()
    assert client.post("/v1/evaluations:batch", json={"profiles": [VALID_PROFILE]}).status_code == 200
    assert evaluate(client).status_code == 200
    assert client.post("/v1/evaluations:batch", json={"profiles": [VALID_PROFILE]}).status_code == 429


def test_limits_can_be_turned_off(make_app: Callable[..., Flask]) -> None:
    client = make_app(RATE_LIMIT_EVALUATIONS="off").test_client()
    assert all(evaluate(client).status_code == 200 for _ in range(30))


def test_refused_auditor_tokens_lock_the_address_out(make_app: Callable[..., Flask]) -> None:
    client = make_app(AUDITOR_TOKEN_HASHES=DIGEST, RATE_LIMIT_AUTH_FAILURES="5/minute").test_client()
    good = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(10):  # a successful check does not count
        assert client.get("/v1/evaluations", headers=good).status_code == 200
    for i in range(5):
        assert client.get("/v1/evaluations", headers={"Authorization": f"Bearer guess-{i}"}).status_code == 401
    resp = client.get("/v1/evaluations", headers={"Authorization": "Bearer guess-6"})
    assert_problem(resp, 429)
    assert int(resp.headers["Retry-After"]) > 0
    assert client.get("/v1/evaluations", headers=good).status_code == 429  # locked out, even with the right token


def test_sign_in_attempts_are_limited_per_address(make_app: Callable[..., Flask]) -> None:
    app = make_app(AUDITOR_TOKEN_HASHES=DIGEST, RATE_LIMIT_SIGN_IN="3/minute", RATE_LIMIT_AUTH_FAILURES="off")
    client = app.test_client()
    page = client.get("/decisions/sign-in").get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    statuses = [
        client.post("/decisions/sign-in", data={"token": f"guess-{i}", "csrf_token": csrf}).status_code
        for i in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


def test_counters_are_shared_through_redis(make_app: Callable[..., Flask]) -> None:
    shared = {
        "RATE_LIMIT_STORAGE_URI": redis_url(),
        "RATE_LIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        "RATE_LIMIT_EVALUATIONS": "4/minute",
    }
    first, second = make_app(**shared).test_client(), make_app(**shared).test_client()  # two workers or replicas
    assert [evaluate(c).status_code for c in (first, second, first, second)] == [200] * 4
    assert evaluate(first).status_code == 429
    assert evaluate(second).status_code == 429


def test_an_unreachable_redis_falls_back_to_counting_in_the_worker(make_app: Callable[..., Flask]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    client = make_app(
        RATE_LIMIT_STORAGE_URI=f"redis://127.0.0.1:{port}/0", RATE_LIMIT_EVALUATIONS="2/minute"
    ).test_client()
    assert [evaluate(client).status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RATE_LIMIT_EVALUATIONS", "lots"),
        ("RATE_LIMIT_SIGN_IN", "3 per fortnight"),
        ("RATE_LIMIT_STORAGE_URI", "mongodb://x"),
    ],
)
def test_a_bad_limit_setting_stops_the_start(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    from service import config

    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match=name):
        config.from_env()


def test_a_503_keeps_its_own_retry_after_and_a_200_has_none(make_app: Callable[..., Flask]) -> None:
    """Flask-Limiter set every limited response's Retry-After to its window's end (60 s), the 503's too."""
    from service.decisions.errors import RecordError

    app = make_app(RATE_LIMIT_EVALUATIONS="100/minute")
    client = app.test_client()
    ok = client.post("/v1/evaluations", json={"profile": VALID_PROFILE})
    assert ok.status_code == 200 and "Retry-After" not in ok.headers
    assert ok.headers["X-RateLimit-Limit"] == "100"
    with decisions_table_missing(app):
        resp = client.post("/v1/evaluations", json={"profile": VALID_PROFILE})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == str(RecordError.retry_after)
