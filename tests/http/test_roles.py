"""Roles on every channel with hashed static tokens, open mode, the settings' checks and the bind check."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient

from service import config
from service.http.access import roles

from .conftest import RULESET_ID, VALID_PROFILE, assert_problem, write_ruleset

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {role: f"{role}-token-for-the-roles-tests" for role in config.ROLES}
SETTINGS = {
    f"{role.upper()}_TOKEN_HASHES": hashlib.sha256(token.encode()).hexdigest() for role, token in TOKENS.items()
}
FORM = {"age": "30", "diagnosis": "confirmed", "pregnant": "false"}
HTML = {"Accept": "text/html"}


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.fixture
def closed(make_app: Callable[..., Flask]) -> Flask:
    """An app with a static token for each role, and an admin-only endpoint as the lifecycle would add."""
    app = make_app(**SETTINGS, RATE_LIMIT_AUTH_FAILURES="off")
    admin = Blueprint("lifecycle_probe", __name__)
    admin.before_request(roles.role_guard("admin"))
    admin.get("/admin-probe")(lambda: {"ok": True})
    app.register_blueprint(admin)
    return app


def evaluate(client: FlaskClient, headers: dict[str, str] | None = None) -> Any:
    return client.post("/v1/evaluations", json={"profile": VALID_PROFILE}, headers=headers or {})


def batch(client: FlaskClient, headers: dict[str, str] | None = None) -> Any:
    return client.post("/v1/evaluations:batch", json={"profiles": [VALID_PROFILE]}, headers=headers or {})


@pytest.mark.parametrize("call", [evaluate, batch], ids=["evaluations", "batch"])
def test_the_json_api_needs_the_integration_role(closed: Flask, call: Callable[..., Any]) -> None:
    client = closed.test_client()
    assert call(client, bearer("integration")).status_code == 200
    resp = call(client)
    body = assert_problem(resp, 401)
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="hairloss-rules"'
    assert "integration" in body["detail"]
    resp = call(client, {"Authorization": "Bearer not-a-token-of-ours"})
    assert_problem(resp, 401)
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="hairloss-rules", error="invalid_token"'
    for role in ("clinician", "auditor", "admin"):
        resp = call(client, bearer(role))
        assert_problem(resp, 403)
        assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]


def test_refused_evaluations_are_not_recorded(closed: Flask) -> None:
    client = closed.test_client()
    evaluate(client)
    evaluate(client, bearer("clinician"))
    listed = client.get("/v1/evaluations", headers=bearer("auditor")).get_json()
    assert listed["items"] == []
    assert evaluate(client, bearer("integration")).status_code == 200
    assert len(client.get("/v1/evaluations", headers=bearer("auditor")).get_json()["items"]) == 1


def test_the_ruleset_api_stays_public(closed: Flask) -> None:
    client = closed.test_client()
    assert client.get("/v1/rulesets").status_code == 200
    assert client.get(f"/v1/rulesets/{RULESET_ID}").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/rulesets").status_code == 200  # the rulesets as pages: no patient data


def test_the_form_and_answers_need_the_clinician_role(closed: Flask) -> None:
    client = closed.test_client()
    try_url, answer_url = f"/rulesets/{RULESET_ID}/try", f"/rulesets/{RULESET_ID}/answer"
    assert client.get(try_url, headers=bearer("clinician")).status_code == 200
    assert client.post(try_url, data=FORM, headers=bearer("clinician")).status_code == 200
    assert client.get(answer_url, query_string=FORM, headers=bearer("clinician")).status_code == 200
    for method, url in (("GET", try_url), ("POST", try_url), ("GET", answer_url), ("GET", "/")):
        resp = client.open(url, method=method, data=FORM if method == "POST" else None)
        assert_problem(resp, 401)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer ")
        for role in ("integration", "auditor", "admin"):
            assert_problem(client.open(url, method=method, headers=bearer(role)), 403)


def test_a_browser_without_a_session_is_sent_to_the_clinician_sign_in(closed: Flask) -> None:
    client = closed.test_client()
    resp = client.get(f"/rulesets/{RULESET_ID}/try?age=30", headers=HTML)
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith("/clinician/sign-in?next=")
    page = client.get(resp.headers["Location"], headers=HTML)
    assert page.status_code == 200
    assert 'name="token"' in page.get_data(as_text=True)
    assert "sign-in-oidc" not in page.get_data(as_text=True)  # no OIDC client configured


def csrf_of(html: str) -> str:
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def clinician_sign_in(client: FlaskClient, token: str, next_: str = "") -> Any:
    page = client.get("/clinician/sign-in", headers=HTML).get_data(as_text=True)
    return client.post(
        "/clinician/sign-in", data={"csrf_token": csrf_of(page), "token": token, "next": next_}, headers=HTML
    )


def test_a_clinician_signs_in_with_a_token_and_the_form_needs_the_sessions_csrf(closed: Flask) -> None:
    client = closed.test_client()
    try_url = f"/rulesets/{RULESET_ID}/try"
    resp = clinician_sign_in(client, TOKENS["clinician"], next_=try_url + "?age=30")
    assert resp.status_code == 303 and resp.headers["Location"] == try_url + "?age=30"
    cookie = client.get_cookie("clinician_session")
    assert cookie is not None and cookie.path == "/" and cookie.http_only and cookie.same_site == "Lax"
    form = client.get(try_url, headers=HTML)
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    assert "Sign out" in html
    answered = client.post(try_url, data={**FORM, "csrf_token": csrf_of(html)}, headers=HTML)
    assert answered.status_code == 200, answered.get_data(as_text=True)
    assert client.post(try_url, data=FORM, headers=HTML).status_code == 403  # no CSRF token: refused
    assert client.get("/decisions", headers=HTML).status_code == 303  # a clinician is no auditor


def test_the_clinician_sign_in_refuses_other_tokens(closed: Flask) -> None:
    client = closed.test_client()
    for token in ("guess", TOKENS["integration"], TOKENS["auditor"]):
        resp = clinician_sign_in(client, token)
        assert resp.status_code == 401
    assert client.get(f"/rulesets/{RULESET_ID}/try", headers=HTML).status_code == 303
    page = client.get("/clinician/sign-in", headers=HTML).get_data(as_text=True)
    resp = client.post("/clinician/sign-in", data={"token": TOKENS["clinician"]}, headers=HTML)
    assert resp.status_code == 403 and csrf_of(page)  # the sign-in form itself needs its CSRF token


def test_a_next_address_outside_the_clinician_pages_is_ignored(closed: Flask) -> None:
    client = closed.test_client()
    for target in ("https://evil.example/", "//evil.example/x", "/decisions", "/\r\nSet-Cookie:x=1"):
        resp = clinician_sign_in(client, TOKENS["clinician"], next_=target)
        assert resp.status_code == 303 and resp.headers["Location"] == "/", target


def test_clinician_sign_out_revokes_a_copied_cookie(closed: Flask) -> None:
    client = closed.test_client()
    try_url = f"/rulesets/{RULESET_ID}/try"
    clinician_sign_in(client, TOKENS["clinician"])
    copied = client.get_cookie("clinician_session")
    assert copied is not None
    html = client.get(try_url, headers=HTML).get_data(as_text=True)
    resp = client.post("/clinician/sign-out", data={"csrf_token": csrf_of(html)}, headers=HTML)
    assert resp.status_code == 303 and "signed_out" in resp.headers["Location"]
    thief = closed.test_client()
    thief.set_cookie("clinician_session", copied.value, path="/")
    assert thief.get(try_url, headers=HTML).status_code == 303  # back to sign-in: the session has ended


def test_removing_the_clinician_token_ends_its_sessions(closed: Flask) -> None:
    client = closed.test_client()
    clinician_sign_in(client, TOKENS["clinician"])
    assert client.get(f"/rulesets/{RULESET_ID}/try", headers=HTML).status_code == 200
    closed.config["CLINICIAN_TOKEN_HASHES"] = ""  # read per request, like AUDITOR_TOKEN_HASHES
    assert client.get(f"/rulesets/{RULESET_ID}/try", headers=HTML).status_code == 303


def test_the_audit_channels_keep_their_behaviour_and_take_only_auditors(closed: Flask) -> None:
    client = closed.test_client()
    assert client.get("/v1/evaluations", headers=bearer("auditor")).status_code == 200
    assert client.get("/decisions", headers=bearer("auditor")).status_code == 200
    resp = client.get("/v1/evaluations")
    assert_problem(resp, 401)
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="decision-log"'
    for role in ("integration", "clinician", "admin"):
        for url in ("/v1/evaluations", "/decisions"):
            resp = client.get(url, headers=bearer(role))
            assert resp.status_code == 401, (role, url)
            assert resp.headers["WWW-Authenticate"] == 'Bearer realm="decision-log", error="invalid_token"'
    assert client.get("/decisions", headers=HTML).status_code == 303  # the sign-in flow, as before


def test_an_admin_guard_takes_only_admins_even_in_open_mode(closed: Flask, make_app: Callable[..., Flask]) -> None:
    client = closed.test_client()
    assert client.get("/admin-probe", headers=bearer("admin")).status_code == 200
    assert_problem(client.get("/admin-probe"), 401)
    for role in ("integration", "clinician", "auditor"):
        assert_problem(client.get("/admin-probe", headers=bearer(role)), 403)
    open_app = make_app()
    probe = Blueprint("lifecycle_probe", __name__)
    probe.before_request(roles.role_guard("admin"))
    probe.get("/admin-probe")(lambda: {"ok": True})
    open_app.register_blueprint(probe)
    assert_problem(open_app.test_client().get("/admin-probe"), 401)


def test_one_token_may_hold_several_roles(make_app: Callable[..., Flask]) -> None:
    digest = hashlib.sha256(b"both").hexdigest()
    client = make_app(INTEGRATION_TOKEN_HASHES=digest, CLINICIAN_TOKEN_HASHES=digest).test_client()
    both = {"Authorization": "Bearer both"}
    assert evaluate(client, both).status_code == 200
    assert client.get(f"/rulesets/{RULESET_ID}/try", headers=both).status_code == 200


# ---- open mode -----------------------------------------------------------------------------------


def test_without_access_settings_the_evaluation_channels_are_open_with_a_banner(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="service.http.access.roles"):
        app = make_app(AUDITOR_TOKEN_HASHES=SETTINGS["AUDITOR_TOKEN_HASHES"])  # auditors alone: still open
    assert any("access is OPEN" in r.getMessage() for r in caplog.records)
    client = app.test_client()
    assert evaluate(client).status_code == 200
    assert batch(client).status_code == 200
    page = client.get(f"/rulesets/{RULESET_ID}/try", headers=HTML)
    assert page.status_code == 200
    assert 'id="access-open"' in page.get_data(as_text=True)
    assert client.post(f"/rulesets/{RULESET_ID}/try", data=FORM, headers=HTML).status_code == 200
    assert client.get("/v1/evaluations").status_code == 401  # the decision log is never open


def test_with_access_configured_there_is_no_banner(closed: Flask, caplog: pytest.LogCaptureFixture) -> None:
    page = closed.test_client().get("/rulesets", headers=HTML).get_data(as_text=True)
    assert 'id="access-open"' not in page


def test_integration_tokens_alone_close_the_clinician_pages_too(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="service.http.access.roles"):
        client = make_app(INTEGRATION_TOKEN_HASHES=SETTINGS["INTEGRATION_TOKEN_HASHES"]).test_client()
    assert any("clinician role" in r.getMessage() for r in caplog.records)
    assert_problem(client.get(f"/rulesets/{RULESET_ID}/try"), 401)
    assert evaluate(client, bearer("integration")).status_code == 200


# ---- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"INTEGRATION_TOKEN_HASHES": "abc"}, "INTEGRATION_TOKEN_HASHES"),
        ({"CLINICIAN_TOKEN_HASHES": "x" * 64}, "CLINICIAN_TOKEN_HASHES"),
        ({"ADMIN_TOKEN_HASHES": "0" * 63}, "ADMIN_TOKEN_HASHES"),
        ({"OIDC_ISSUER": "http://idp.example"}, "OIDC_ISSUER"),
        ({"OIDC_ISSUER": "https://idp.example/?x=1", "OIDC_AUDIENCE": "a"}, "OIDC_ISSUER"),
        ({"OIDC_ISSUER": "https://idp.example"}, "OIDC_AUDIENCE"),
        ({"OIDC_ISSUER": "https://idp.example", "OIDC_AUDIENCE": "a", "OIDC_ROLE_MAP": "x=root"}, "OIDC_ROLE_MAP"),
        ({"OIDC_ISSUER": "https://idp.example", "OIDC_AUDIENCE": "a", "OIDC_ROLE_MAP": "nothing"}, "OIDC_ROLE_MAP"),
        ({"OIDC_CLIENT_ID": "pages"}, "OIDC_CLIENT_ID"),
        ({"OIDC_ISSUER": "https://idp.example", "OIDC_AUDIENCE": "a", "OIDC_SCOPES": "profile"}, "OIDC_SCOPES"),
        ({"OIDC_ISSUER": "https://idp.example", "OIDC_AUDIENCE": "a", "OIDC_TIMEOUT_MS": "soon"}, "OIDC_TIMEOUT_MS"),
    ],
)
def test_bad_access_settings_stop_the_start(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exc:
        config.from_env()
    assert named in str(exc.value)


def test_access_settings_are_read_and_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = hashlib.sha256(b"t").hexdigest()
    monkeypatch.setenv("INTEGRATION_TOKEN_HASHES", f" {digest.upper()} ,")
    monkeypatch.setenv("OIDC_ISSUER", "https://idp.example/realms/h")
    monkeypatch.setenv("OIDC_AUDIENCE", "hairloss")
    monkeypatch.setenv("OIDC_ROLE_MAP", "hairloss-clinician=clinician, hairloss-auditor=auditor")
    settings = config.from_env()
    assert settings["INTEGRATION_TOKEN_HASHES"] == digest
    assert settings["OIDC_ISSUER"] == "https://idp.example/realms/h"
    assert settings["OIDC_ROLE_MAP"] == {"hairloss-clinician": "clinician", "hairloss-auditor": "auditor"}
    assert settings["OIDC_ROLES_CLAIM"] == "roles"


# ---- gunicorn beyond loopback --------------------------------------------------------------------


@pytest.mark.parametrize("bind", ["127.0.0.1:8000", "[::1]:8000", "localhost:8000", "unix:/tmp/h.sock", "127.0.0.2"])
def test_loopback_binds_need_no_credentials(bind: str) -> None:
    config.refuse_open_bind([bind])


@pytest.mark.parametrize("bind", ["0.0.0.0:8000", "[::]:8000", "10.1.2.3:8000", "service.example:80", ":8000"])
def test_a_non_loopback_bind_without_credentials_stops(bind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as exc:
        config.refuse_open_bind(["127.0.0.1:9000", bind])
    assert bind in str(exc.value) and "INTEGRATION_TOKEN_HASHES" in str(exc.value)
    monkeypatch.setenv("CLINICIAN_TOKEN_HASHES", SETTINGS["CLINICIAN_TOKEN_HASHES"])
    config.refuse_open_bind([bind])


def test_gunicorn_bound_beyond_loopback_in_open_mode_stops_at_start(tmp_path: Path) -> None:
    """The real gunicorn with gunicorn.conf.py: it exits before it listens, saying why."""
    folder = tmp_path / "rulesets"
    write_ruleset(folder)
    env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR",)}
    env.update({"HOME": str(tmp_path), "RULESETS_DIR": str(folder), "GUNICORN_BIND": "0.0.0.0:0"})
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "gunicorn.conf.py",
        "--no-control-socket",
        "service:create_app()",
    ]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "0.0.0.0:0" in output and "INTEGRATION_TOKEN_HASHES" in output, output
    assert "Booting worker" not in output
