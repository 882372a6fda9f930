"""OIDC against a loopback identity provider (tests/http/idp.py): bearer JWTs on the API and the audit
channels, and the clinicians' authorization code + PKCE sign-in to the form."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient

from . import idp
from .conftest import RULESET_ID, VALID_PROFILE, assert_problem

ROLE_MAP = {
    "hairloss-integration": "integration",
    "hairloss-clinician": "clinician",
    "hairloss-auditor": "auditor",
}
HTML = {"Accept": "text/html"}
FORM = {"age": "30", "diagnosis": "confirmed", "pregnant": "false"}


@pytest.fixture
def provider() -> Iterator[idp.Provider]:
    with idp.running() as running:
        yield running


@pytest.fixture
def app(make_app: Callable[..., Flask], provider: idp.Provider) -> Flask:
    return make_app(
        OIDC_ISSUER=provider.issuer,
        OIDC_AUDIENCE=idp.AUDIENCE,
        OIDC_ROLE_MAP=ROLE_MAP,
        OIDC_CLIENT_ID=idp.CLIENT_ID,
        RATE_LIMIT_AUTH_FAILURES="off",
    )


def evaluate(client: FlaskClient, token: str) -> Any:
    return client.post("/v1/evaluations", json={"profile": VALID_PROFILE}, headers={"Authorization": f"Bearer {token}"})


def test_a_valid_token_with_the_role_evaluates(app: Flask, provider: idp.Provider) -> None:
    client = app.test_client()
    assert evaluate(client, provider.token(roles=["hairloss-integration"])).status_code == 200
    assert evaluate(client, provider.token(alg="ES256", roles="hairloss-integration other")).status_code == 200


def test_a_token_from_the_token_endpoint_evaluates(app: Flask, provider: idp.Provider) -> None:
    provider.clients["ehr-batch"] = ["hairloss-integration"]
    got = requests.post(
        provider.issuer + "/token", data={"grant_type": "client_credentials", "client_id": "ehr-batch"}, timeout=5
    )
    assert got.status_code == 200
    resp = app.test_client().post(
        "/v1/evaluations:batch",
        json={"profiles": [VALID_PROFILE]},
        headers={"Authorization": f"Bearer {got.json()['access_token']}"},
    )
    assert resp.status_code == 200


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "https://other.example/api"},
        {"iss": "http://127.0.0.1:1"},
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
        {"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200},
        {"exp": None},
        {"iat": None},
        {"aud": None},
        {"exp": "soon"},
    ],
    ids=["wrong-aud", "wrong-iss", "expired", "issued-in-the-future", "no-exp", "no-iat", "no-aud", "exp-not-a-number"],
)
def test_tokens_failing_a_claim_check_are_401(app: Flask, provider: idp.Provider, claims: dict[str, Any]) -> None:
    resp = evaluate(app.test_client(), provider.token(roles=["hairloss-integration"], **claims))
    assert_problem(resp, 401)
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="hairloss-rules", error="invalid_token"'


def test_tokens_signed_otherwise_are_401(app: Flask, provider: idp.Provider) -> None:
    client = app.test_client()
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    roles = ["hairloss-integration"]
    assert_problem(evaluate(client, provider.token(kid="rsa-1", key=stranger, roles=roles)), 401)  # wrong key
    assert_problem(evaluate(client, provider.token(kid="no-such-key", roles=roles)), 401)  # unknown kid
    assert_problem(evaluate(client, provider.token(alg="RS384", roles=roles)), 401)  # not RS256/ES256
    assert_problem(evaluate(client, provider.token(alg="ES256", kid="rsa-1", roles=roles)), 401)  # kid of the other key
    assert_problem(evaluate(client, provider.token(alg="HS256", kid="rsa-1", key="k" * 32, roles=roles)), 401)
    header, payload, _ = provider.token(roles=roles).split(".")
    assert_problem(evaluate(client, f"{header}.{payload}."), 401)  # signature stripped


def test_a_valid_token_without_the_role_is_403(app: Flask, provider: idp.Provider) -> None:
    client = app.test_client()
    for roles in (None, [], ["hairloss-clinician"], ["integration"], "hairloss-auditor"):
        resp = evaluate(client, provider.token(roles=roles))
        assert_problem(resp, 403)
        assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]


def test_unknown_key_ids_refetch_the_keys_at_most_once_a_minute(app: Flask, provider: idp.Provider) -> None:
    client = app.test_client()
    assert evaluate(client, provider.token(roles=["hairloss-integration"])).status_code == 200
    fetched = provider.hits["/jwks"]
    for _ in range(10):
        assert evaluate(client, provider.token(kid=uuid.uuid4().hex, roles=["hairloss-integration"])).status_code == 401
    assert provider.hits["/jwks"] <= fetched + 1
    assert provider.hits["/.well-known/openid-configuration"] == 1


def test_an_unreachable_provider_gives_503_not_an_error(make_app: Callable[..., Flask], provider: idp.Provider) -> None:
    client = make_app(
        OIDC_ISSUER="http://127.0.0.1:9", OIDC_AUDIENCE=idp.AUDIENCE, OIDC_ROLE_MAP=ROLE_MAP
    ).test_client()
    resp = evaluate(client, provider.token(roles=["hairloss-integration"]))
    assert_problem(resp, 503)
    assert resp.headers["Retry-After"]


def test_auditor_tokens_open_the_audit_channels_and_others_get_todays_challenge(
    app: Flask, provider: idp.Provider
) -> None:
    client = app.test_client()
    auditor = {"Authorization": f"Bearer {provider.token(roles=['hairloss-auditor'])}"}
    assert client.get("/v1/evaluations", headers=auditor).status_code == 200
    assert client.get("/decisions", headers=auditor).status_code == 200
    integration = {"Authorization": f"Bearer {provider.token(roles=['hairloss-integration'])}"}
    for url in ("/v1/evaluations", "/decisions"):
        resp = client.get(url, headers=integration)
        assert resp.status_code == 401
        assert resp.headers["WWW-Authenticate"] == 'Bearer realm="decision-log", error="invalid_token"'
    expired = provider.token(roles=["hairloss-auditor"], exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)
    assert client.get("/v1/evaluations", headers={"Authorization": f"Bearer {expired}"}).status_code == 401


def test_a_clinician_bearer_token_opens_the_form(app: Flask, provider: idp.Provider) -> None:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {provider.token(roles=['hairloss-clinician'])}"}
    assert client.get(f"/rulesets/{RULESET_ID}/try", headers=headers).status_code == 200
    assert client.post(f"/rulesets/{RULESET_ID}/try", data=FORM, headers=headers).status_code == 200


# ---- authorization code + PKCE -------------------------------------------------------------------


def oidc_sign_in(client: FlaskClient, provider: idp.Provider, next_: str) -> tuple[Any, dict[str, str]]:
    """Follow the sign-in as a browser would: the form, our redirect, the provider's, back to our callback."""
    to_sign_in = client.get(next_, headers=HTML)
    assert to_sign_in.status_code == 303
    page = client.get(to_sign_in.headers["Location"], headers=HTML)
    assert page.status_code == 200 and 'id="sign-in-oidc"' in page.get_data(as_text=True)
    start = client.get(f"/clinician/sign-in/oidc?next={requests.utils.quote(next_)}", headers=HTML)
    assert start.status_code == 302
    authorize = start.headers["Location"]
    assert authorize.startswith(provider.issuer + "/authorize?")
    asked = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    at_idp = requests.get(authorize, allow_redirects=False, timeout=5)  # the provider signs the user in
    assert at_idp.status_code == 302
    back = urlsplit(at_idp.headers["Location"])
    assert back.path == "/clinician/callback"
    return client.get(f"{back.path}?{back.query}", headers=HTML), asked


def test_a_clinician_signs_in_with_code_and_pkce_and_lands_on_the_form(app: Flask, provider: idp.Provider) -> None:
    client = app.test_client()
    target = f"/rulesets/{RULESET_ID}/try?age=30"
    landed, asked = oidc_sign_in(client, provider, target)
    assert asked["response_type"] == "code" and asked["client_id"] == idp.CLIENT_ID
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert "openid" in asked["scope"].split() and asked["nonce"] and asked["state"]
    assert asked["redirect_uri"] == "http://localhost/clinician/callback"
    exchange = provider.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(exchange["code_verifier"].encode()).digest()).rstrip(b"=")
    assert challenge.decode() == asked["code_challenge"]  # the verifier was sent, and it matches
    assert landed.status_code == 303, landed.get_data(as_text=True)
    assert landed.headers["Location"] == target
    form = client.get(target, headers=HTML)
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    csrf = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post(f"/rulesets/{RULESET_ID}/try", data={**FORM, "csrf_token": csrf}, headers=HTML)
    assert answer.status_code == 200


def test_a_user_without_the_clinician_role_is_not_signed_in(app: Flask, provider: idp.Provider) -> None:
    provider.user_roles = ["hairloss-auditor"]
    client = app.test_client()
    landed, _ = oidc_sign_in(client, provider, f"/rulesets/{RULESET_ID}/try")
    assert landed.status_code == 403
    assert "clinician role" in landed.get_data(as_text=True)
    assert client.get(f"/rulesets/{RULESET_ID}/try", headers=HTML).status_code == 303


def test_a_callback_with_a_forged_state_or_a_reused_code_signs_no_one_in(app: Flask, provider: idp.Provider) -> None:
    client = app.test_client()
    start = client.get("/clinician/sign-in/oidc", headers=HTML)
    at_idp = requests.get(start.headers["Location"], allow_redirects=False, timeout=5)
    back = urlsplit(at_idp.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(back.query).items()}
    forged = client.get("/clinician/callback", query_string={**query, "state": "forged"}, headers=HTML)
    assert forged.status_code == 401
    other = app.test_client()  # another browser, without the sign-in's session
    assert other.get(f"{back.path}?{back.query}", headers=HTML).status_code == 401
    assert client.get(f"/rulesets/{RULESET_ID}/try", headers=HTML).status_code == 303
    refused = client.get("/clinician/callback", query_string={"error": "access_denied", "state": "x"}, headers=HTML)
    assert refused.status_code == 401


def test_an_admin_jwt_drives_the_lifecycle_and_is_the_recorded_actor(
    make_app: Callable[..., Flask], provider: idp.Provider
) -> None:
    """The admin endpoints take the roles' credentials like every channel: an OIDC JWT mapped to `admin`."""
    app = make_app(
        OIDC_ISSUER=provider.issuer,
        OIDC_AUDIENCE=idp.AUDIENCE,
        OIDC_ROLE_MAP={**ROLE_MAP, "hairloss-admin": "admin"},
        RATE_LIMIT_AUTH_FAILURES="off",
    )
    client = app.test_client()
    admin = {"Authorization": f"Bearer {provider.token(roles=['hairloss-admin'])}"}
    auditor = {"Authorization": f"Bearer {provider.token(roles=['hairloss-auditor'])}"}
    assert_problem(client.post(f"/v1/admin/rulesets/{RULESET_ID}/rollback", headers=auditor), 403)
    resp = client.post(f"/v1/admin/rulesets/{RULESET_ID}/shadow", json={"sha256": None}, headers=admin)
    assert resp.status_code == 200, resp.get_json()
    status = client.get(f"/v1/rulesets/{RULESET_ID}/status", headers=auditor)
    assert status.status_code == 200, status.get_json()
    [action] = [a for a in status.get_json()["actions"] if a["action"] == "shadow"]
    assert action["actor"].startswith("admin oidc:")
