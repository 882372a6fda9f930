"""Headers and hosts (issue 16, item 8): no-store and nosniff on patient data, HSTS under https, trusted
hosts, and no redirect that names the Host header a client sent."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .conftest import RULESET_ID, VALID_PROFILE, assert_problem


def test_evaluations_and_their_problems_are_not_stored_nor_sniffed(client: FlaskClient) -> None:
    for resp in (
        client.post("/v1/evaluations", json={"profile": VALID_PROFILE}),
        client.post("/v1/evaluations:batch", json={"profiles": [VALID_PROFILE]}),
        client.post("/v1/evaluations", json={"profile": {"age": "forty"}}),  # a problem quotes what was sent
    ):
        assert resp.headers["Cache-Control"] == "no-store", resp.status_code
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_a_view_that_sets_its_own_caching_keeps_it(client: FlaskClient) -> None:
    resp = client.get(f"/v1/rulesets/{RULESET_ID}")
    assert resp.headers["Cache-Control"] == "no-cache" and resp.headers["ETag"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_hsts_only_under_https(make_app: Callable[..., Flask]) -> None:
    plain = make_app().test_client().get("/healthz")
    assert "Strict-Transport-Security" not in plain.headers
    public = make_app(PUBLIC_BASE_URL="https://rules.example.org").test_client().get("/healthz")
    assert public.headers["Strict-Transport-Security"].startswith("max-age=")
    direct = make_app().test_client().get("/healthz", base_url="https://localhost")
    assert direct.headers["Strict-Transport-Security"].startswith("max-age=")


def test_a_merge_slashes_redirect_does_not_name_the_host_sent(client: FlaskClient) -> None:
    resp = client.get("/v1//rulesets", headers={"Host": "evil.example"})
    assert resp.status_code == 308
    assert resp.headers["Location"] == "/v1/rulesets"


def test_trusted_hosts_refuse_any_other_host(make_app: Callable[..., Flask]) -> None:
    client = make_app(TRUSTED_HOSTS="rules.example.org, .internal.example").test_client()
    assert client.get("/healthz", headers={"Host": "rules.example.org"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "a.internal.example:8443"}).status_code == 200
    for host in ("evil.example", "localhost"):
        assert_problem(client.get("/v1//rulesets", headers={"Host": host}), 400)
        assert_problem(client.post("/v1/evaluations", json={"profile": VALID_PROFILE}, headers={"Host": host}), 400)


@pytest.mark.parametrize("value", ["https://rules.example.org", "rules.example.org:443", "a b"])
def test_trusted_hosts_must_be_host_names(make_app: Callable[..., Flask], value: str) -> None:
    with pytest.raises(SystemExit, match="TRUSTED_HOSTS"):
        make_app(TRUSTED_HOSTS=value)
