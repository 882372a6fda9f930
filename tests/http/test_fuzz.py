"""Random JSON and random bytes at every endpoint: never a 5xx, and every 4xx is a problem document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import create_app

from .conftest import RULESET_ID, write_ruleset

PATHS = [
    "/v1/evaluations",
    "/v1/evaluations:batch",
    "/v1/rulesets",
    f"/v1/rulesets/{RULESET_ID}",
    f"/v1/rulesets/{RULESET_ID}/source",
    "/healthz",
    "/openapi.json",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["format-example", "age", "confirmed", "heart_failure", "true", "30"]),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.text(max_size=8), st.sampled_from(["ruleset", "profile", "profiles", "explain", "age"])),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=20,
)
OPTIONAL_INPUTS = {
    "pregnant": st.one_of(st.booleans(), st.booleans(), SCALARS),
    "conditions": st.one_of(st.lists(st.sampled_from(["heart_failure", "scalp_infection"]), max_size=3), JSON_VALUES),
}
PROFILE = st.one_of(
    # Mostly well-formed, so that many requests reach the engine ...
    st.fixed_dictionaries(
        {
            "age": st.one_of(st.integers(-5, 130), st.integers(0, 120), SCALARS),
            "diagnosis": st.one_of(st.sampled_from(["confirmed", "uncertain"]), SCALARS),
        },
        optional=OPTIONAL_INPUTS,
    ),
    # ... and anything else.
    st.fixed_dictionaries({}, optional={"age": SCALARS, "diagnosis": SCALARS, **OPTIONAL_INPUTS}),
    JSON_VALUES,
)
ENVELOPE = {"ruleset": st.one_of(st.just(RULESET_ID), SCALARS), "explain": st.one_of(st.booleans(), SCALARS)}
BODIES = {
    "/v1/evaluations": st.fixed_dictionaries({"profile": PROFILE}, optional=ENVELOPE),
    "/v1/evaluations:batch": st.fixed_dictionaries({"profiles": st.lists(PROFILE, max_size=4)}, optional=ENVELOPE),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    write_ruleset(folder)
    return create_app({"RULESETS_DIR": str(folder), "TESTING": True, "MAX_CONTENT_LENGTH": 65536}).test_client()


def check(resp: Any, method: str = "GET") -> None:
    assert resp.status_code < 500, resp.get_data(as_text=True)
    if resp.status_code >= 400:
        assert resp.mimetype == "application/problem+json"
    if resp.status_code >= 400 and method != "HEAD":  # HEAD answers carry no body
        body = json.loads(resp.get_data())
        assert body["status"] == resp.status_code and body["title"]


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.data(), path=st.sampled_from(list(BODIES)))
def test_random_json(client: FlaskClient, data: st.DataObject, path: str) -> None:
    body = data.draw(st.one_of(BODIES[path], BODIES[path], JSON_VALUES))
    check(client.post(path, data=json.dumps(body), content_type="application/json"))


@FUZZ
@given(
    path=st.sampled_from(PATHS),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    body=st.binary(max_size=300),
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; charset=utf-16", "a/b"]),
)
def test_random_bytes(client: FlaskClient, path: str, method: str, body: bytes, content_type: str) -> None:
    check(client.open(path, method=method, data=body, content_type=content_type), method)


@FUZZ
@given(path=st.text(alphabet=st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=40))
def test_random_paths(client: FlaskClient, path: str) -> None:
    check(client.get("/" + path.lstrip("/")))
